// CPU kernels that another op's CPU kernel reuses: widen_mix runs widen's block copy and group_mix.
#pragma once

#include <ATen/ATen.h>

namespace lets_core {

// widen_kernel.cpp: a parallel row copy (a BlockCopy of ../widen.h).
void copy_block_cpu(const at::Tensor& src, const at::Tensor& dst);
// group_mix_kernel.cpp: the CPU kernel of group_mix (a GroupMix of ../group_mix.h).
at::Tensor group_mix_cpu(const at::Tensor& stack, const at::Tensor& coeff);

}  // namespace lets_core
