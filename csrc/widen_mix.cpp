// widen_mix: a widening fused with the depth mix, for every device. The plan (chosen from the
// shapes by lets_core/ops/plans.py) fixes the association of the product chain; each plan is the
// shared widening (csrc/widen.cpp) and the device's group_mix kernel called in its order, so the
// partial products are made once per block and the finishing product once per output row. The
// per-block partial product is returned too: the coefficient gradient reads it, and recomputing
// it in backward would cost up to a fifth of a paper-size generation step.
#include "lets_core.h"

namespace lets_core {

std::tuple<at::Tensor, at::Tensor> widen_mix_impl(const at::Tensor& weight, const std::optional<at::Tensor>& f_out,
                                                  const std::optional<at::Tensor>& f_in, const at::Tensor& coeff,
                                                  int64_t plan, BlockCopy copy, GroupMix mix) {
  check_widen_mix(weight, f_out, f_in, coeff, plan);
  const std::optional<at::Tensor> none;
  at::Tensor partial;
  switch (static_cast<WidenMixPlan>(plan)) {
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
  TORCH_CHECK(false, "lets_core::widen_mix: unknown plan ", plan);
}

}  // namespace lets_core
