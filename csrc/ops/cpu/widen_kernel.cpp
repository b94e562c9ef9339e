// CPU kernels of widen and widen_adjoint: the device-independent widening of ../widen.cpp with a
// parallel row copy.
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <cstring>

#include "../widen.h"
#include "kernels.h"

namespace lets_core {

namespace {

void copy_block_cpu(const at::Tensor& src_in, const at::Tensor& dst) {
  TORCH_INTERNAL_ASSERT(dst.dim() == 3 && dst.stride(2) == 1 && src_in.sizes() == dst.sizes());
  const auto src = src_in.stride(2) == 1 ? src_in : src_in.contiguous();
  const int64_t rows = dst.size(1), cols = dst.size(2);
  const int64_t bytes = cols * dst.element_size();
  const auto* s = static_cast<const char*>(src.data_ptr());
  auto* t = static_cast<char*>(dst.data_ptr());
  const int64_t es = dst.element_size();
  // Grain: enough rows that each task moves at least ~32 KiB, so small copies stay serial.
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(bytes, 1));
  at::parallel_for(0, dst.size(0) * rows, grain, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t b = r / rows, i = r % rows;
      std::memcpy(t + (b * dst.stride(0) + i * dst.stride(1)) * es,
                  s + (b * src.stride(0) + i * src.stride(1)) * es, bytes);
    }
  });
}

}  // namespace

const WidenDevice kCpuWiden{copy_block_cpu};

namespace {

at::Tensor widen_cpu(const at::Tensor& weight, const std::optional<at::Tensor>& f_out,
                     const std::optional<at::Tensor>& f_in) {
  return widen_impl(weight, f_out, f_in, kCpuWiden);
}

at::Tensor widen_adjoint_cpu(const at::Tensor& grad, const std::optional<at::Tensor>& f_out,
                             const std::optional<at::Tensor>& f_in) {
  return widen_adjoint_impl(grad, f_out, f_in, kCpuWiden);
}

}  // namespace

// Registering an implementation before its schema (defined in Python) is allowed, so import
// order does not matter.
TORCH_LIBRARY_IMPL(lets_core, CPU, m) {
  m.impl("widen", &widen_cpu);
  m.impl("widen_adjoint", &widen_adjoint_cpu);
}

}  // namespace lets_core
