// The order of widen_mix's products: the one enum of the C++ code for it, the twin of
// lets_core/ops/widen_mix_order.py (WidenMixOrder, WidenMixShape.of's shared flags,
// valid_orders). The op's schema takes the order as an int; check_widen_mix (widen_mix.cpp) turns
// it into this enum once, and everything after it uses the enum. widen_mix_order.py also has the
// cost model that picks one.
#pragma once

#include <ATen/ATen.h>

#include <optional>
#include <vector>

#include "../common/checks.h"

namespace lets_core {

// Values and names are those of lets_core.ops.widen_mix_order.WidenMixOrder (tests compare the two).
enum class WidenMixOrder : int64_t { kBlocks = 0, kOutFirst = 1, kInFirst = 2, kMixFirst = 3 };

// The Python name of an order ("BLOCKS", ...), for messages.
inline const char* order_name(WidenMixOrder order) {
  switch (order) {
    case WidenMixOrder::kBlocks: return "BLOCKS";
    case WidenMixOrder::kOutFirst: return "OUT_FIRST";
    case WidenMixOrder::kInFirst: return "IN_FIRST";
    case WidenMixOrder::kMixFirst: return "MIX_FIRST";
  }
  return "?";
}

// A factor is shared when one matrix serves every block: it is absent, stored once (leading dim
// 1), or there is only one block. Then it can be applied once per mixed row instead of once per
// block (the method's "its right-hand factor is shared, so the products can be ordered freely").
// The same rule as WidenMixShape.of in widen_mix_order.py.
inline bool is_shared_factor(const std::optional<at::Tensor>& f, int64_t blocks) {
  return !f.has_value() || f->size(0) == 1 || blocks == 1;
}

// The orders that compute widen_mix exactly for these sizes, kBlocks always among them
// (widen_mix_order.py's valid_orders). `coeff_chunks` is K, the coefficients' chunk count (1 for
// 2-D coefficients).
inline std::vector<WidenMixOrder> valid_widen_mix_orders(const WidenDims& d, int64_t coeff_chunks, bool out_shared,
                                                         bool in_shared) {
  std::vector<WidenMixOrder> orders{WidenMixOrder::kBlocks};
  if (in_shared) orders.push_back(WidenMixOrder::kOutFirst);
  // Mixing the narrow rows before the output widening needs the coefficient chunks to be unions
  // of widening chunks, so that each new row is mixed with its own chunk's coefficients.
  const bool mix_before_out_ok = d.dO == 0 || d.C % coeff_chunks == 0;
  if (out_shared && mix_before_out_ok) {
    orders.push_back(WidenMixOrder::kInFirst);
    if (in_shared) orders.push_back(WidenMixOrder::kMixFirst);
  }
  return orders;
}

}  // namespace lets_core
