// CUDA kernel of widen_mix: the device-independent ../widen_mix.cpp with the CUDA block copy
// (widen_kernel.cu) and the CUDA group_mix (group_mix_kernel.cu); it launches no kernel of its own.
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "../widen_mix.h"
#include "kernels.h"

namespace lets_core {
namespace {

std::tuple<at::Tensor, at::Tensor> widen_mix_cuda(const at::Tensor& weight, const std::optional<at::Tensor>& f_out,
                                                  const std::optional<at::Tensor>& f_in, const at::Tensor& coeff,
                                                  int64_t order) {
  const c10::cuda::CUDAGuard guard(weight.device());
  return widen_mix_impl(weight, f_out, f_in, coeff, order, copy_block_cuda, group_mix_cuda);
}

}  // namespace

TORCH_LIBRARY_IMPL(lets_core, CUDA, m) { m.impl("widen_mix", &widen_mix_cuda); }

}  // namespace lets_core
