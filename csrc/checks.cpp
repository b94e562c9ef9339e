// Argument checks shared by the CPU and CUDA kernels. The Python wrappers check the same things
// with ValueError; these TORCH_CHECKs guard direct torch.ops.lets_core calls, and each message
// names the argument, its value and what is allowed.
#include "lets_core.h"

namespace lets_core {
namespace {

std::string shape(const at::Tensor& t) { return c10::str(t.sizes()); }

void check_same(const at::Tensor& ref, const char* ref_name, const at::Tensor& t, const char* name,
                const char* op) {
  TORCH_CHECK_VALUE(t.device() == ref.device(), "lets_core::", op, ": ", name, " is on ", t.device(),
              " but ", ref_name, " is on ", ref.device(), "; all tensors must be on one device");
  TORCH_CHECK_VALUE(t.scalar_type() == ref.scalar_type(), "lets_core::", op, ": ", name, " has dtype ",
              t.scalar_type(), " but ", ref_name, " has ", ref.scalar_type(),
              "; the factors must have the weight's dtype");
}

void check_float(const at::Tensor& t, const char* name, const char* op) {
  TORCH_CHECK_VALUE(at::isFloatingType(t.scalar_type()), "lets_core::", op, ": ", name,
              " must be float64, float32, bfloat16 or float16, got ", t.scalar_type());
}

// Device, dtype and leading dim of one factor: (1 or b) stacked matrices of `dims` dims in all.
void check_factor(const at::Tensor& ref, int64_t b, const at::Tensor& f, const char* name, int64_t dims,
                  const char* layout, const char* op) {
  check_same(ref, "the first argument", f, name, op);
  TORCH_CHECK_VALUE(f.dim() == dims, "lets_core::", op, ": ", name, " must be ", layout, ", got shape ", shape(f));
  TORCH_CHECK_VALUE(f.size(0) == 1 || f.size(0) == b, "lets_core::", op, ": ", name, " leading dim must be 1 ",
              "(shared) or the block count ", b, ", got ", f.size(0));
}

// Validates f_out (1|B, C, dO, Oc) and f_in (1|B, dI, I) against the block count b; fills C, dO
// and dI (the callers check the last dims, which depend on which side is narrow).
void check_factors(const at::Tensor& ref, int64_t b, const std::optional<at::Tensor>& f_out,
                   const std::optional<at::Tensor>& f_in, const char* op, WidenDims& d) {
  d.C = 1;
  d.dO = 0;
  d.dI = 0;
  if (f_out.has_value()) {
    check_factor(ref, b, *f_out, "f_out", 4, "(1 or blocks, chunks, new rows, rows per chunk)", op);
    TORCH_CHECK_VALUE(f_out->size(1) >= 1, "lets_core::", op, ": f_out must have at least one chunk, got shape ",
                shape(*f_out));
    d.C = f_out->size(1);
    d.dO = f_out->size(2);
  }
  if (f_in.has_value()) {
    check_factor(ref, b, *f_in, "f_in", 3, "(1 or blocks, new columns, columns)", op);
    d.dI = f_in->size(1);
  }
}

}  // namespace

WidenDims check_widen(const at::Tensor& weight, const std::optional<at::Tensor>& f_out,
                      const std::optional<at::Tensor>& f_in, const char* op) {
  check_float(weight, "weight", op);
  TORCH_CHECK_VALUE(weight.dim() == 3, "lets_core::", op, ": weight must be (blocks, out, in), got shape ",
              shape(weight));
  WidenDims d{};
  d.B = weight.size(0);
  check_factors(weight, d.B, f_out, f_in, op, d);
  const int64_t o = weight.size(1);
  TORCH_CHECK_VALUE(o % d.C == 0, "lets_core::", op, ": f_out has ", d.C, " chunks, which do not divide the ",
              "weight's ", o, " rows");
  d.Oc = o / d.C;
  d.I = weight.size(2);
  if (f_out.has_value()) {
    TORCH_CHECK_VALUE(f_out->size(3) == d.Oc, "lets_core::", op, ": f_out last dim must be ", d.Oc,
                " (rows per chunk), got shape ", shape(*f_out));
  }
  if (f_in.has_value()) {
    TORCH_CHECK_VALUE(f_in->size(2) == d.I, "lets_core::", op, ": f_in last dim must be ", d.I,
                " (the weight's columns), got shape ", shape(*f_in));
  }
  return d;
}

WidenDims check_widen_adjoint(const at::Tensor& grad, const std::optional<at::Tensor>& f_out,
                              const std::optional<at::Tensor>& f_in) {
  check_float(grad, "grad", "widen_adjoint");
  TORCH_CHECK_VALUE(grad.dim() == 3, "lets_core::widen_adjoint: grad must be (blocks, wide out, wide in), ",
              "got shape ", shape(grad));
  WidenDims d{};
  d.B = grad.size(0);
  check_factors(grad, d.B, f_out, f_in, "widen_adjoint", d);
  TORCH_CHECK_VALUE(grad.size(1) % d.C == 0 && grad.size(1) / d.C >= d.dO, "lets_core::widen_adjoint: grad ",
              "has ", grad.size(1), " rows, which is not ", d.C, " chunks of at least ", d.dO, " rows");
  TORCH_CHECK_VALUE(grad.size(2) >= d.dI, "lets_core::widen_adjoint: grad has ", grad.size(2),
              " columns, fewer than f_in's ", d.dI, " new columns");
  d.Oc = grad.size(1) / d.C - d.dO;
  d.I = grad.size(2) - d.dI;
  if (f_out.has_value()) {
    TORCH_CHECK_VALUE(f_out->size(3) == d.Oc, "lets_core::widen_adjoint: f_out last dim must be ", d.Oc,
                " (narrow rows per chunk), got shape ", shape(*f_out));
  }
  if (f_in.has_value()) {
    TORCH_CHECK_VALUE(f_in->size(2) == d.I, "lets_core::widen_adjoint: f_in last dim must be ", d.I,
                " (narrow columns), got shape ", shape(*f_in));
  }
  return d;
}

namespace {

// coeff against `blocks` stacked blocks whose dim 1 (the chunked one) has `size` entries.
void check_coeff(const at::Tensor& coeff, const at::Tensor& ref, int64_t blocks, int64_t size, const char* op) {
  check_float(coeff, "coeff", op);
  TORCH_CHECK_VALUE(coeff.device() == ref.device(), "lets_core::", op, ": coeff is on ", coeff.device(),
              " but the blocks are on ", ref.device());
  TORCH_CHECK_VALUE(coeff.dim() == 2 || coeff.dim() == 3, "lets_core::", op, ": coeff must be (rows, s) or ",
              "(rows, chunks, s), got shape ", shape(coeff));
  const int64_t s = coeff.size(-1), r = coeff.size(0);
  TORCH_CHECK_VALUE(s >= 1 && blocks % s == 0, "lets_core::", op, ": group size ", s,
              " must be >= 1 and divide the block count ", blocks);
  const int64_t groups = blocks / s;
  TORCH_CHECK_VALUE(groups == 0 ? r == 0 : r % groups == 0, "lets_core::", op, ": ", r,
              " rows cannot be spread evenly over ", groups, " groups");
  if (coeff.dim() == 3) {
    TORCH_CHECK_VALUE(coeff.size(1) >= 1 && size % coeff.size(1) == 0, "lets_core::", op, ": ",
                coeff.size(1), " coefficient chunks do not divide dim 1 of the blocks (", size, ")");
  }
}

}  // namespace

void check_group_mix(const at::Tensor& stack, const at::Tensor& coeff) {
  check_float(stack, "stack", "group_mix");
  TORCH_CHECK_VALUE(stack.dim() >= 2, "lets_core::group_mix: stack must be (blocks, size, ...), got shape ",
              shape(stack));
  check_coeff(coeff, stack, stack.size(0), stack.size(1), "group_mix");
}

std::vector<WidenMixPlan> valid_widen_mix_plans(const WidenDims& d, int64_t coeff_chunks, bool out_shared,
                                                bool in_shared) {
  // The same rule as lets_core/ops/plans.py (valid_plans); the tests compare the two.
  std::vector<WidenMixPlan> plans{WidenMixPlan::kBlocks};
  if (in_shared) plans.push_back(WidenMixPlan::kOutFirst);
  const bool mix_before_out_ok = d.dO == 0 || d.C % coeff_chunks == 0;
  if (out_shared && mix_before_out_ok) {
    plans.push_back(WidenMixPlan::kInFirst);
    if (in_shared) plans.push_back(WidenMixPlan::kMixFirst);
  }
  return plans;
}

WidenDims check_widen_mix(const at::Tensor& weight, const std::optional<at::Tensor>& f_out,
                          const std::optional<at::Tensor>& f_in, const at::Tensor& coeff, int64_t plan) {
  const WidenDims d = check_widen(weight, f_out, f_in, "widen_mix");
  check_coeff(coeff, weight, d.B, d.C * (d.Oc + d.dO), "widen_mix");
  const bool out_shared = !f_out.has_value() || f_out->size(0) == 1;
  const bool in_shared = !f_in.has_value() || f_in->size(0) == 1;
  const auto plans = valid_widen_mix_plans(d, coeff.dim() == 3 ? coeff.size(1) : 1, out_shared, in_shared);
  bool ok = false;
  std::string allowed;
  for (const auto p : plans) {
    ok = ok || static_cast<int64_t>(p) == plan;
    allowed += (allowed.empty() ? "" : ", ") + std::to_string(static_cast<int64_t>(p));
  }
  TORCH_CHECK_VALUE(ok, "lets_core::widen_mix: plan ", plan, " is not valid for these factors; allowed: ",
              allowed, " (0 blocks, 1 out-first, 2 in-first, 3 mix-first; see lets_core/ops/plans.py)");
  return d;
}

void check_select_by_norm(const at::Tensor& matrix, int64_t unit, int64_t k, int64_t p) {
  check_float(matrix, "matrix", "select_by_norm");
  TORCH_CHECK_VALUE(matrix.dim() == 2 || matrix.dim() == 3, "lets_core::select_by_norm: matrix must be ",
              "(rows, cols) or a stack (matrices, rows, cols), got shape ", shape(matrix));
  const int64_t rows = matrix.size(-2);
  TORCH_CHECK_VALUE(unit >= 1 && rows % unit == 0, "lets_core::select_by_norm: unit ", unit,
              " must be >= 1 and divide the row count ", rows);
  const int64_t n = rows / unit;
  TORCH_CHECK_VALUE(k >= 0 && k <= n, "lets_core::select_by_norm: k must be in [0, ", n,
              "] (the number of units), got ", k);
  TORCH_CHECK_VALUE(p == 1 || p == 2, "lets_core::select_by_norm: p must be 1 or 2, got ", p);
}

namespace {
std::vector<std::pair<std::string, std::string>>& kernel_registry() {
  // Function-local so that registrations running during static initialization find it built.
  static std::vector<std::pair<std::string, std::string>> kernels;
  return kernels;
}
}  // namespace

void record_kernel(const std::string& key, const std::string& op) { kernel_registry().emplace_back(key, op); }

const std::vector<std::pair<std::string, std::string>>& recorded_kernels() { return kernel_registry(); }

}  // namespace lets_core
