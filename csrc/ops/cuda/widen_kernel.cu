// CUDA kernels of widen and widen_adjoint: the device-independent widening of ../widen.cpp with
// the CUDA WidenDevice. Every product is a cuBLAS GEMM written straight into its view of the
// output, and the identity blocks are ATen's strided copy, so no kernel of ours is launched.
#include <torch/library.h>

#include "../widen.h"
#include "kernels.h"

namespace lets_core {
namespace {

// ATen's copy kernel already vectorizes and uses 32-bit index math on strided views; a copy of
// our own would only repeat it.
void copy_block_cuda(const at::Tensor& src, const at::Tensor& dst) { dst.copy_(src); }

}  // namespace

const WidenDevice kCudaWiden{copy_block_cuda};

namespace {

// No device guard: every call below is an ATen op that guards its own device, and a guard made
// here, before the op's argument checks, would turn a CPU/CUDA mismatch into the guard's error
// instead of the op's message.
at::Tensor widen_cuda(const at::Tensor& weight, const std::optional<at::Tensor>& f_out,
                      const std::optional<at::Tensor>& f_in) {
  return widen_impl(weight, f_out, f_in, kCudaWiden);
}

at::Tensor widen_adjoint_cuda(const at::Tensor& grad, const std::optional<at::Tensor>& f_out,
                              const std::optional<at::Tensor>& f_in) {
  return widen_adjoint_impl(grad, f_out, f_in, kCudaWiden);
}

}  // namespace

TORCH_LIBRARY_IMPL(lets_core, CUDA, m) {
  m.impl("widen", &widen_cuda);
  m.impl("widen_adjoint", &widen_adjoint_cuda);
}

}  // namespace lets_core
