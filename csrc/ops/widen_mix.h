// widen_mix(weight, f_out, f_in, coeff, order): a widening fused with the depth mix, row r being
// sum_m coeff[r, m] * E(F_out_j) W_j E(F_in_j)^T with j = s * group(r) + m, in the association
// `order` gives (widen_mix_order.h). The schema is in lets_core/ops/widen_mix.py; the kernels
// (cpu/widen_mix_kernel.cpp, cuda/widen_mix_kernel.cu) pass their device's WidenDevice and
// group_mix to widen_mix_impl.
#pragma once

#include <ATen/ATen.h>

#include <optional>
#include <tuple>

#include "group_mix.h"
#include "widen.h"
#include "widen_mix_order.h"

namespace lets_core {

// Checks the arguments of widen_mix (the twin of check_widen_mix in lets_core/ops/widen_mix.py) and
// returns the order as the enum: `order` must be one of valid_widen_mix_orders for these factors.
WidenMixOrder check_widen_mix(const at::Tensor& weight, const std::optional<at::Tensor>& f_out,
                              const std::optional<at::Tensor>& f_in, const at::Tensor& coeff, int64_t order);

// widen_mix: the chain of widen_impl and `mix` in the order given, so each distinct Aux layer is
// one call and no wide per-block stack is materialised unless the order is kBlocks.
// Checks its arguments. Returns (rows, per-block partial product that was mixed; empty for kMixFirst).
std::tuple<at::Tensor, at::Tensor> widen_mix_impl(const at::Tensor& weight, const std::optional<at::Tensor>& f_out,
                                                  const std::optional<at::Tensor>& f_in, const at::Tensor& coeff,
                                                  int64_t order, const WidenDevice& widen, GroupMix mix);

}  // namespace lets_core
