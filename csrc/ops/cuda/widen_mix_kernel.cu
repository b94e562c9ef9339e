// CUDA kernel of widen_mix: the device-independent ../widen_mix.cpp with the CUDA WidenDevice
// (widen_kernel.cu) and the CUDA group_mix (group_mix_kernel.cu); it launches no kernel of its own.
#include <torch/library.h>

#include "../widen_mix.h"
#include "kernels.h"

namespace lets_core {
namespace {

// No device guard here: the widening runs ATen ops that guard themselves, and group_mix_cuda
// guards after its checks (a guard before the checks would hide the op's device-mismatch message).
std::tuple<at::Tensor, at::Tensor> widen_mix_cuda(const at::Tensor& weight, const std::optional<at::Tensor>& f_out,
                                                  const std::optional<at::Tensor>& f_in, const at::Tensor& coeff,
                                                  int64_t order) {
  return widen_mix_impl(weight, f_out, f_in, coeff, order, kCudaWiden, group_mix_cuda);
}

}  // namespace

TORCH_LIBRARY_IMPL(lets_core, CUDA, m) { m.impl("widen_mix", &widen_mix_cuda); }

}  // namespace lets_core
