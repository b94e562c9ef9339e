// widen and widen_adjoint, device-independent: their argument checks (the twins of widen and
// widen_adjoint in lets_core/ops/widen.py) and the widening itself, written once for every
// device: ATen's matmul family (BLAS on CPU, cuBLAS on CUDA) fills views of one output buffer,
// and the device supplies only its block copy (a WidenDevice:
// cpu/widen_kernel.cpp, cuda/widen_kernel.cu). Chunks (q|k|v) and blocks are merged into one batch dimension so every
// product is a single batched matmul.
#include "widen.h"

namespace lets_core {

WidenDims check_widen(const at::Tensor& weight, const std::optional<at::Tensor>& f_out,
                      const std::optional<at::Tensor>& f_in, const char* op) {
  check_float(weight, "weight", op);
  LETS_CORE_CHECK(weight.dim() == 3, op, "weight must be (blocks, out, in), got shape ", shape(weight));
  WidenDims d = check_factors(op, weight, f_out, f_in);
  const int64_t o = weight.size(1);
  LETS_CORE_CHECK(o % d.C == 0, op, "f_out has ", d.C, " chunks, which do not divide the weight's ", o, " rows");
  d.Oc = o / d.C;
  d.I = weight.size(2);
  check_last_dims(op, f_out, f_in, d.Oc, d.I);
  return d;
}

WidenDims check_widen_adjoint(const at::Tensor& grad, const std::optional<at::Tensor>& f_out,
                              const std::optional<at::Tensor>& f_in) {
  const char* op = "widen_adjoint";
  check_float(grad, "grad", op);
  LETS_CORE_CHECK(grad.dim() == 3, op, "grad must be (blocks, wide out, wide in), got shape ", shape(grad));
  WidenDims d = check_factors(op, grad, f_out, f_in);
  LETS_CORE_CHECK(grad.size(1) % d.C == 0 && grad.size(1) / d.C >= d.dO, op, "grad has ", grad.size(1),
                  " rows, which is not ", d.C, " chunks of at least ", d.dO, " rows");
  LETS_CORE_CHECK(grad.size(2) >= d.dI, op, "grad has ", grad.size(2), " columns, fewer than f_in's ", d.dI,
                  " new columns");
  d.Oc = grad.size(1) / d.C - d.dO;
  d.I = grad.size(2) - d.dI;
  check_last_dims(op, f_out, f_in, d.Oc, d.I);
  return d;
}

namespace {

// (B*C, dO, Oc): the output factor of every (block, chunk) pair, a view when shared with C == 1
// or stored per block.
at::Tensor batched_out_factor(const at::Tensor& f_out, const WidenDims& d) {
  return f_out.expand({d.B, d.C, d.dO, d.Oc}).reshape({d.B * d.C, d.dO, d.Oc});
}

// (B*C, dI, I): the input factor of every (block, chunk) pair; a stride-0 view when shared.
at::Tensor batched_in_factor(const at::Tensor& f_in, const WidenDims& d) {
  return f_in.unsqueeze(1).expand({d.B, d.C, d.dI, d.I}).reshape({d.B * d.C, d.dI, d.I});
}

// Rows [r0, r0+nr) and columns [c0, c0+nc) of every chunk of a (B, C*(Oc+dO), I+dI) buffer, as
// (B*C, nr, nc). Blocks and chunks merge because the buffer is contiguous.
at::Tensor wide_part(const at::Tensor& wide4, int64_t r0, int64_t nr, int64_t c0, int64_t nc) {
  auto part = wide4.narrow(2, r0, nr).narrow(3, c0, nc);
  return part.view({part.size(0) * part.size(1), nr, nc});
}

// Every product below is written by the GEMM straight into its view of the output buffer: BLAS
// and cuBLAS take the view's leading dimension, so there is no temporary and no copy. (On CPU, a
// product into a temporary and a copy measured slower than the view at 2 threads, and cost a
// temporary the size of each product.)

// dst = a @ b for (batch, n, k) @ (batch, k, m). A single column (m == 1: a LayerNorm vector or a
// bias widened by F_out) is computed as (b^T a^T)^T, a row vector times a matrix: MKL runs that form
// 3-10x faster than the matrix times a column (measured, 2 threads: F (8, 1536, 1536) times a vector
// 10.7 -> 3.5 ms, F^T times a vector 25.7 -> 2.6 ms). dst's transpose is a view of the same memory.
void product_into(const at::Tensor& dst, const at::Tensor& a, const at::Tensor& b) {
  if (b.size(2) == 1) {
    auto dst_t = dst.transpose(1, 2);
    at::bmm_out(dst_t, b.transpose(1, 2), a.transpose(1, 2));
    return;
  }
  auto out = dst;  // bmm_out takes a non-const reference; this is the same view
  at::bmm_out(out, a, b);
}

// acc += a @ b, with a single column done as product_into does it.
void baddbmm_column_(at::Tensor& acc, const at::Tensor& a, const at::Tensor& b) {
  if (b.size(2) != 1) {
    acc.baddbmm_(a, b);
    return;
  }
  acc.transpose(1, 2).baddbmm_(b.transpose(1, 2), a.transpose(1, 2));
}

// dst = x F_in^T for x (B*C, n, I) and dst (B*C, n, dI). A shared F_in whose destination rows are
// evenly spaced across blocks (dst is then one (B*C*n, dI) matrix with a leading dimension) is one
// large GEMM over all blocks' rows, which BLAS runs far more efficiently than a batch of small ones.
void right_product_into(const at::Tensor& dst, const at::Tensor& x, const at::Tensor& f_in, const WidenDims& d) {
  const int64_t n = dst.size(1);
  if (f_in.size(0) == 1 && dst.stride(0) == n * dst.stride(1)) {
    auto rows = dst.as_strided({dst.size(0) * n, d.dI}, {dst.stride(1), 1});
    at::mm_out(rows, x.reshape({x.size(0) * n, d.I}), f_in[0].t());
    return;
  }
  product_into(dst, x, batched_in_factor(f_in, d).transpose(1, 2));  // e.g. the corner, below other rows
}

}  // namespace

at::Tensor widen_impl(const at::Tensor& weight, const std::optional<at::Tensor>& f_out,
                      const std::optional<at::Tensor>& f_in, const WidenDevice& device) {
  const WidenDims d = check_widen(weight, f_out, f_in);
  const auto w = weight.contiguous().view({d.B * d.C, d.Oc, d.I});
  auto out = at::empty({d.B, d.C * (d.Oc + d.dO), d.I + d.dI}, weight.options());
  if (out.numel() == 0) return out;
  const auto wide4 = out.view({d.B, d.C, d.Oc + d.dO, d.I + d.dI});

  device.copy(w, wide_part(wide4, 0, d.Oc, 0, d.I));
  const auto right = wide_part(wide4, 0, d.Oc, d.I, d.dI);  // W F_in^T
  const auto below = wide_part(wide4, d.Oc, d.dO, 0, d.I);  // F_out W
  if (d.dI > 0) right_product_into(right, w, *f_in, d);
  if (d.dO > 0) product_into(below, batched_out_factor(*f_out, d), w);
  if (d.dO > 0 && d.dI > 0) {
    // F_out W F_in^T from whichever one-sided product is already there and cheaper to extend:
    // (F_out W) F_in^T costs dO*I*dI, F_out (W F_in^T) costs dO*Oc*dI.
    const auto corner = wide_part(wide4, d.Oc, d.dO, d.I, d.dI);
    if (d.I <= d.Oc) {
      right_product_into(corner, below, *f_in, d);
    } else {
      product_into(corner, batched_out_factor(*f_out, d), right);
    }
  }
  return out;
}

at::Tensor widen_adjoint_impl(const at::Tensor& grad, const std::optional<at::Tensor>& f_out,
                              const std::optional<at::Tensor>& f_in, const WidenDevice& device) {
  const WidenDims d = check_widen_adjoint(grad, f_out, f_in);
  const BlockCopy copy = device.copy;
  auto out = at::empty({d.B, d.C * d.Oc, d.I}, grad.options());
  if (out.numel() == 0) return out;
  const auto g4 = grad.contiguous().view({d.B, d.C, d.Oc + d.dO, d.I + d.dI});
  auto acc = out.view({d.B * d.C, d.Oc, d.I});

  copy(wide_part(g4, 0, d.Oc, 0, d.I), acc);  // G11
  at::Tensor fi;
  if (d.dI > 0) {  // + G12 F_in
    fi = batched_in_factor(*f_in, d);
    acc.baddbmm_(wide_part(g4, 0, d.Oc, d.I, d.dI), fi);
  }
  if (d.dO > 0) {
    const auto fo_t = batched_out_factor(*f_out, d).transpose(1, 2);
    const auto g21 = wide_part(g4, d.Oc, d.dO, 0, d.I);
    if (d.dI == 0) {
      baddbmm_column_(acc, fo_t, g21);
    } else {
      // F_out^T (G21 + G22 F_in) costs dO*dI*I + Oc*dO*I;
      // F_out^T G21 + (F_out^T G22) F_in costs Oc*dO*I + Oc*dO*dI + Oc*dI*I.
      const auto g22 = wide_part(g4, d.Oc, d.dO, d.I, d.dI);
      const double inner_first = double(d.dO) * d.dI * d.I;
      const double outer_first = double(d.Oc) * d.dO * d.dI + double(d.Oc) * d.dI * d.I;
      if (inner_first <= outer_first) {
        auto t = at::empty({d.B * d.C, d.dO, d.I}, grad.options());
        copy(g21, t);
        t.baddbmm_(g22, fi);
        acc.baddbmm_(fo_t, t);
      } else {
        acc.baddbmm_(fo_t, g21);
        acc.baddbmm_(at::bmm(fo_t, g22), fi);
      }
    }
  }
  return out;
}

}  // namespace lets_core
