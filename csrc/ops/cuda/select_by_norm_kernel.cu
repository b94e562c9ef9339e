// CUDA kernel of select_by_norm: one block per unit reads the unit's rows (in every matrix of the
// stack) once and reduces sum |x| or sum x^2 (each term in float32, or float64 for float64, as the
// reference computes it) in float64 with warp shuffles (the ranking rounds the scores to float32,
// so only float64 sums rank as the reference does; the read of the matrix, not the arithmetic,
// bounds the kernel); ../select_by_norm.cpp ranks the scores, and a gather copies the chosen
// units' rows.
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>
#include <torch/library.h>

#include <cstdint>

#include "../select_by_norm.h"

namespace lets_core {
namespace cuda {
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

// x * x rounded in x's type and never fused into the following add: the reference's term.
__device__ inline float square_rn(float v) { return __fmul_rn(v, v); }
__device__ inline double square_rn(double v) { return __dmul_rn(v, v); }

// scores[u] = sum of |x| (p = 1) or x^2 (p = 2) over the `len` contiguous elements of unit u in
// each of the `mats` matrices, in the accumulation type.
template <typename T, typename Term, typename Acc>
__global__ void unit_scores_kernel(const T* __restrict__ matrix, int64_t mats, int64_t mat_stride, int64_t len,
                                   int p, Acc* __restrict__ scores) {
  Acc acc = 0;
  for (int64_t m = 0; m < mats; ++m) {  // the unit's rows in every matrix of the stack
    const T* x = matrix + m * mat_stride + blockIdx.x * len;
    for (int64_t j = threadIdx.x; j < len; j += kThreads) {
      const Term v = static_cast<Term>(x[j]);
      const Term term = p == 1 ? (v < 0 ? -v : v) : square_rn(v);
      acc += static_cast<Acc>(term);
    }
  }
  acc = block_sum(acc);
  if (threadIdx.x == 0) scores[blockIdx.x] = acc;
}

template <typename T, typename Term>
void launch_scores(const void* matrix, int64_t mats, int64_t units, int64_t len, int p, void* scores,
                   cudaStream_t stream) {
  unit_scores_kernel<T, Term, double><<<static_cast<unsigned>(units), kThreads, 0, stream>>>(
      static_cast<const T*>(matrix), mats, units * len, len, p, static_cast<double*>(scores));
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

void unit_scores(c10::ScalarType dtype, const void* matrix, int64_t mats, int64_t units, int64_t len, int p,
                 void* scores, cudaStream_t stream) {
  if (units == 0) return;
  switch (dtype) {
    case c10::ScalarType::Double: return launch_scores<double, double>(matrix, mats, units, len, p, scores, stream);
    case c10::ScalarType::Float: return launch_scores<float, float>(matrix, mats, units, len, p, scores, stream);
    case c10::ScalarType::Half: return launch_scores<c10::Half, float>(matrix, mats, units, len, p, scores, stream);
    case c10::ScalarType::BFloat16:
      return launch_scores<c10::BFloat16, float>(matrix, mats, units, len, p, scores, stream);
    default: TORCH_CHECK(false, "lets_core::select_by_norm: unsupported dtype ", dtype);
  }
}

__global__ void gather_kernel(const uint8_t* __restrict__ src, const int64_t* __restrict__ idx, uint8_t* __restrict__ dst,
                              int64_t bytes) {
  const uint8_t* from = src + idx[blockIdx.x] * bytes;
  uint8_t* to = dst + blockIdx.x * bytes;
  for (int64_t j = threadIdx.x; j < bytes; j += blockDim.x) to[j] = from[j];
}

__global__ void gather_kernel_vec(const uint4* __restrict__ src, const int64_t* __restrict__ idx, uint4* __restrict__ dst,
                                  int64_t words) {
  const uint4* from = src + idx[blockIdx.x] * words;
  uint4* to = dst + blockIdx.x * words;
  for (int64_t j = threadIdx.x; j < words; j += blockDim.x) to[j] = from[j];
}

// dst[i, :] = src[idx[i], :] for k units of `bytes` bytes each.
void gather_units(const void* src, const int64_t* idx, void* dst, int64_t k, int64_t bytes, cudaStream_t stream) {
  if (k == 0 || bytes == 0) return;
  // 16-byte words when every unit starts 16-byte aligned (fresh CUDA allocations are).
  const bool vec = bytes % 16 == 0 && reinterpret_cast<uintptr_t>(src) % 16 == 0 &&
                   reinterpret_cast<uintptr_t>(dst) % 16 == 0;
  if (vec) {
    gather_kernel_vec<<<static_cast<unsigned>(k), 256, 0, stream>>>(static_cast<const uint4*>(src), idx,
                                                                    static_cast<uint4*>(dst), bytes / 16);
  } else {
    gather_kernel<<<static_cast<unsigned>(k), 256, 0, stream>>>(static_cast<const uint8_t*>(src), idx,
                                                                static_cast<uint8_t*>(dst), bytes);
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

}  // namespace
}  // namespace cuda

namespace {

std::tuple<at::Tensor, at::Tensor> select_by_norm_cuda(const at::Tensor& matrix_in, int64_t unit, int64_t k, int64_t p,
                                                       bool largest) {
  check_select_by_norm(matrix_in, unit, k, p);
  const c10::cuda::CUDAGuard guard(matrix_in.device());
  const auto matrix = matrix_in.contiguous();
  const int64_t mats = matrix.dim() == 3 ? matrix.size(0) : 1;  // a 2-D matrix is a stack of one
  const int64_t n = matrix.size(-2) / unit, len = unit * matrix.size(-1);
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  auto scores = at::empty({n}, matrix.options().dtype(at::kDouble));
  cuda::unit_scores(matrix.scalar_type(), matrix.data_ptr(), mats, n, len, static_cast<int>(p), scores.data_ptr(),
                    stream);
  // Ranking n scores (a few thousand) is cheap next to reading the matrix.
  const auto idx = chosen_units(scores, k, largest);
  auto values = selection_output(matrix, unit, k);
  const int64_t bytes = len * matrix.element_size();
  for (int64_t m = 0; m < mats; ++m) {  // a handful of matrices (3 s for the heads of a group)
    cuda::gather_units(static_cast<const char*>(matrix.data_ptr()) + m * n * bytes, idx.data_ptr<int64_t>(),
                       static_cast<char*>(values.data_ptr()) + m * k * bytes, k, bytes, stream);
  }
  return {values, idx};
}

}  // namespace

TORCH_LIBRARY_IMPL(lets_core, CUDA, m) { m.impl("select_by_norm", &select_by_norm_cuda); }

}  // namespace lets_core
