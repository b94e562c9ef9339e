// CUDA kernels that another op's CUDA kernel reuses: widen_mix runs widen's WidenDevice and
// group_mix.
#pragma once

#include <ATen/ATen.h>

#include "../widen.h"

namespace lets_core {

// widen_kernel.cu: the CUDA WidenDevice (../widen.h): ATen's strided copy, GEMMs into views.
extern const WidenDevice kCudaWiden;
// group_mix_kernel.cu: the CUDA kernel of group_mix (a GroupMix of ../group_mix.h).
at::Tensor group_mix_cuda(const at::Tensor& stack, const at::Tensor& coeff);

}  // namespace lets_core
