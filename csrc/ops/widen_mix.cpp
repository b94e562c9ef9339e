// widen_mix, device-independent: its argument checks (the twin of check_widen_mix in
// lets_core/ops/widen_mix.py) and the op itself for every device. The order (chosen from the
// shapes by lets_core/ops/widen_mix_order.py) fixes the association of the product chain: the
// shared widening (widen.cpp) and the device's group_mix kernel called in that order, so the partial
// products are made once per block and the finishing product once per output row. The per-block
// partial product is returned too: the coefficient gradient reads it, and recomputing it in
// backward would cost up to a fifth of a paper-size generation step.
#include "widen_mix.h"

#include <string>

namespace lets_core {

WidenMixOrder check_widen_mix(const at::Tensor& weight, const std::optional<at::Tensor>& f_out,
                              const std::optional<at::Tensor>& f_in, const at::Tensor& coeff, int64_t order) {
  const char* op = "widen_mix";
  const WidenDims d = check_widen(weight, f_out, f_in, op);
  check_mix_args(op, d.B, d.C * (d.Oc + d.dO), coeff, weight);
  const auto valid = valid_widen_mix_orders(d, coeff.dim() == 3 ? coeff.size(1) : 1, is_shared_factor(f_out, d.B),
                                            is_shared_factor(f_in, d.B));
  std::string allowed;
  for (const auto o : valid) {
    if (static_cast<int64_t>(o) == order) return o;
    allowed += (allowed.empty() ? "" : ", ") + std::to_string(static_cast<int64_t>(o)) + " (" + order_name(o) + ")";
  }
  LETS_CORE_CHECK(false, op, "order ", order, " is not valid for these factors; allowed: ", allowed);
}

std::tuple<at::Tensor, at::Tensor> widen_mix_impl(const at::Tensor& weight, const std::optional<at::Tensor>& f_out,
                                                  const std::optional<at::Tensor>& f_in, const at::Tensor& coeff,
                                                  int64_t order, const WidenDevice& widen, GroupMix mix) {
  const std::optional<at::Tensor> none;
  at::Tensor partial;
  switch (check_widen_mix(weight, f_out, f_in, coeff, order)) {
    case WidenMixOrder::kBlocks:  // widen every block, mix the wide blocks
      partial = widen_impl(weight, f_out, f_in, widen);
      return {mix(partial, coeff), partial};
    case WidenMixOrder::kOutFirst:  // F_out per block, mix, shared F_in per row
      partial = widen_impl(weight, f_out, none, widen);
      return {widen_impl(mix(partial, coeff), none, f_in, widen), partial};
    case WidenMixOrder::kInFirst:  // F_in per block, mix, shared F_out per row
      partial = widen_impl(weight, none, f_in, widen);
      return {widen_impl(mix(partial, coeff), f_out, none, widen), partial};
    case WidenMixOrder::kMixFirst:  // mix the narrow blocks, then both shared factors per row
      return {widen_impl(mix(weight, coeff), f_out, f_in, widen), at::empty({0}, weight.options())};
  }
  TORCH_INTERNAL_ASSERT(false, "lets_core::widen_mix: unhandled order ", order);
}

}  // namespace lets_core
