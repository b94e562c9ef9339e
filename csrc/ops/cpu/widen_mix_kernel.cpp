// CPU kernel of widen_mix: the device-independent ../widen_mix.cpp with the CPU's WidenDevice and
// the CPU group_mix.
#include <torch/library.h>

#include "../widen_mix.h"
#include "kernels.h"

namespace lets_core {
namespace {

std::tuple<at::Tensor, at::Tensor> widen_mix_cpu(const at::Tensor& weight, const std::optional<at::Tensor>& f_out,
                                                 const std::optional<at::Tensor>& f_in, const at::Tensor& coeff,
                                                 int64_t order) {
  return widen_mix_impl(weight, f_out, f_in, coeff, order, kCpuWiden, group_mix_cpu);
}

}  // namespace

TORCH_LIBRARY_IMPL(lets_core, CPU, m) { m.impl("widen_mix", &widen_mix_cpu); }

}  // namespace lets_core
