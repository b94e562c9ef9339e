// Block copies of the widening (identity blocks and products into the output buffer), and the
// gather of selected units. Element-size templated: a copy does not care about the dtype.
#include <c10/cuda/CUDAException.h>

#include <algorithm>

#include "kernels.cuh"

namespace lets_core::cuda {
namespace {

template <typename T>
__global__ void copy_block_kernel(const T* __restrict__ src, int64_t src_sb, int64_t src_sr, T* __restrict__ dst,
                                  int64_t dst_sb, int64_t dst_sr, int64_t rows, int64_t cols, int64_t total) {
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < total; e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t col = e % cols, row = (e / cols) % rows, b = e / (cols * rows);
    dst[b * dst_sb + row * dst_sr + col] = src[b * src_sb + row * src_sr + col];
  }
}

int blocks_for(int64_t total) {
  return static_cast<int>(std::min<int64_t>((total + 255) / 256, 65535LL * 32));
}

template <typename T>
void launch_copy(const void* src, int64_t src_sb, int64_t src_sr, void* dst, int64_t dst_sb, int64_t dst_sr,
                 int64_t batch, int64_t rows, int64_t cols, cudaStream_t stream) {
  const int64_t total = batch * rows * cols;
  copy_block_kernel<T><<<blocks_for(total), 256, 0, stream>>>(static_cast<const T*>(src), src_sb, src_sr,
                                                              static_cast<T*>(dst), dst_sb, dst_sr, rows, cols, total);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
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

}  // namespace

void copy_block(const void* src, int64_t src_sb, int64_t src_sr, void* dst, int64_t dst_sb, int64_t dst_sr,
                int64_t batch, int64_t rows, int64_t cols, int64_t elem_size, cudaStream_t stream) {
  if (batch * rows * cols == 0) return;
  switch (elem_size) {
    case 2: return launch_copy<uint16_t>(src, src_sb, src_sr, dst, dst_sb, dst_sr, batch, rows, cols, stream);
    case 4: return launch_copy<uint32_t>(src, src_sb, src_sr, dst, dst_sb, dst_sr, batch, rows, cols, stream);
    case 8: return launch_copy<uint64_t>(src, src_sb, src_sr, dst, dst_sb, dst_sr, batch, rows, cols, stream);
    default: TORCH_CHECK(false, "lets_core copy_block: unsupported element size ", elem_size);
  }
}

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

}  // namespace lets_core::cuda
