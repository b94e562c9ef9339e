"""How close the generation step comes to the machine's matrix-multiply limit.

    python benchmarks/bench_blas_limit.py [--config paper] [--device cpu|cuda] [--dtype float32] [--json PATH]

The generation step (every Aux block weight generated, then backpropagated with fixed cotangents
into the learngene, F and G; the step ``bench_ops.py`` times) is, in work, a list of matrix
products. This benchmark records that list (op and operand shapes of every mm/bmm/addmm/baddbmm
the generation runs forward and backward, seen on the pure-PyTorch reference, which follows the
compiled kernels' product order), times ``torch.mm``/``torch.bmm`` alone at each distinct shape
on fresh contiguous inputs, and compares:

    fraction = (sum over products of the GEMM's own time) / (the compiled generation step's time)

i.e. the generation's achieved matmul throughput as a fraction of what this machine's BLAS
(cuBLAS) delivers at the same shapes, dtype and thread count, measured in the same run. 100%
means the step costs only its products; the rest is copies, the depth mixes' memory traffic
and per-op overhead. Both times are medians of ``torch.utils.benchmark`` after a warm-up, with
CUDA synchronized.
"""

from __future__ import annotations

import argparse
import collections
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode

import lets_core
from bench_common import records_json
from bench_ops import environment, fallback_ops, generation_step, median_ms

aten = torch.ops.aten
# The products, and which of their arguments are the two matrices (addmm/baddbmm add a first input).
PRODUCTS = {aten.mm.default: (0, 1), aten.bmm.default: (0, 1), aten.addmm.default: (1, 2),
            aten.baddbmm.default: (1, 2)}


class ProductRecorder(TorchDispatchMode):
    """Counts every matrix product by (batched?, shapes of the two matrices)."""

    def __init__(self) -> None:
        super().__init__()
        self.products: collections.Counter = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in PRODUCTS:
            a, b = (args[i] for i in PRODUCTS[func])
            self.products[(tuple(a.shape), tuple(b.shape))] += 1
        return func(*args, **(kwargs or {}))


def generation_products(aux: lets_core.AuxNet) -> collections.Counter:
    """The products of one generation step (forward and backward), from the reference."""
    step = generation_step(aux, "fallback")
    with ProductRecorder() as recorder:
        step()
    return recorder.products


def product_flops(a_shape: tuple, b_shape: tuple) -> int:
    batch = a_shape[0] if len(a_shape) == 3 else 1
    return 2 * batch * a_shape[-2] * a_shape[-1] * b_shape[-1]


def gemm_ms(a_shape: tuple, b_shape: tuple, device: str, dtype: torch.dtype, min_run_time: float) -> float:
    a = torch.randn(a_shape, device=device, dtype=dtype)
    b = torch.randn(b_shape, device=device, dtype=dtype)
    product = torch.bmm if len(a_shape) == 3 else torch.mm
    return median_ms(lambda: product(a, b), device, min_run_time)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="paper", choices=["tiny", "paper"])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--min-run-time", type=float, default=1.0, help="seconds per measurement")
    parser.add_argument("--json", type=Path, help="write the record (and every product's timing) here")
    args = parser.parse_args()
    if not lets_core.extension_info()["extension_loaded"]:
        raise SystemExit("lets_core._C is not in use; build it first (see benchmarks/README.md)")
    dtype = getattr(torch, args.dtype)
    torch.manual_seed(0)
    aux = lets_core.AuxNet(getattr(lets_core.presets, args.config)()).to(device=args.device, dtype=dtype)

    products = generation_products(aux)
    step_ms = median_ms(generation_step(aux, "compiled"), args.device, args.min_run_time)
    rows, gemm_total_ms, flops = [], 0.0, 0
    for (a_shape, b_shape), count in sorted(products.items(), key=lambda kv: -product_flops(*kv[0]) * kv[1]):
        ms = gemm_ms(a_shape, b_shape, args.device, dtype, args.min_run_time / 4)
        gemm_total_ms += ms * count
        flops += product_flops(a_shape, b_shape) * count
        rows.append({"a": list(a_shape), "b": list(b_shape), "count": count, "gemm_ms": round(ms, 4),
                     "tflops": round(product_flops(a_shape, b_shape) / ms / 1e9, 3)})
    fraction = gemm_total_ms / step_ms
    record = {
        "benchmark": "generation step vs matmul limit", "config": args.config, "dtype": args.dtype,
        "products": sum(products.values()), "distinct_shapes": len(products), "matmul_gflop": round(flops / 1e9, 3),
        "step_ms": round(step_ms, 3), "gemm_only_ms": round(gemm_total_ms, 3), "fraction_of_gemm_limit": round(fraction, 4),
        "achieved_tflops": round(flops / step_ms / 1e9, 3), "gemm_limit_tflops": round(flops / gemm_total_ms / 1e9, 3),
        **environment(args.device), "per_shape": rows,
    }
    print(f"{args.device} {args.config} {args.dtype}: generation step fwd+bwd {step_ms:.2f} ms, "
          f"{record['products']} products ({len(products)} shapes), {flops / 1e9:.2f} GFLOP; "
          f"torch.mm/bmm alone at those shapes {gemm_total_ms:.2f} ms -> {100 * fraction:.1f}% of the GEMM limit "
          f"({record['achieved_tflops']:.3f} of {record['gemm_limit_tflops']:.3f} TFLOP/s)")
    for row in rows[:8]:
        print(f"  {row['count']:3d} x {row['a']} @ {row['b']}: {row['gemm_ms']:.3f} ms each, {row['tflops']:.3f} TFLOP/s")
    if args.json:
        args.json.write_text(records_json([record]))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
