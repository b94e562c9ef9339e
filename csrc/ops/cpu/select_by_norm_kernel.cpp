// CPU kernel of select_by_norm: one parallel pass computes every unit's score (sum of |x| or x^2
// over its rows in every matrix of the stack; each term in float32, or float64 for float64, as the
// reference computes it, accumulated in float64 lanes: the ranking in ../select_by_norm.cpp
// rounds the scores to float32, so only float64 sums rank as the reference does), and the chosen
// rows are gathered in parallel.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <cmath>
#include <cstring>

#include "../select_by_norm.h"

namespace lets_core {
namespace {

std::tuple<at::Tensor, at::Tensor> select_by_norm_cpu(const at::Tensor& matrix_in, int64_t unit,
                                                      int64_t k, int64_t p, bool largest) {
  check_select_by_norm(matrix_in, unit, k, p);
  const auto matrix = matrix_in.contiguous();
  // A 2-D matrix is a stack of one; a unit owns its rows in every matrix of the stack.
  const int64_t mats = matrix.dim() == 3 ? matrix.size(0) : 1;
  const int64_t n = matrix.size(-2) / unit, cols = matrix.size(-1), len = unit * cols;
  auto scores = at::empty({n}, matrix.options().dtype(at::kDouble));
  double* sc = scores.data_ptr<double>();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, matrix.scalar_type(), "select_by_norm_cpu", [&] {
    using term_t = at::opmath_type<scalar_t>;
    const scalar_t* x = matrix.data_ptr<scalar_t>();
    const int64_t grain = std::max<int64_t>(1, 65536 / std::max<int64_t>(len * mats, 1));
    at::parallel_for(0, n, grain, [&](int64_t b, int64_t e) {
      for (int64_t u = b; u < e; ++u) {
        double acc = 0;
        for (int64_t m = 0; m < mats; ++m) {
          const scalar_t* row = x + (m * n + u) * len;
          // kLanes independent partial sums let the compiler vectorize the reduction without
          // -ffast-math; they are combined in float64.
          constexpr int kLanes = 16;
          double part[kLanes] = {};
          int64_t j = 0;
          if (p == 1) {  // two loops, so neither carries a branch that blocks vectorization
            for (; j + kLanes <= len; j += kLanes) {
              for (int l = 0; l < kLanes; ++l) part[l] += static_cast<double>(std::abs(static_cast<term_t>(row[j + l])));
            }
          } else {
            for (; j + kLanes <= len; j += kLanes) {
              for (int l = 0; l < kLanes; ++l) {
                const term_t v = static_cast<term_t>(row[j + l]);
                const term_t square = v * v;  // rounded in the term's type, as the reference rounds it
                part[l] += static_cast<double>(square);
              }
            }
          }
          for (; j < len; ++j) {
            const term_t v = static_cast<term_t>(row[j]);
            const term_t term = p == 1 ? std::abs(v) : v * v;
            acc += static_cast<double>(term);
          }
          for (int l = 0; l < kLanes; ++l) acc += part[l];
        }
        sc[u] = acc;
      }
    });
  });
  const auto idx = chosen_units(scores, k, largest);
  auto values = selection_output(matrix, unit, k);
  const int64_t* id = idx.data_ptr<int64_t>();
  const int64_t bytes = len * matrix.element_size();
  const auto* src = static_cast<const char*>(matrix.data_ptr());
  auto* dst = static_cast<char*>(values.data_ptr());
  at::parallel_for(0, mats * k, std::max<int64_t>(1, 65536 / std::max<int64_t>(bytes, 1)), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const int64_t m = i / k, j = i % k;
      std::memcpy(dst + i * bytes, src + (m * n + id[j]) * bytes, bytes);
    }
  });
  return {values, idx};
}

}  // namespace

TORCH_LIBRARY_IMPL(lets_core, CPU, m) { m.impl("select_by_norm", &select_by_norm_cpu); }

}  // namespace lets_core
