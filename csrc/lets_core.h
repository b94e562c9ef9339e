// Shared declarations of the lets_core kernels: argument checks, the device-agnostic widening
// plan, and the per-device kernels. Schemas live in Python (lets_core/ops/_library.py); this
// library only registers kernels for them.
#pragma once

#include <ATen/ATen.h>

#include <optional>
#include <string>
#include <vector>

namespace lets_core {

// Sizes of one widening: B blocks, C output chunks of Oc rows each, I input columns, dO new rows
// per chunk, dI new columns.
struct WidenDims {
  int64_t B, C, Oc, I, dO, dI;
};

// Checks the arguments of widen(weight, f_out, f_in); `weight` is the narrow (B, O, I) tensor.
WidenDims check_widen(const at::Tensor& weight, const std::optional<at::Tensor>& f_out,
                      const std::optional<at::Tensor>& f_in, const char* op = "widen");
// Checks the arguments of widen_adjoint(grad, f_out, f_in); `grad` is the wide tensor.
WidenDims check_widen_adjoint(const at::Tensor& grad, const std::optional<at::Tensor>& f_out,
                              const std::optional<at::Tensor>& f_in);
void check_group_mix(const at::Tensor& stack, const at::Tensor& coeff);

// The association of widen_mix's product chain (lets_core/ops/plans.py has the cost model).
enum class WidenMixPlan : int64_t { kBlocks = 0, kOutFirst = 1, kInFirst = 2, kMixFirst = 3 };
std::vector<WidenMixPlan> valid_widen_mix_plans(const WidenDims& d, int64_t coeff_chunks, bool out_shared,
                                                bool in_shared);
WidenDims check_widen_mix(const at::Tensor& weight, const std::optional<at::Tensor>& f_out,
                          const std::optional<at::Tensor>& f_in, const at::Tensor& coeff, int64_t plan);
void check_select_by_norm(const at::Tensor& matrix, int64_t unit, int64_t k, int64_t p);

// Copies src into dst, both (batch, rows, cols) with unit stride in the last dimension. The
// widening writes its identity blocks with this, so each device supplies its own.
using BlockCopy = void (*)(const at::Tensor& src, const at::Tensor& dst);

// E(F_out) W E(F_in)^T into one output buffer: the identity block is a copy, the one-sided
// products are matmuls written into views of the output, and the corner reuses the cheaper of
// the two one-sided products (a cost model on the shapes).
at::Tensor widen_impl(const at::Tensor& weight, const std::optional<at::Tensor>& f_out,
                      const std::optional<at::Tensor>& f_in, BlockCopy copy);
// E(F_out)^T G E(F_in), accumulated into one buffer with the cheaper association.
at::Tensor widen_adjoint_impl(const at::Tensor& grad, const std::optional<at::Tensor>& f_out,
                              const std::optional<at::Tensor>& f_in, BlockCopy copy);

// group_mix of one device, for the device-agnostic widen_mix.
using GroupMix = at::Tensor (*)(const at::Tensor& stack, const at::Tensor& coeff);
// widen_mix: the chain of widen_impl and `mix` in the order the plan gives, so each distinct
// Aux layer is one call and no wide per-block stack is materialised unless the plan is kBlocks.
// Returns (rows, per-block partial product that was mixed; empty for kMixFirst).
std::tuple<at::Tensor, at::Tensor> widen_mix_impl(const at::Tensor& weight, const std::optional<at::Tensor>& f_out,
                                                  const std::optional<at::Tensor>& f_in, const at::Tensor& coeff,
                                                  int64_t plan, BlockCopy copy, GroupMix mix);

// CPU kernels (csrc/cpu).
void copy_block_cpu(const at::Tensor& src, const at::Tensor& dst);
at::Tensor widen_cpu(const at::Tensor& weight, const std::optional<at::Tensor>& f_out,
                     const std::optional<at::Tensor>& f_in);
at::Tensor widen_adjoint_cpu(const at::Tensor& grad, const std::optional<at::Tensor>& f_out,
                             const std::optional<at::Tensor>& f_in);
at::Tensor group_mix_cpu(const at::Tensor& stack, const at::Tensor& coeff);
std::tuple<at::Tensor, at::Tensor> widen_mix_cpu(const at::Tensor& weight, const std::optional<at::Tensor>& f_out,
                                                 const std::optional<at::Tensor>& f_in, const at::Tensor& coeff,
                                                 int64_t plan);
std::tuple<at::Tensor, at::Tensor> select_by_norm_cpu(const at::Tensor& matrix, int64_t unit,
                                                      int64_t k, int64_t p, bool largest);

// What this build registered, for lets_core._C.build_info(): (dispatch key, op name) pairs.
void record_kernel(const std::string& key, const std::string& op);
const std::vector<std::pair<std::string, std::string>>& recorded_kernels();

}  // namespace lets_core
