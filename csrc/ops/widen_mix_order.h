// The association of widen_mix's product chain: the one plan enum of the C++ code, the twin of
// lets_core/ops/plans.py (WidenMixPlan, WidenMixShape.of's shared flags, valid_plans). The op's
// schema takes the plan as an int; check_widen_mix (csrc/ops/widen_mix.cpp) turns it into this
// enum once, and everything after it uses the enum. plans.py has the cost model that picks one.
#pragma once

#include <ATen/ATen.h>

#include <optional>
#include <vector>

#include "checks.h"

namespace lets_core {

// Values and names are those of lets_core.ops.plans.WidenMixPlan (tests compare the two).
enum class WidenMixPlan : int64_t { kBlocks = 0, kOutFirst = 1, kInFirst = 2, kMixFirst = 3 };

// The Python name of a plan ("BLOCKS", ...), for messages.
inline const char* plan_name(WidenMixPlan plan) {
  switch (plan) {
    case WidenMixPlan::kBlocks: return "BLOCKS";
    case WidenMixPlan::kOutFirst: return "OUT_FIRST";
    case WidenMixPlan::kInFirst: return "IN_FIRST";
    case WidenMixPlan::kMixFirst: return "MIX_FIRST";
  }
  return "?";
}

// A factor is shared when one matrix serves every block: it is absent, stored once (leading dim
// 1), or there is only one block. Then it can be applied once per mixed row instead of once per
// block (the method's "its right-hand factor is shared, so the products can be ordered freely").
// The same rule as WidenMixShape.of in plans.py.
inline bool is_shared_factor(const std::optional<at::Tensor>& f, int64_t blocks) {
  return !f.has_value() || f->size(0) == 1 || blocks == 1;
}

// The plans that compute widen_mix exactly for these sizes, kBlocks always among them (plans.py's
// valid_plans). `coeff_chunks` is K, the coefficients' chunk count (1 for 2-D coefficients).
inline std::vector<WidenMixPlan> valid_widen_mix_plans(const WidenDims& d, int64_t coeff_chunks, bool out_shared,
                                                       bool in_shared) {
  std::vector<WidenMixPlan> plans{WidenMixPlan::kBlocks};
  if (in_shared) plans.push_back(WidenMixPlan::kOutFirst);
  // Mixing the narrow rows before the output widening needs the coefficient chunks to be unions
  // of widening chunks, so that each new row is mixed with its own chunk's coefficients.
  const bool mix_before_out_ok = d.dO == 0 || d.C % coeff_chunks == 0;
  if (out_shared && mix_before_out_ok) {
    plans.push_back(WidenMixPlan::kInFirst);
    if (in_shared) plans.push_back(WidenMixPlan::kMixFirst);
  }
  return plans;
}

}  // namespace lets_core
