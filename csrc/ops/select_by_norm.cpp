// select_by_norm, device-independent: its argument checks (the twin of check_select_by_norm
// in lets_core/ops/select_by_norm.py), the ranking of the unit scores and the output. Kernels:
// cpu/select_by_norm_kernel.cpp, cuda/select_by_norm_kernel.cu.
#include "select_by_norm.h"

#include <vector>

namespace lets_core {

void check_select_by_norm(const at::Tensor& matrix, int64_t unit, int64_t k, int64_t p) {
  const char* op = "select_by_norm";
  check_float(matrix, "matrix", op);
  LETS_CORE_CHECK(matrix.dim() == 2 || matrix.dim() == 3, op,
                  "matrix must be (rows, cols) or a stack (matrices, rows, cols), got shape ", shape(matrix));
  const int64_t rows = matrix.size(-2);
  LETS_CORE_CHECK(unit >= 1 && rows % unit == 0, op, "unit ", unit, " must be >= 1 and divide the row count ", rows);
  const int64_t n = rows / unit;
  LETS_CORE_CHECK(k >= 0 && k <= n, op, "k must be in [0, ", n, "] (the number of units), got ", k);
  LETS_CORE_CHECK(p == 1 || p == 2, op, "p must be 1 or 2, got ", p);
}

at::Tensor chosen_units(const at::Tensor& scores, int64_t k, bool largest) {
  // Ranked in float32, as unit_scores in lets_core/ops/select_by_norm.py: the float64 sums of the
  // kernels and of the reference differ only in summation order, which float32 rounding removes,
  // so near-equal units tie (lower index first) in every build.
  auto order = std::get<1>(at::sort(scores.to(at::kFloat), /*stable=*/true, /*dim=*/0, /*descending=*/largest));
  return std::get<0>(at::sort(order.narrow(0, 0, k)));
}

at::Tensor selection_output(const at::Tensor& matrix, int64_t unit, int64_t k) {
  std::vector<int64_t> sizes(matrix.sizes().begin(), matrix.sizes().end());
  sizes[sizes.size() - 2] = k * unit;
  return at::empty(sizes, matrix.options());
}

}  // namespace lets_core
