// Unit scores of select_by_norm on CUDA: one block per unit reads the unit's rows (in every matrix
// of the stack) once and reduces
// sum |x| or sum x^2 in float32 (float64 for float64) with warp shuffles.
#include <c10/cuda/CUDAException.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include "kernels.cuh"

namespace lets_core::cuda {
namespace {

constexpr int kThreads = 256;

template <typename Acc>
__device__ Acc block_sum(Acc v) {
  __shared__ Acc warp_sums[kThreads / 32];
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  v = threadIdx.x < kThreads / 32 ? warp_sums[threadIdx.x] : Acc(0);
  if (warp == 0) {
    for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
  }
  return v;
}

template <typename T, typename Acc>
__global__ void unit_scores_kernel(const T* __restrict__ matrix, int64_t mats, int64_t mat_stride, int64_t len,
                                   int p, Acc* __restrict__ scores) {
  Acc acc = 0;
  for (int64_t m = 0; m < mats; ++m) {  // the unit's rows in every matrix of the stack
    const T* x = matrix + m * mat_stride + blockIdx.x * len;
    for (int64_t j = threadIdx.x; j < len; j += kThreads) {
      const Acc v = static_cast<Acc>(x[j]);
      acc += p == 1 ? (v < 0 ? -v : v) : v * v;
    }
  }
  acc = block_sum(acc);
  if (threadIdx.x == 0) scores[blockIdx.x] = acc;
}

template <typename T, typename Acc>
void launch(const void* matrix, int64_t mats, int64_t units, int64_t len, int p, void* scores, cudaStream_t stream) {
  unit_scores_kernel<T, Acc><<<static_cast<unsigned>(units), kThreads, 0, stream>>>(
      static_cast<const T*>(matrix), mats, units * len, len, p, static_cast<Acc*>(scores));
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

}  // namespace

void unit_scores(c10::ScalarType dtype, const void* matrix, int64_t mats, int64_t units, int64_t len, int p,
                 void* scores, cudaStream_t stream) {
  if (units == 0) return;
  switch (dtype) {
    case c10::ScalarType::Double: return launch<double, double>(matrix, mats, units, len, p, scores, stream);
    case c10::ScalarType::Float: return launch<float, float>(matrix, mats, units, len, p, scores, stream);
    case c10::ScalarType::Half: return launch<c10::Half, float>(matrix, mats, units, len, p, scores, stream);
    case c10::ScalarType::BFloat16:
      return launch<c10::BFloat16, float>(matrix, mats, units, len, p, scores, stream);
    default: TORCH_CHECK(false, "lets_core::select_by_norm: unsupported dtype ", dtype);
  }
}

}  // namespace lets_core::cuda
