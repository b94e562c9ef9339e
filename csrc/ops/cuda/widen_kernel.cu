// CUDA kernels of widen and widen_adjoint: the device-independent widening of ../widen.cpp
// (cuBLAS via ATen for the products) with this block copy, element-size templated since a copy
// does not care about the dtype.
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "../widen.h"
#include "kernels.h"

namespace lets_core {
namespace cuda {
namespace {

template <typename T>
__global__ void copy_block_kernel(const T* __restrict__ src, int64_t src_sb, int64_t src_sr, T* __restrict__ dst,
                                  int64_t dst_sb, int64_t dst_sr, int64_t rows, int64_t cols, int64_t total) {
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < total; e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t col = e % cols, row = (e / cols) % rows, b = e / (cols * rows);
    dst[b * dst_sb + row * dst_sr + col] = src[b * src_sb + row * src_sr + col];
  }
}

template <typename T>
void launch_copy(const at::Tensor& src, const at::Tensor& dst, cudaStream_t stream) {
  const int64_t rows = dst.size(1), cols = dst.size(2), total = dst.size(0) * rows * cols;
  copy_block_kernel<T><<<grid_for(total), 256, 0, stream>>>(static_cast<const T*>(src.data_ptr()), src.stride(0),
                                                            src.stride(1), static_cast<T*>(dst.data_ptr()),
                                                            dst.stride(0), dst.stride(1), rows, cols, total);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

}  // namespace
}  // namespace cuda

void copy_block_cuda(const at::Tensor& src_in, const at::Tensor& dst) {
  TORCH_INTERNAL_ASSERT(dst.dim() == 3 && dst.stride(2) == 1 && src_in.sizes() == dst.sizes());
  const auto src = src_in.stride(2) == 1 ? src_in : src_in.contiguous();
  if (dst.numel() == 0) return;
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  switch (dst.element_size()) {
    case 2: return cuda::launch_copy<uint16_t>(src, dst, stream);
    case 4: return cuda::launch_copy<uint32_t>(src, dst, stream);
    case 8: return cuda::launch_copy<uint64_t>(src, dst, stream);
    default: TORCH_CHECK(false, "lets_core copy_block: unsupported element size ", dst.element_size());
  }
}

namespace {

at::Tensor widen_cuda(const at::Tensor& weight, const std::optional<at::Tensor>& f_out,
                      const std::optional<at::Tensor>& f_in) {
  const c10::cuda::CUDAGuard guard(weight.device());
  return widen_impl(weight, f_out, f_in, copy_block_cuda);
}

at::Tensor widen_adjoint_cuda(const at::Tensor& grad, const std::optional<at::Tensor>& f_out,
                              const std::optional<at::Tensor>& f_in) {
  const c10::cuda::CUDAGuard guard(grad.device());
  return widen_adjoint_impl(grad, f_out, f_in, copy_block_cuda);
}

}  // namespace

TORCH_LIBRARY_IMPL(lets_core, CUDA, m) {
  m.impl("widen", &widen_cuda);
  m.impl("widen_adjoint", &widen_adjoint_cuda);
}

}  // namespace lets_core
