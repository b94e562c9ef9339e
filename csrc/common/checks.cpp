// Argument-check helpers shared by the ops (see checks.h); the twin of lets_core/ops/_checks.py.
#include "checks.h"

namespace lets_core {

std::string shape(const at::Tensor& t) {
  std::string s = "(";
  for (int64_t i = 0; i < t.dim(); ++i) s += (i ? ", " : "") + std::to_string(t.size(i));
  return s + (t.dim() == 1 ? ",)" : ")");
}

std::string dtype_name(at::ScalarType t) {
  switch (t) {
    case at::kDouble: return "torch.float64";
    case at::kFloat: return "torch.float32";
    case at::kHalf: return "torch.float16";
    case at::kBFloat16: return "torch.bfloat16";
    case at::kLong: return "torch.int64";
    case at::kInt: return "torch.int32";
    case at::kShort: return "torch.int16";
    case at::kChar: return "torch.int8";
    case at::kByte: return "torch.uint8";
    case at::kBool: return "torch.bool";
    case at::kComplexFloat: return "torch.complex64";
    case at::kComplexDouble: return "torch.complex128";
    case at::kComplexHalf: return "torch.complex32";
    case at::ScalarType::UInt16: return "torch.uint16";
    case at::ScalarType::UInt32: return "torch.uint32";
    case at::ScalarType::UInt64: return "torch.uint64";
    case at::ScalarType::Float8_e5m2: return "torch.float8_e5m2";
    case at::ScalarType::Float8_e4m3fn: return "torch.float8_e4m3fn";
    case at::ScalarType::Float8_e5m2fnuz: return "torch.float8_e5m2fnuz";
    case at::ScalarType::Float8_e4m3fnuz: return "torch.float8_e4m3fnuz";
    default: return c10::toString(t);
  }
}

void check_float(const at::Tensor& t, const char* name, const char* op) {
  const auto type = t.scalar_type();
  // Not at::isFloatingType, which also admits the float8 types the kernels do not dispatch on.
  const bool ok = type == at::kDouble || type == at::kFloat || type == at::kBFloat16 || type == at::kHalf;
  LETS_CORE_CHECK(ok, op, name,
                  " must be float64, float32, bfloat16 or float16, got ", dtype_name(t.scalar_type()));
}

namespace {

void check_factor(const char* op, const at::Tensor& ref, const at::Tensor& f, const char* name, int64_t dims) {
  LETS_CORE_CHECK(f.device() == ref.device() && f.scalar_type() == ref.scalar_type(), op, name, " is ",
                  dtype_name(f.scalar_type()), " on ", f.device(), " but the first argument is ",
                  dtype_name(ref.scalar_type()), " on ", ref.device(), "; the factors must match it");
  LETS_CORE_CHECK(f.dim() == dims, op, name, " must have ", dims, " dims, got shape ", shape(f));
  LETS_CORE_CHECK(f.size(0) == 1 || f.size(0) == ref.size(0), op, name,
                  " leading dim must be 1 (shared) or the block count ", ref.size(0), ", got ", f.size(0));
}

}  // namespace

WidenDims check_factors(const char* op, const at::Tensor& ref, const std::optional<at::Tensor>& f_out,
                        const std::optional<at::Tensor>& f_in) {
  if (f_out.has_value()) check_factor(op, ref, *f_out, "f_out", 4);
  if (f_in.has_value()) check_factor(op, ref, *f_in, "f_in", 3);
  WidenDims d{};
  d.B = ref.size(0);
  d.C = f_out.has_value() ? f_out->size(1) : 1;
  d.dO = f_out.has_value() ? f_out->size(2) : 0;
  d.dI = f_in.has_value() ? f_in->size(1) : 0;
  LETS_CORE_CHECK(d.C >= 1, op, "f_out must have at least one chunk, got shape ", shape(*f_out));
  return d;
}

void check_last_dims(const char* op, const std::optional<at::Tensor>& f_out, const std::optional<at::Tensor>& f_in,
                     int64_t rows_per_chunk, int64_t cols) {
  if (f_out.has_value()) {
    LETS_CORE_CHECK(f_out->size(3) == rows_per_chunk, op, "f_out last dim must be ", rows_per_chunk,
                    " (rows per chunk), got shape ", shape(*f_out));
  }
  if (f_in.has_value()) {
    LETS_CORE_CHECK(f_in->size(2) == cols, op, "f_in last dim must be ", cols, " (narrow columns), got shape ",
                    shape(*f_in));
  }
}

void check_mix_args(const char* op, int64_t blocks, int64_t size, const at::Tensor& coeff, const at::Tensor& ref) {
  check_float(coeff, "coeff", op);
  LETS_CORE_CHECK(coeff.dim() == 2 || coeff.dim() == 3, op, "coeff must be (rows, s) or (rows, chunks, s), got shape ",
                  shape(coeff));
  LETS_CORE_CHECK(coeff.device() == ref.device(), op, "coeff is on ", coeff.device(), " but the blocks are on ",
                  ref.device());
  const int64_t s = coeff.size(-1), r = coeff.size(0);
  LETS_CORE_CHECK(s >= 1 && blocks % s == 0, op, "group size ", s, " must be >= 1 and divide the block count ", blocks);
  const int64_t groups = blocks / s;
  LETS_CORE_CHECK(groups == 0 ? r == 0 : r % groups == 0, op, r, " rows cannot be spread evenly over ", groups,
                  " groups");
  if (coeff.dim() == 3) {
    LETS_CORE_CHECK(coeff.size(1) >= 1 && size % coeff.size(1) == 0, op, coeff.size(1),
                    " coefficient chunks do not divide dim 1 of the blocks (", size, ")");
  }
}

}  // namespace lets_core
