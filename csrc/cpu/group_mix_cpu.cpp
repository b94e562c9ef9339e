// CPU kernel of group_mix: out[r] = sum_m coeff[r, c, m] * stack[s*g(r) + m], accumulated in
// float32 (float64 for float64 input) over column tiles, in parallel over (row, tile).
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>

#include "../lets_core.h"

namespace lets_core {
namespace {
constexpr int64_t kTile = 2048;
}

at::Tensor group_mix_cpu(const at::Tensor& stack_in, const at::Tensor& coeff_in) {
  check_group_mix(stack_in, coeff_in);
  const int64_t l = stack_in.size(0), s = coeff_in.size(-1), r = coeff_in.size(0);
  const int64_t chunks = coeff_in.dim() == 3 ? coeff_in.size(1) : 1;
  std::vector<int64_t> out_shape(stack_in.sizes().begin(), stack_in.sizes().end());
  out_shape[0] = r;
  auto out = at::empty(out_shape, stack_in.options());
  if (out.numel() == 0) return out;
  const auto stack = stack_in.contiguous();
  const int64_t m_total = stack.numel() / l, chunk_len = m_total / chunks;
  const int64_t per_group = r / (l / s), tiles = (m_total + kTile - 1) / kTile;

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, stack.scalar_type(), "group_mix_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const auto coeff = coeff_in.to(c10::CppTypeToScalarType<acc_t>::value).contiguous();
    const acc_t* cf = coeff.data_ptr<acc_t>();
    const scalar_t* src = stack.data_ptr<scalar_t>();
    scalar_t* dst = out.data_ptr<scalar_t>();
    at::parallel_for(0, r * tiles, 1, [&](int64_t begin, int64_t end) {
      acc_t acc[kTile];
      for (int64_t task = begin; task < end; ++task) {
        const int64_t row = task / tiles, j0 = (task % tiles) * kTile;
        const int64_t j1 = std::min(m_total, j0 + kTile), first = (row / per_group) * s;
        // A tile can straddle chunk boundaries; each segment has its own coefficients.
        for (int64_t a = j0; a < j1;) {
          const int64_t c = a / chunk_len, b = std::min(j1, (c + 1) * chunk_len);
          const acc_t* w = cf + (row * chunks + c) * s;
          for (int64_t j = a; j < b; ++j) acc[j - j0] = acc_t(0);
          for (int64_t m = 0; m < s; ++m) {
            const scalar_t* x = src + (first + m) * m_total;
            const acc_t wm = w[m];
            for (int64_t j = a; j < b; ++j) acc[j - j0] += wm * static_cast<acc_t>(x[j]);
          }
          a = b;
        }
        scalar_t* y = dst + row * m_total;
        for (int64_t j = j0; j < j1; ++j) y[j] = static_cast<scalar_t>(acc[j - j0]);
      }
    });
  });
  return out;
}

}  // namespace lets_core
