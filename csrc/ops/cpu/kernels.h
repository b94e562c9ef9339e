// CPU kernels that another op's CPU kernel reuses: widen_mix runs widen's WidenDevice and group_mix.
#pragma once

#include <ATen/ATen.h>

#include "../widen.h"

namespace lets_core {

// widen_kernel.cpp: the CPU's WidenDevice (../widen.h): a parallel row copy, products through
// contiguous temporaries.
extern const WidenDevice kCpuWiden;
// group_mix_kernel.cpp: the CPU kernel of group_mix (a GroupMix of ../group_mix.h).
at::Tensor group_mix_cpu(const at::Tensor& stack, const at::Tensor& coeff);

}  // namespace lets_core
