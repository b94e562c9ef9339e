// Argument-check helpers of the lets_core ops, the C++ twin of lets_core/ops/_checks.py (fail,
// check_float, check_factors, check_last_dims, check_mix_args): the same checks in the same order
// with the same messages, so a direct torch.ops.lets_core call fails with the same ValueError
// whichever kernel runs (tests/test_ops_checks.py compares the two). Each op's own checks are in
// csrc/ops/<op>.cpp, the twins of check_<op> in lets_core/ops/<op>.py.
#pragma once

#include <ATen/ATen.h>

#include <optional>
#include <string>

// ValueError "lets_core::<op>: <message...>" unless `cond` (the twin of _checks.fail).
#define LETS_CORE_CHECK(cond, op, ...) TORCH_CHECK_VALUE(cond, "lets_core::", op, ": ", __VA_ARGS__)

namespace lets_core {

// Sizes of one widening: B blocks, C output chunks of Oc rows each, I input columns, dO new rows
// per chunk, dI new columns.
struct WidenDims {
  int64_t B, C, Oc, I, dO, dI;
};

// A shape as Python prints tuple(t.shape): "(2, 6)", "(6,)".
std::string shape(const at::Tensor& t);
// A dtype as Python prints it: "torch.float32".
std::string dtype_name(at::ScalarType t);

// `name` must be float64, float32, bfloat16 or float16: the dtypes the kernels dispatch on
// (_checks.FLOAT_DTYPES).
void check_float(const at::Tensor& t, const char* name, const char* op);

// _checks.check_factors: f_out (1|B, C, dO, Oc) and f_in (1|B, dI, I) against the first argument
// `ref` of B = ref.size(0) blocks (device and dtype, dims, leading dim), then at least one chunk.
// Returns B, C, dO and dI; the caller fills Oc and I, which depend on which side is narrow.
WidenDims check_factors(const char* op, const at::Tensor& ref, const std::optional<at::Tensor>& f_out,
                        const std::optional<at::Tensor>& f_in);

// _checks.check_last_dims: the factors' last dims against the narrow rows per chunk and columns.
void check_last_dims(const char* op, const std::optional<at::Tensor>& f_out, const std::optional<at::Tensor>& f_in,
                     int64_t rows_per_chunk, int64_t cols);

// _checks.check_mix_args: coeff (rows, s) or (rows, chunks, s) against `blocks` stacked blocks whose
// dim 1 (the chunked one) has `size` entries, on the device of `ref`.
void check_mix_args(const char* op, int64_t blocks, int64_t size, const at::Tensor& coeff, const at::Tensor& ref);

}  // namespace lets_core
