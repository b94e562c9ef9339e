// CPU kernel of group_mix: for each group g and chunk c, the P output rows of the group are one
// small-K GEMM, coeff[g, :, c, :] (P x s) @ stack[g*s : g*s+s, chunk c] (s x X), written by BLAS
// straight into a view of the output. The op is memory-bound; BLAS's runtime-dispatched vector
// code streams it faster than a portable scalar loop (measured 2.4x at the paper's fc1 shape).
#include <torch/library.h>

#include "../group_mix.h"
#include "kernels.h"

namespace lets_core {

at::Tensor group_mix_cpu(const at::Tensor& stack_in, const at::Tensor& coeff_in) {
  check_group_mix(stack_in, coeff_in);
  const int64_t l = stack_in.size(0), s = coeff_in.size(-1), r = coeff_in.size(0);
  const int64_t chunks = coeff_in.dim() == 3 ? coeff_in.size(1) : 1;
  auto out = group_mix_output(stack_in, coeff_in);
  if (out.numel() == 0) return out;
  const int64_t groups = l / s, per_group = r / groups;
  const int64_t x = stack_in.numel() / l / chunks;
  const auto stack = stack_in.contiguous().view({groups, s, chunks, x});
  const auto coeff = coeff_in.to(stack_in.scalar_type()).reshape({groups, per_group, chunks, s});
  const auto out4 = out.view({groups, per_group, chunks, x});
  for (int64_t g = 0; g < groups; ++g) {
    for (int64_t c = 0; c < chunks; ++c) {
      auto dst = out4[g].select(1, c);  // (P, X), row stride chunks * X
      at::mm_out(dst, coeff[g].select(1, c), stack[g].select(1, c));
    }
  }
  return out;
}

TORCH_LIBRARY_IMPL(lets_core, CPU, m) { m.impl("group_mix", &group_mix_cpu); }

}  // namespace lets_core
