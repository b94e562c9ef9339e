"""How close the generation step comes to the machine's matrix-multiply limit.

    python benchmarks/bench_blas_limit.py [--config paper] [--device cpu|cuda] [--dtype float32] [--json PATH]

The generation step (every Aux block weight generated, then backpropagated with fixed cotangents
into the learngene, F and G; the step ``bench_ops.py`` times) is, in work, a list of matrix
products. This benchmark records that list (op and operand shapes of every mm/bmm/addmm/baddbmm
the generation runs forward and backward, seen on the pure-PyTorch reference, which follows the
compiled kernels' product order), times ``torch.mm``/``torch.bmm`` alone at each distinct shape
on fresh contiguous inputs, and compares:

    fraction = (sum over the matrix products of the GEMM's own time) / (the compiled step's time)

i.e. the generation's achieved matmul throughput as a fraction of what this machine's BLAS
(cuBLAS) delivers at the same shapes, dtype and thread count, measured in the same run. 100%
means the step costs only its products; the rest is copies, the depth mixes' memory traffic
and per-op overhead.

"Thin" products, with a dimension below THIN (the depth mixes, K = s, and their coefficient
gradients, a P x s output), are memory-bound reductions written as products by the reference;
the compiled kernels do not run them as GEMMs (on CUDA the coefficient gradient is a reduction:
a GEMM of that shape takes cuBLAS 34 ms at the paper's fc1 on an H100). They are listed and
counted apart, and their time is part of what the fraction calls "the rest". Both times are medians of
``torch.utils.benchmark`` after a warm-up, on ``torch.get_num_threads()`` threads, with CUDA
synchronized; the step and the GEMMs take turns over ``--rounds`` rounds and the median round's
fraction is reported with every round's.
"""

from __future__ import annotations

import argparse
import collections
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode

import lets_core
from bench_common import add_cpu_memory_flag, apply_cpu_memory, records_json
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


THIN = 16


def is_thin(a_shape: tuple, b_shape: tuple) -> bool:
    return min(a_shape[-2], a_shape[-1], b_shape[-1]) < THIN


def product_flops(a_shape: tuple, b_shape: tuple) -> int:
    batch = a_shape[0] if len(a_shape) == 3 else 1
    return 2 * batch * a_shape[-2] * a_shape[-1] * b_shape[-1]


def gemm_ms(a_shape: tuple, b_shape: tuple, device: str, dtype: torch.dtype, min_run_time: float) -> float:
    a = torch.randn(a_shape, device=device, dtype=dtype)
    b = torch.randn(b_shape, device=device, dtype=dtype)
    product = torch.bmm if len(a_shape) == 3 else torch.mm
    return median_ms(lambda: product(a, b), device, min_run_time)


def timed_round(step, shapes: list, device: str, dtype: torch.dtype, min_run_time: float) -> tuple[float, dict]:
    """One round: the compiled step's median, then every GEMM shape's median, back to back."""
    step_ms = median_ms(step, device, min_run_time)
    return step_ms, {shape: gemm_ms(*shape, device, dtype, min_run_time / 4) for shape in shapes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="paper", choices=["tiny", "paper"])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--min-run-time", type=float, default=1.0, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds of (step, every GEMM); the fraction reported is the median round's")
    add_cpu_memory_flag(parser)
    parser.add_argument("--json", type=Path, help="write the record (and every product's timing) here")
    args = parser.parse_args()
    if args.rounds < 1:
        raise SystemExit(f"--rounds must be >= 1, got {args.rounds}")
    apply_cpu_memory(args.cpu_memory)
    if not lets_core.extension_info()["extension_loaded"]:
        raise SystemExit("lets_core._C is not in use; build it first (see benchmarks/README.md)")
    dtype = getattr(torch, args.dtype)
    torch.manual_seed(0)
    aux = lets_core.AuxNet(getattr(lets_core.presets, args.config)()).to(device=args.device, dtype=dtype)

    products = generation_products(aux)
    wide = [shape for shape in products if not is_thin(*shape)]
    thin = [shape for shape in products if is_thin(*shape)]
    flops = sum(product_flops(*shape) * products[shape] for shape in wide)
    thin_flops = sum(product_flops(*shape) * products[shape] for shape in thin)
    thin_count = sum(products[shape] for shape in thin)
    # The step and its GEMMs take turns, so a slow spell of a shared machine moves both: the
    # fraction of each round is a ratio of two times measured back to back.
    step = generation_step(aux, "compiled")
    rounds = []
    for _ in range(args.rounds):
        step_ms, per_shape = timed_round(step, wide, args.device, dtype, args.min_run_time)
        gemm_total = sum(ms * products[shape] for shape, ms in per_shape.items())
        rounds.append({"step_ms": step_ms, "gemm_only_ms": gemm_total, "fraction": gemm_total / step_ms,
                       "per_shape": per_shape})
    rounds.sort(key=lambda r: r["fraction"])
    median = rounds[len(rounds) // 2]
    step_ms, gemm_ms_total, fraction = median["step_ms"], median["gemm_only_ms"], median["fraction"]
    rows = []
    for shape in sorted(products, key=lambda sh: -product_flops(*sh) * products[sh]):
        a_shape, b_shape = shape
        if shape in median["per_shape"]:
            ms = median["per_shape"][shape]
            rows.append({"a": list(a_shape), "b": list(b_shape), "count": products[shape], "thin": False,
                         "gemm_ms": round(ms, 4), "tflops": round(product_flops(*shape) / ms / 1e9, 3)})
        else:
            rows.append({"a": list(a_shape), "b": list(b_shape), "count": products[shape], "thin": True})
    record = {
        "benchmark": "generation step vs matmul limit", "config": args.config, "dtype": args.dtype,
        "products": sum(products.values()) - thin_count, "thin_products": thin_count,
        "matmul_gflop": round(flops / 1e9, 3), "thin_gflop": round(thin_flops / 1e9, 3),
        "step_ms": round(step_ms, 3), "gemm_only_ms": round(gemm_ms_total, 3), "fraction_of_gemm_limit": round(fraction, 4),
        "achieved_tflops": round(flops / step_ms / 1e9, 3), "gemm_limit_tflops": round(flops / gemm_ms_total / 1e9, 3),
        "cpu_memory": args.cpu_memory, "rounds": len(rounds), "round_fractions": [round(r["fraction"], 4) for r in rounds],
        "round_step_ms": [round(r["step_ms"], 1) for r in rounds],
        **environment(args.device), "per_shape": rows,
    }
    print(f"{args.device} {args.config} {args.dtype}, {record['threads']} threads, {args.cpu_memory} CPU memory: generation step fwd+bwd "
          f"{step_ms:.2f} ms; {record['products']} matrix products, {flops / 1e9:.2f} GFLOP: torch.mm/bmm alone "
          f"at those shapes {gemm_ms_total:.2f} ms -> {100 * fraction:.1f}% of the GEMM limit "
          f"({record['achieved_tflops']:.3f} of {record['gemm_limit_tflops']:.3f} TFLOP/s; median of "
          f"{len(rounds)} rounds, all: {', '.join(f'{100 * f:.1f}%' for f in record['round_fractions'])}); "
          f"{thin_count} thin products (mixes, {thin_flops / 1e9:.2f} GFLOP) not counted as GEMMs")
    for row in [r for r in rows if not r["thin"]][:8]:
        print(f"  {row['count']:3d} x {row['a']} @ {row['b']}: {row['gemm_ms']:.3f} ms each, {row['tflops']:.3f} TFLOP/s")
    if args.json:
        args.json.write_text(records_json([record]))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
