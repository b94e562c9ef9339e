// widen_mix, device-independent: its argument checks (the twin of widen_mix in
// lets_core/ops/_checks.py) and the op itself for every device. The plan (chosen from the shapes
// by lets_core/ops/plans.py) fixes the association of the product chain; each plan is the shared
// widening (widen.cpp) and the device's group_mix kernel called in its order, so the partial
// products are made once per block and the finishing product once per output row. The per-block
// partial product is returned too: the coefficient gradient reads it, and recomputing it in
// backward would cost up to a fifth of a paper-size generation step.
#include "widen_mix.h"

#include <string>

namespace lets_core {

WidenMixPlan check_widen_mix(const at::Tensor& weight, const std::optional<at::Tensor>& f_out,
                             const std::optional<at::Tensor>& f_in, const at::Tensor& coeff, int64_t plan) {
  const char* op = "widen_mix";
  const WidenDims d = check_widen(weight, f_out, f_in, op);
  check_mix_args(op, d.B, d.C * (d.Oc + d.dO), coeff, weight);
  const auto valid = valid_widen_mix_plans(d, coeff.dim() == 3 ? coeff.size(1) : 1, is_shared_factor(f_out, d.B),
                                           is_shared_factor(f_in, d.B));
  std::string allowed;
  for (const auto p : valid) {
    if (static_cast<int64_t>(p) == plan) return p;
    allowed += (allowed.empty() ? "" : ", ") + std::to_string(static_cast<int64_t>(p)) + " (" + plan_name(p) + ")";
  }
  LETS_CORE_CHECK(false, op, "plan ", plan, " is not valid for these factors; allowed: ", allowed);
}

std::tuple<at::Tensor, at::Tensor> widen_mix_impl(const at::Tensor& weight, const std::optional<at::Tensor>& f_out,
                                                  const std::optional<at::Tensor>& f_in, const at::Tensor& coeff,
                                                  int64_t plan, BlockCopy copy, GroupMix mix) {
  const std::optional<at::Tensor> none;
  at::Tensor partial;
  switch (check_widen_mix(weight, f_out, f_in, coeff, plan)) {
    case WidenMixPlan::kBlocks:  // widen every block, mix the wide blocks
      partial = widen_impl(weight, f_out, f_in, copy);
      return {mix(partial, coeff), partial};
    case WidenMixPlan::kOutFirst:  // F_out per block, mix, shared F_in per row
      partial = widen_impl(weight, f_out, none, copy);
      return {widen_impl(mix(partial, coeff), none, f_in, copy), partial};
    case WidenMixPlan::kInFirst:  // F_in per block, mix, shared F_out per row
      partial = widen_impl(weight, none, f_in, copy);
      return {widen_impl(mix(partial, coeff), f_out, none, copy), partial};
    case WidenMixPlan::kMixFirst:  // mix the narrow blocks, then both shared factors per row
      return {widen_impl(mix(weight, coeff), f_out, f_in, copy), at::empty({0}, weight.options())};
  }
  TORCH_INTERNAL_ASSERT(false, "lets_core::widen_mix: unhandled plan ", plan);
}

}  // namespace lets_core
