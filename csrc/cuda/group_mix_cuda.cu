// group_mix on CUDA: one thread per output element sums its s group members, in float32
// (float64 for float64), with the coefficients of its chunk.
#include <c10/cuda/CUDAException.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <algorithm>

#include "kernels.cuh"

namespace lets_core::cuda {
namespace {

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
  const int64_t total = rows * m_total;
  const int blocks = static_cast<int>(std::min<int64_t>((total + 255) / 256, 65535LL * 32));
  group_mix_kernel<T, Acc><<<blocks, 256, 0, stream>>>(static_cast<const T*>(stack), static_cast<const Acc*>(coeff),
                                                       static_cast<T*>(out), rows, m_total, m_total / chunks, chunks,
                                                       s, per_group);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

}  // namespace

void group_mix(c10::ScalarType dtype, const void* stack, const void* coeff, void* out, int64_t rows, int64_t m_total,
               int64_t chunks, int64_t s, int64_t per_group, cudaStream_t stream) {
  if (rows * m_total == 0) return;
  switch (dtype) {
    case c10::ScalarType::Double: return launch<double, double>(stack, coeff, out, rows, m_total, chunks, s, per_group, stream);
    case c10::ScalarType::Float: return launch<float, float>(stack, coeff, out, rows, m_total, chunks, s, per_group, stream);
    case c10::ScalarType::Half: return launch<c10::Half, float>(stack, coeff, out, rows, m_total, chunks, s, per_group, stream);
    case c10::ScalarType::BFloat16:
      return launch<c10::BFloat16, float>(stack, coeff, out, rows, m_total, chunks, s, per_group, stream);
    default: TORCH_CHECK(false, "lets_core::group_mix: unsupported dtype ", dtype);
  }
}

}  // namespace lets_core::cuda
