// CUDA kernels that another op's CUDA kernel reuses (widen_mix runs widen's WidenDevice and
// group_mix), and the grid size of the grid-stride kernels.
#pragma once

#include <ATen/ATen.h>

#include <algorithm>
#include <cstdint>

#include "../widen.h"

namespace lets_core {

// widen_kernel.cu: the CUDA WidenDevice (../widen.h): ATen's strided copy, GEMMs into views.
extern const WidenDevice kCudaWiden;
// group_mix_kernel.cu: the CUDA kernel of group_mix (a GroupMix of ../group_mix.h).
at::Tensor group_mix_cuda(const at::Tensor& stack, const at::Tensor& coeff);

namespace cuda {

// Blocks of 256 threads for a grid-stride loop over `total` elements, capped where more blocks
// stop paying.
inline int grid_for(int64_t total) {
  return static_cast<int>(std::min<int64_t>((total + 255) / 256, 65535LL * 32));
}

}  // namespace cuda
}  // namespace lets_core
