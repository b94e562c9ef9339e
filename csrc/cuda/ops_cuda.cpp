// CUDA kernels of the lets_core ops: tensors in, launchers of csrc/cuda/*.cu on the current stream.
// The large products go through the shared widening plan (csrc/widen.cpp), i.e. cuBLAS via ATen.
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "../lets_core.h"
#include "kernels.cuh"

namespace lets_core {
namespace {

void copy_block_cuda(const at::Tensor& src_in, const at::Tensor& dst) {
  TORCH_INTERNAL_ASSERT(dst.dim() == 3 && dst.stride(2) == 1 && src_in.sizes() == dst.sizes());
  const auto src = src_in.stride(2) == 1 ? src_in : src_in.contiguous();
  cuda::copy_block(src.data_ptr(), src.stride(0), src.stride(1), dst.data_ptr(), dst.stride(0), dst.stride(1),
                   dst.size(0), dst.size(1), dst.size(2), dst.element_size(), at::cuda::getCurrentCUDAStream());
}

at::Tensor widen_cuda(const at::Tensor& weight, const std::optional<at::Tensor>& f_out,
                      const std::optional<at::Tensor>& f_in) {
  const c10::cuda::CUDAGuard guard(weight.device());
  return widen_impl(weight, f_out, f_in, copy_block_cuda);
}

at::Tensor widen_adjoint_cuda(const at::Tensor& grad, const std::optional<at::Tensor>& f_out,
                              const std::optional<at::Tensor>& f_in) {
  const c10::cuda::CUDAGuard guard(grad.device());
  return widen_adjoint_impl(grad, f_out, f_in, copy_block_cuda);
}

at::ScalarType acc_type(at::ScalarType t) { return t == at::kDouble ? at::kDouble : at::kFloat; }

at::Tensor group_mix_cuda(const at::Tensor& stack_in, const at::Tensor& coeff_in) {
  check_group_mix(stack_in, coeff_in);
  const c10::cuda::CUDAGuard guard(stack_in.device());
  const int64_t l = stack_in.size(0), s = coeff_in.size(-1), r = coeff_in.size(0);
  std::vector<int64_t> shape(stack_in.sizes().begin(), stack_in.sizes().end());
  shape[0] = r;
  auto out = at::empty(shape, stack_in.options());
  if (out.numel() == 0) return out;
  const auto stack = stack_in.contiguous();
  const auto coeff = coeff_in.to(acc_type(stack.scalar_type())).contiguous();
  cuda::group_mix(stack.scalar_type(), stack.data_ptr(), coeff.data_ptr(), out.data_ptr(), r, stack.numel() / l,
                  coeff_in.dim() == 3 ? coeff_in.size(1) : 1, s, r / (l / s), at::cuda::getCurrentCUDAStream());
  return out;
}

std::tuple<at::Tensor, at::Tensor> widen_mix_cuda(const at::Tensor& weight, const std::optional<at::Tensor>& f_out,
                                                  const std::optional<at::Tensor>& f_in, const at::Tensor& coeff,
                                                  int64_t plan) {
  const c10::cuda::CUDAGuard guard(weight.device());
  return widen_mix_impl(weight, f_out, f_in, coeff, plan, copy_block_cuda, group_mix_cuda);
}

std::tuple<at::Tensor, at::Tensor> select_by_norm_cuda(const at::Tensor& matrix_in, int64_t unit, int64_t k, int64_t p,
                                                       bool largest) {
  check_select_by_norm(matrix_in, unit, k, p);
  const c10::cuda::CUDAGuard guard(matrix_in.device());
  const auto matrix = matrix_in.contiguous();
  const int64_t mats = matrix.dim() == 3 ? matrix.size(0) : 1;  // a 2-D matrix is a stack of one
  const int64_t n = matrix.size(-2) / unit, len = unit * matrix.size(-1);
  auto stream = at::cuda::getCurrentCUDAStream();
  auto scores = at::empty({n}, matrix.options().dtype(acc_type(matrix.scalar_type())));
  cuda::unit_scores(matrix.scalar_type(), matrix.data_ptr(), mats, n, len, static_cast<int>(p), scores.data_ptr(),
                    stream);
  // Ranking n scores (a few thousand) is cheap next to reading the matrix; a stable sort keeps
  // the lower index first on ties, as the reference does.
  auto order = std::get<1>(at::sort(scores, /*stable=*/true, /*dim=*/0, /*descending=*/largest));
  auto idx = std::get<0>(at::sort(order.narrow(0, 0, k)));
  std::vector<int64_t> shape(matrix.sizes().begin(), matrix.sizes().end());
  shape[shape.size() - 2] = k * unit;
  auto values = at::empty(shape, matrix.options());
  const int64_t bytes = len * matrix.element_size();
  for (int64_t m = 0; m < mats; ++m) {  // a handful of matrices (3 s for the heads of a group)
    cuda::gather_units(static_cast<const char*>(matrix.data_ptr()) + m * n * bytes, idx.data_ptr<int64_t>(),
                       static_cast<char*>(values.data_ptr()) + m * k * bytes, k, bytes, stream);
  }
  return {values, idx};
}

}  // namespace

TORCH_LIBRARY_IMPL(lets_core, CUDA, m) {
  m.impl("widen", &widen_cuda);
  m.impl("widen_adjoint", &widen_adjoint_cuda);
  m.impl("group_mix", &group_mix_cuda);
  m.impl("widen_mix", &widen_mix_cuda);
  m.impl("select_by_norm", &select_by_norm_cuda);
  for (const char* op : {"widen", "widen_adjoint", "group_mix", "widen_mix", "select_by_norm"}) record_kernel("CUDA", op);
}

}  // namespace lets_core
