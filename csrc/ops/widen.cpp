// widen and widen_adjoint, device-independent: their argument checks (the twins of widen and
// widen_adjoint in lets_core/ops/widen.py) and the widening itself, written once for every
// device: ATen's matmul family (BLAS on CPU, cuBLAS on CUDA) fills views of one output buffer,
// and the device supplies only its block copy and where its GEMMs write (a WidenDevice:
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

// x F_in^T for x (B*C, n, I) contiguous. A shared factor makes it one large GEMM over all blocks,
// which BLAS runs far more efficiently than a batch of small ones.
at::Tensor right_product(const at::Tensor& x, const at::Tensor& f_in, const WidenDims& d) {
  if (f_in.size(0) == 1) {
    return at::mm(x.reshape({x.size(0) * x.size(1), d.I}), f_in[0].t()).view({x.size(0), x.size(1), d.dI});
  }
  return at::bmm(x, batched_in_factor(f_in, d).transpose(1, 2));
}

// a @ b for (batch, n, k) @ (batch, k, m). A single column (m == 1: a LayerNorm vector or a bias
// widened by F_out) is computed as (b^T a^T)^T, a row vector times a matrix: MKL runs that form
// 3-10x faster than the matrix times a column (measured, 2 threads: F (8, 1536, 1536) times a vector
// 10.7 -> 3.5 ms, F^T times a vector 25.7 -> 2.6 ms). The result is the same (batch, n, 1) layout.
at::Tensor bmm_column(const at::Tensor& a, const at::Tensor& b) {
  if (b.size(2) != 1) return at::bmm(a, b);
  return at::bmm(b.transpose(1, 2), a.transpose(1, 2)).transpose(1, 2);
}

// acc += a @ b, with a single column done as bmm_column does it (acc's transpose is a view).
void baddbmm_column_(at::Tensor& acc, const at::Tensor& a, const at::Tensor& b) {
  if (b.size(2) != 1) {
    acc.baddbmm_(a, b);
    return;
  }
  acc.transpose(1, 2).baddbmm_(b.transpose(1, 2), a.transpose(1, 2));
}

// dst = a @ b for (batch, n, k) @ (batch, k, m), where the device wants it (WidenDevice). Returns
// the product's tensor (dst itself, or the contiguous temporary) so the corner can reuse it.
at::Tensor product_into(at::Tensor dst, const at::Tensor& a, const at::Tensor& b, const WidenDevice& device) {
  if (device.gemm_into_views) {  // a view of the right size: bmm_out neither resizes nor copies it
    at::bmm_out(dst, a, b);
    return dst;
  }
  auto product = bmm_column(a, b);
  device.copy(product, dst);
  return product;
}

// x F_in^T into dst, x (B*C, n, I).
at::Tensor right_product_into(const at::Tensor& dst, const at::Tensor& x, const at::Tensor& f_in, const WidenDims& d,
                              const WidenDevice& device) {
  if (device.gemm_into_views || f_in.size(0) != 1) {
    return product_into(dst, x, batched_in_factor(f_in, d).transpose(1, 2), device);
  }
  auto product = right_product(x.contiguous(), f_in, d);  // one large GEMM, then the copy
  device.copy(product, dst);
  return product;
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
  at::Tensor right, below;  // W F_in^T and F_out W, wherever product_into left them
  if (d.dI > 0) right = right_product_into(wide_part(wide4, 0, d.Oc, d.I, d.dI), w, *f_in, d, device);
  if (d.dO > 0) below = product_into(wide_part(wide4, d.Oc, d.dO, 0, d.I), batched_out_factor(*f_out, d), w, device);
  if (d.dO > 0 && d.dI > 0) {
    // F_out W F_in^T from whichever one-sided product is already there and cheaper to extend:
    // (F_out W) F_in^T costs dO*I*dI, F_out (W F_in^T) costs dO*Oc*dI.
    const auto corner = wide_part(wide4, d.Oc, d.dO, d.I, d.dI);
    if (d.I <= d.Oc) {
      right_product_into(corner, below, *f_in, d, device);
    } else {
      product_into(corner, batched_out_factor(*f_out, d), right, device);
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
