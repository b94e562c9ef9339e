// group_mix, device-independent: its argument checks (the twin of check_group_mix
// in lets_core/ops/group_mix.py) and its output. Kernels: cpu/group_mix_kernel.cpp, cuda/group_mix_kernel.cu.
#include "group_mix.h"

#include <vector>

namespace lets_core {

void check_group_mix(const at::Tensor& stack, const at::Tensor& coeff) {
  const char* op = "group_mix";
  check_float(stack, "stack", op);
  LETS_CORE_CHECK(stack.dim() >= 2, op, "stack must be (blocks, size, ...), got shape ", shape(stack));
  check_mix_args(op, stack.size(0), stack.size(1), coeff, stack);
}

at::Tensor group_mix_output(const at::Tensor& stack, const at::Tensor& coeff) {
  std::vector<int64_t> out_shape(stack.sizes().begin(), stack.sizes().end());
  out_shape[0] = coeff.size(0);
  return at::empty(out_shape, stack.options());
}

}  // namespace lets_core
