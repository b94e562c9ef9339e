// group_mix(stack, coeff): row r of the result is sum_m coeff[r, (chunk), m] * stack[s*group(r) + m],
// the depth mix of one module type. The schema is in lets_core/ops/group_mix.py; the kernels are
// cpu/group_mix_kernel.cpp and cuda/group_mix_kernel.cu, and widen_mix mixes with them.
#pragma once

#include <ATen/ATen.h>

#include "../common/checks.h"

namespace lets_core {

// Checks the arguments of group_mix (the twin of check_group_mix in lets_core/ops/group_mix.py).
void check_group_mix(const at::Tensor& stack, const at::Tensor& coeff);

// The uninitialised result, (coeff rows, *stack.shape[1:]) like the stack.
at::Tensor group_mix_output(const at::Tensor& stack, const at::Tensor& coeff);

// One device's group_mix kernel, for the device-independent widen_mix.
using GroupMix = at::Tensor (*)(const at::Tensor& stack, const at::Tensor& coeff);

}  // namespace lets_core
