// widen(weight, f_out, f_in) = E(F_out) W E(F_in)^T and widen_adjoint(grad, f_out, f_in) =
// E(F_out)^T G E(F_in), its adjoint (the op autograd calls for widen's backward). The schemas (with the
// reference, fake kernel and autograd) are in lets_core/ops/widen.py; the kernels in cpu/widen_kernel.cpp
// and cuda/widen_kernel.cu supply only a WidenDevice to the device-independent code of widen.cpp,
// which widen_mix reuses.
#pragma once

#include <ATen/ATen.h>

#include <optional>

#include "../common/checks.h"

namespace lets_core {

// Checks the arguments of widen(weight, f_out, f_in); `weight` is the narrow (B, O, I) tensor.
// `op` names the op in messages (widen_mix checks its widening with this too).
WidenDims check_widen(const at::Tensor& weight, const std::optional<at::Tensor>& f_out,
                      const std::optional<at::Tensor>& f_in, const char* op = "widen");
// Checks the arguments of widen_adjoint(grad, f_out, f_in); `grad` is the wide tensor.
WidenDims check_widen_adjoint(const at::Tensor& grad, const std::optional<at::Tensor>& f_out,
                              const std::optional<at::Tensor>& f_in);

// Copies src into dst, both (batch, rows, cols) with unit stride in the last dimension. The
// widening writes its identity blocks with this, so each device supplies its own.
using BlockCopy = void (*)(const at::Tensor& src, const at::Tensor& dst);

// What a device supplies to the widening: its block copy. (The products are ATen's matmul family
// on every device, written into views of the output; see widen.cpp.)
struct WidenDevice {
  BlockCopy copy;  // writes the identity blocks
};

// E(F_out) W E(F_in)^T into one output buffer: the identity block is a copy, the one-sided
// products are matmuls that land in views of the output, and the corner reuses the cheaper of
// the two one-sided products (a cost model on the shapes). Checks its arguments.
at::Tensor widen_impl(const at::Tensor& weight, const std::optional<at::Tensor>& f_out,
                      const std::optional<at::Tensor>& f_in, const WidenDevice& device);
// E(F_out)^T G E(F_in), accumulated into one buffer with the cheaper association. Checks its arguments.
at::Tensor widen_adjoint_impl(const at::Tensor& grad, const std::optional<at::Tensor>& f_out,
                              const std::optional<at::Tensor>& f_in, const WidenDevice& device);

}  // namespace lets_core
