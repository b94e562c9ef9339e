// CUDA kernel of group_mix: one thread per output element sums its s group members, in float32
// (float64 for float64), with the coefficients of its chunk.
#include <ATen/OpMathType.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>
#include <torch/library.h>

#include "../group_mix.h"
#include "kernels.h"

namespace lets_core {
namespace cuda {
namespace {

// out[r, j] = sum_m coeff[r, c(j), m] * stack[(r / per_group) * s + m, j] over (rows, m_total),
// coeff (rows, chunks, s) in the accumulation type Acc.
template <typename T, typename Acc>
__global__ void group_mix_kernel(const T* __restrict__ stack, const Acc* __restrict__ coeff, T* __restrict__ out,
                                 int64_t rows, int64_t m_total, int64_t chunk_len, int64_t chunks, int64_t s,
                                 int64_t per_group) {
  const int64_t total = rows * m_total;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < total; e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = e / m_total, j = e % m_total;
    const Acc* w = coeff + (r * chunks + j / chunk_len) * s;
    const T* x = stack + (r / per_group) * s * m_total + j;
    Acc acc = 0;
    for (int64_t m = 0; m < s; ++m) acc += w[m] * static_cast<Acc>(x[m * m_total]);
    out[e] = static_cast<T>(acc);
  }
}

template <typename T, typename Acc>
void launch(const void* stack, const void* coeff, void* out, int64_t rows, int64_t m_total, int64_t chunks, int64_t s,
            int64_t per_group, cudaStream_t stream) {
  group_mix_kernel<T, Acc><<<grid_for(rows * m_total), 256, 0, stream>>>(
      static_cast<const T*>(stack), static_cast<const Acc*>(coeff), static_cast<T*>(out), rows, m_total,
      m_total / chunks, chunks, s, per_group);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

}  // namespace
}  // namespace cuda

at::Tensor group_mix_cuda(const at::Tensor& stack_in, const at::Tensor& coeff_in) {
  check_group_mix(stack_in, coeff_in);
  const c10::cuda::CUDAGuard guard(stack_in.device());
  const int64_t l = stack_in.size(0), s = coeff_in.size(-1), r = coeff_in.size(0);
  auto out = group_mix_output(stack_in, coeff_in);
  if (out.numel() == 0) return out;
  const auto stack = stack_in.contiguous();
  const auto coeff = coeff_in.to(at::toOpMathType(stack.scalar_type())).contiguous();
  const int64_t m_total = stack.numel() / l, chunks = coeff_in.dim() == 3 ? coeff_in.size(1) : 1;
  const int64_t per_group = r / (l / s);
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  const void* x = stack.data_ptr();
  const void* w = coeff.data_ptr();
  void* y = out.data_ptr();
  switch (stack.scalar_type()) {
    case at::kDouble: cuda::launch<double, double>(x, w, y, r, m_total, chunks, s, per_group, stream); break;
    case at::kFloat: cuda::launch<float, float>(x, w, y, r, m_total, chunks, s, per_group, stream); break;
    case at::kHalf: cuda::launch<c10::Half, float>(x, w, y, r, m_total, chunks, s, per_group, stream); break;
    case at::kBFloat16: cuda::launch<c10::BFloat16, float>(x, w, y, r, m_total, chunks, s, per_group, stream); break;
    default: TORCH_CHECK(false, "lets_core::group_mix: unsupported dtype ", stack.scalar_type());
  }
  return out;
}

TORCH_LIBRARY_IMPL(lets_core, CUDA, m) { m.impl("group_mix", &group_mix_cuda); }

}  // namespace lets_core
