// CPU kernels of the lets_core ops. The schemas are defined in Python (lets_core/ops/_library.py);
// registering an implementation before its schema is allowed, so import order does not matter.
#include <torch/library.h>

#include "../lets_core.h"

namespace lets_core {

TORCH_LIBRARY_IMPL(lets_core, CPU, m) {
  m.impl("widen", &widen_cpu);
  m.impl("widen_adjoint", &widen_adjoint_cpu);
  m.impl("group_mix", &group_mix_cpu);
  m.impl("widen_mix", &widen_mix_cpu);
  m.impl("select_by_norm", &select_by_norm_cpu);
  for (const char* op : {"widen", "widen_adjoint", "group_mix", "widen_mix", "select_by_norm"}) record_kernel("CPU", op);
}

}  // namespace lets_core
