// widen_mix(weight, f_out, f_in, coeff, plan): a widening fused with the depth mix, row r being
// sum_m coeff[r, m] * E(F_out_j) W_j E(F_in_j)^T with j = s * group(r) + m, in the association
// `plan` gives (../common/plan.h). The schema is in lets_core/ops/_library.py; the kernels
// (cpu/widen_mix_kernel.cpp, cuda/widen_mix_kernel.cu) pass their device's block copy and
// group_mix to widen_mix_impl.
#pragma once

#include <ATen/ATen.h>

#include <optional>
#include <tuple>

#include "../common/plan.h"
#include "group_mix.h"
#include "widen.h"

namespace lets_core {

// Checks the arguments of widen_mix (the twin of _checks.widen_mix) and returns the plan as the
// enum: `plan` must be one of valid_widen_mix_plans for these factors.
WidenMixPlan check_widen_mix(const at::Tensor& weight, const std::optional<at::Tensor>& f_out,
                             const std::optional<at::Tensor>& f_in, const at::Tensor& coeff, int64_t plan);

// widen_mix: the chain of widen_impl and `mix` in the order the plan gives, so each distinct
// Aux layer is one call and no wide per-block stack is materialised unless the plan is kBlocks.
// Checks its arguments. Returns (rows, per-block partial product that was mixed; empty for kMixFirst).
std::tuple<at::Tensor, at::Tensor> widen_mix_impl(const at::Tensor& weight, const std::optional<at::Tensor>& f_out,
                                                  const std::optional<at::Tensor>& f_in, const at::Tensor& coeff,
                                                  int64_t plan, BlockCopy copy, GroupMix mix);

}  // namespace lets_core
