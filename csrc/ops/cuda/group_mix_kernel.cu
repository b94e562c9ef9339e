// CUDA kernel of group_mix: each output element sums its s group members, in float32 (float64 for
// float64), with the coefficients of its chunk rounded to the stack's dtype first, as the CPU
// kernel and the reference do, so all three agree.
#include <ATen/OpMathType.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>

#include "../group_mix.h"
#include "kernels.h"

namespace lets_core {
namespace cuda {
namespace {

// V elements loaded or stored as one access (16 bytes when V = 16 / sizeof(T)).
template <typename T, int V>
struct alignas(sizeof(T) * V) Pack {
  T val[V];
};

// out[r, c*chunk_len + j] = sum_m coeff[r, c, m] * stack[(r / per_group) * s + m, c*chunk_len + j].
// Grid y strides over the (row r, chunk c) pairs and x over the chunk's packs of V columns, so the
// divisions that find r, c and the group happen once per pair, not per element, and every load and
// store is V elements wide. Requires chunk_len % V == 0 and 16-byte aligned rows (the launcher
// checks and falls back to V = 1).
template <typename T, typename Acc, int V>
__global__ void group_mix_kernel(const T* __restrict__ stack, const Acc* __restrict__ coeff, T* __restrict__ out,
                                 int64_t pairs, int64_t m_total, int64_t chunk_len, int64_t chunks, int64_t s,
                                 int64_t per_group) {
  using P = Pack<T, V>;
  const int64_t packs = chunk_len / V;
  for (int64_t rc = blockIdx.y; rc < pairs; rc += gridDim.y) {
    const int64_t r = rc / chunks, c = rc - r * chunks;
    const Acc* w = coeff + rc * s;
    const T* x = stack + (r / per_group) * s * m_total + c * chunk_len;
    P* y = reinterpret_cast<P*>(out + r * m_total + c * chunk_len);
    for (int64_t v = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; v < packs; v += int64_t(gridDim.x) * blockDim.x) {
      Acc acc[V] = {};
      for (int64_t m = 0; m < s; ++m) {
        const P in = reinterpret_cast<const P*>(x + m * m_total)[v];
        const Acc wm = w[m];
#pragma unroll
        for (int i = 0; i < V; ++i) acc[i] += wm * static_cast<Acc>(in.val[i]);
      }
      P res;
#pragma unroll
      for (int i = 0; i < V; ++i) res.val[i] = static_cast<T>(acc[i]);
      y[v] = res;
    }
  }
}

template <typename T, typename Acc, int V>
void launch_packed(const T* stack, const Acc* coeff, T* out, int64_t pairs, int64_t m_total, int64_t chunk_len,
                   int64_t chunks, int64_t s, int64_t per_group, cudaStream_t stream) {
  const int64_t packs = chunk_len / V;
  const int64_t y = std::min<int64_t>(pairs, 65535);
  // Enough x blocks to cover a chunk, but no more than about 64k blocks in all.
  const int64_t x = std::max<int64_t>(1, std::min<int64_t>((packs + 255) / 256, (int64_t(1) << 16) / y + 1));
  group_mix_kernel<T, Acc, V><<<dim3(static_cast<unsigned>(x), static_cast<unsigned>(y)), 256, 0, stream>>>(
      stack, coeff, out, pairs, m_total, chunk_len, chunks, s, per_group);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template <typename T, typename Acc>
void launch(const void* stack_v, const void* coeff_v, void* out_v, int64_t rows, int64_t m_total, int64_t chunks,
            int64_t s, int64_t per_group, cudaStream_t stream) {
  constexpr int kWide = 16 / sizeof(T);
  const auto* stack = static_cast<const T*>(stack_v);
  const auto* coeff = static_cast<const Acc*>(coeff_v);
  auto* out = static_cast<T*>(out_v);
  const int64_t chunk_len = m_total / chunks;
  const auto aligned = [](const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 16 == 0; };
  // Every row and chunk starts on a 16-byte boundary when the bases do and chunk_len (hence
  // m_total) is a multiple of the pack.
  if (chunk_len % kWide == 0 && aligned(stack) && aligned(out)) {
    launch_packed<T, Acc, kWide>(stack, coeff, out, rows * chunks, m_total, chunk_len, chunks, s, per_group, stream);
  } else {
    launch_packed<T, Acc, 1>(stack, coeff, out, rows * chunks, m_total, chunk_len, chunks, s, per_group, stream);
  }
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
  // Rounded to the stack's dtype first (as the CPU kernel and the reference), then widened for
  // the accumulation.
  const auto coeff = coeff_in.to(stack.scalar_type()).to(at::toOpMathType(stack.scalar_type())).contiguous();
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
