"""Benchmarks of the lets_core ops and of the whole Aux-Net generation step.

    python benchmarks/bench_ops.py [--device cpu|cuda|all] [--dtype float32] [--quick] [--json PATH]

Times each op (forward, and forward+backward) with the compiled kernels ("compiled": the
``torch.ops.lets_core`` ops with lets_core._C loaded) against the pure-PyTorch fallback
("fallback": the reference kernels, ``<op>_reference`` in ``lets_core/ops/<op>.py``, under ordinary
autograd), at the paper configuration's shapes and the tiny preset's (widen_mix in the order its cost
model picks, ``lets_core/ops/widen_mix_order.py``). Then the whole generation step (all learngene blocks and module types, forward+backward)
four ways: compiled, fallback, "fallback-naive" (the reference with every widening done block by
block before the mix, i.e. without widen_mix's cost model), and "released-code" (every Aux layer
widens its group's blocks again with concatenations, then mixes, as the authors' code does).
On CUDA it also times a plain matmul of the largest product's shape, for a throughput ratio, and
the compiled and fallback generation replayed as CUDA graphs ("compiled-graph", "fallback-graph":
the step without the host's op launches, ``graphed_generation.py``).

Every number is the median of ``torch.utils.benchmark.Timer.blocked_autorange`` after a warm-up,
with CUDA synchronized; inputs are random (never zeros). The generation-step ways take turns over
``--rounds`` rounds and report the median round. Run it from outside the checkout or with
the compiled library built in place (``PYTHONPATH=.``) so that lets_core._C is importable.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import platform
import sys
from pathlib import Path
from typing import Callable

import torch
from torch.utils import benchmark

import lets_core
from bench_common import records_json
from lets_core.ops import _registry, widen_mix_order
from lets_core.ops.group_mix import group_mix_reference
from lets_core.ops.select_by_norm import select_by_norm_reference
from lets_core.ops.widen import widen_adjoint_reference, widen_reference
from lets_core.ops.widen_mix import widen_mix_reference
from graphed_generation import check_graphed_matches, graphed_generation
from released_code import check_same, generation_matmul_flops, released_code_state

OPS = torch.ops.lets_core


def median_ms(fn: Callable[[], object], device: str, min_run_time: float) -> float:
    fn()  # warm-up (allocator, BLAS/cuBLAS handles, lazy init)
    if device == "cuda":
        torch.cuda.synchronize()
    # Timer runs its statement on 1 thread unless told otherwise; time it on the threads recorded.
    timer = benchmark.Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())
    return timer.blocked_autorange(min_run_time=min_run_time).median * 1e3


def fwd_bwd(fn: Callable[..., object], args: list, grads: list) -> Callable[[], None]:
    """fn(*args) then backward with fixed random cotangents (inputs already require grad)."""
    def run() -> None:
        out = fn(*args)
        outs = list(out) if isinstance(out, tuple) else [out]
        torch.autograd.backward(outs, grads[: len(outs)])
    return run


def op_cases(cfg: lets_core.LetsConfig, device: str, dtype: torch.dtype):
    """(op name, shapes text, compiled fn, fallback fn, args) for the paper/tiny widen + mix shapes."""
    lg, delta = cfg.learngene, cfg.delta
    d, big_l, s = lg.embed_dim, lg.depth, cfg.transform.group_size
    hid, hid_d = lg.mlp_hidden(d), lg.mlp_hidden(delta)
    g = torch.Generator(device="cpu").manual_seed(0)

    def t(*shape):
        return torch.rand(*shape, generator=g).to(device=device, dtype=dtype).requires_grad_()

    yield "widen qkv", f"W({big_l},{3*d},{d}) Fq({big_l},3,{delta},{d}) Fe({delta},{d})", OPS.widen, \
        widen_reference, [t(big_l, 3 * d, d), t(big_l, 3, delta, d), t(1, delta, d)]
    yield "widen fc1", f"W({big_l},{hid},{d}) Fffn({big_l},{hid_d},{hid}) Fe", OPS.widen, \
        widen_reference, [t(big_l, hid, d), t(big_l, 1, hid_d, hid), t(1, delta, d)]
    yield "widen fc2", f"W({big_l},{d},{hid}) Fe Fffn({big_l},{hid_d},{hid})", OPS.widen, \
        widen_reference, [t(big_l, d, hid), t(1, 1, delta, d), t(big_l, hid_d, hid)]
    rows = cfg.num_rows
    for name, args in (
            ("fc1", [t(big_l, hid, d), t(big_l, 1, hid_d, hid), t(1, delta, d), t(rows, s)]),
            ("fc2", [t(big_l, d, hid), t(1, 1, delta, d), t(big_l, hid_d, hid), t(rows, s)])):
        order = widen_mix_order.choose_order(widen_mix_order.WidenMixShape.of(*args))
        yield (f"widen_mix {name}", f"{name} shapes, coeff({rows},{s}), order {order.name}",
               lambda *a, o=int(order): OPS.widen_mix(*a, o)[0], lambda *a, o=int(order): widen_mix_reference(*a, o)[0],
               args)
    yield "group_mix fc1", f"stack({big_l},{hid + hid_d},{d + delta}) coeff({rows},{s})", OPS.group_mix, \
        group_mix_reference, [t(big_l, hid + hid_d, d + delta), t(rows, s)]


def select_cases(device: str, dtype: torch.dtype, quick: bool):
    g = torch.Generator(device="cpu").manual_seed(1)
    shapes = [(1536, 2 * 1536, 1), (384, 2 * 3 * 384, 64)] + ([] if quick else [(16384, 4096, 1)])
    for rows, cols, unit in shapes:
        m = torch.randn(rows, cols, generator=g).to(device=device, dtype=dtype)
        k = rows // unit // 2
        yield f"select_by_norm top-l2 k={k}", f"({rows},{cols}) unit {unit}", m, unit, k


class _ReferenceOps:
    """Stands in for ``torch.ops.lets_core`` in lets_core.ops's public wrappers: the reference
    kernels, run under ordinary autograd (no custom op, no compiled kernel)."""

    widen = staticmethod(widen_reference)
    widen_adjoint = staticmethod(widen_adjoint_reference)
    group_mix = staticmethod(group_mix_reference)
    widen_mix = staticmethod(widen_mix_reference)
    select_by_norm = staticmethod(select_by_norm_reference)


class _NaiveReferenceOps(_ReferenceOps):
    """The reference with every widen_mix in the BLOCKS order (widen each block, then mix): what
    a direct PyTorch transcription of the formulas does, with no cost model."""

    @staticmethod
    def widen_mix(weight, f_out, f_in, coeff, order):
        return widen_mix_reference(weight, f_out, f_in, coeff, widen_mix_order.WidenMixOrder.BLOCKS)


@contextlib.contextmanager
def fallback_ops(naive: bool = False):
    """Run lets_core's generation on the pure-PyTorch reference (as without the extension)."""
    saved, _registry.lets_core = _registry.lets_core, _NaiveReferenceOps if naive else _ReferenceOps
    try:
        yield
    finally:
        _registry.lets_core = saved


GRAPH_TOLERANCE = 1e-4  # relative; the graphed generation must match the eager one before it is timed


def generation_step(aux: lets_core.AuxNet, way: str) -> Callable[[], None]:
    """Generate every Aux block weight and backpropagate fixed cotangents into learngene, F and G.

    Ways ``compiled-graph`` and ``fallback-graph`` (CUDA only) replay the compiled or the
    reference generation as CUDA graphs (``graphed_generation.py``), after checking that the
    graphs compute what the eager generation computes."""
    def ops_for_way():
        return fallback_ops(naive=way == "fallback-naive") if way.startswith("fallback") else contextlib.nullcontext()

    if way == "released-code":
        make = released_code_state
    elif way.endswith("-graph"):
        with ops_for_way():  # captured once; a replay runs the captured kernels whatever the ops are
            graphed = graphed_generation(aux)
        worst = check_graphed_matches(aux, graphed)
        if worst > GRAPH_TOLERANCE:
            raise AssertionError(f"{way}: the graphed generation differs from the eager one by {worst:.1e} "
                                 f"(relative; tolerance {GRAPH_TOLERANCE:.0e})")
        print(f"{way}: graphed generation matches the eager one (largest relative difference {worst:.1e})")
        make = lambda a: graphed()  # noqa: E731
    else:
        make = lambda a: a.generate()  # noqa: E731

    with ops_for_way():
        keys = sorted(k for k in make(aux) if k.startswith("blocks."))
    g = torch.Generator().manual_seed(2)
    probe = make(aux)
    cot = {k: torch.randn(probe[k].shape, generator=g).to(probe[k]) for k in keys}
    del probe

    def run() -> None:
        with ops_for_way():
            state = make(aux)
            torch.autograd.backward([state[k] for k in keys], [cot[k] for k in keys])
        aux.zero_grad(set_to_none=True)
    return run


def interleaved_medians(aux: lets_core.AuxNet, ways: tuple[str, ...], device: str, min_run_time: float,
                        rounds: int) -> dict[str, tuple[float, tuple[float, float]]]:
    """Per way: the median over ``rounds`` of its median time, with (min, max) over the rounds.
    The ways take turns in every round, so a slow spell of a shared machine hits them alike and
    the ratios stay meaningful even when the absolute times drift."""
    steps = {}
    for way in ways:
        try:
            steps[way] = generation_step(aux, way)
        except Exception as exc:  # noqa: BLE001 - a graph that fails to capture or to match is reported, not timed
            if not way.endswith("-graph"):
                raise
            print(f"{way}: NOT TIMED, the CUDA graph failed: {type(exc).__name__}: {exc}", flush=True)
    times: dict[str, list[float]] = {way: [] for way in steps}
    for _ in range(rounds):
        for way in steps:
            times[way].append(median_ms(steps[way], device, min_run_time))
    return {way: (sorted(t)[len(t) // 2], (min(t), max(t))) for way, t in times.items()}


def environment(device: str) -> dict:
    return {
        "device": torch.cuda.get_device_name() if device == "cuda" else (platform.processor() or platform.machine()),
        "torch": torch.__version__, "cuda": torch.version.cuda, "threads": torch.get_num_threads(),
        "python": platform.python_version(), "date": datetime.date.today().isoformat(),
        "extension": lets_core.extension_info()["extension_status"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="all", choices=["cpu", "cuda", "all"])
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--quick", action="store_true", help="tiny preset and small selections only")
    parser.add_argument("--min-run-time", type=float, default=1.0, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=5,
                        help="interleaved rounds of the generation-step comparison (median over rounds)")
    parser.add_argument("--json", help="write one record per measurement to this file")
    args = parser.parse_args()
    if not lets_core.extension_info()["extension_loaded"]:
        sys.exit(f"lets_core._C is not in use ({lets_core.extension_info()['extension_status']}); "
                 "build it first (see benchmarks/README.md)")
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    devices = [d for d in devices if d == "cpu" or torch.cuda.is_available()]
    dtype = getattr(torch, args.dtype)
    records: list[dict] = []

    def record(op, shapes, device, impl, mode, ms, **extra):
        env = environment(device)
        records.append({"op": op, "shapes": shapes, "dtype": args.dtype, "implementation": impl, "mode": mode,
                        "median_ms": round(ms, 4), **env, **extra})
        print(f"{device:4} {op:28} {mode:8} {impl:13} {ms:10.3f} ms  {shapes}", flush=True)

    presets = [("tiny", lets_core.presets.tiny())] + ([] if args.quick else [("paper", lets_core.presets.paper())])
    for device in devices:
        print(f"== {device}: {environment(device)}")
        for preset, cfg in presets:
            for op, shapes, compiled, fallback, inputs in op_cases(cfg, device, dtype):
                with torch.no_grad():
                    outs = compiled(*inputs)
                grads = [torch.randn_like(outs)]
                for impl, fn in (("compiled", compiled), ("fallback", fallback)):
                    with torch.no_grad():
                        ms = median_ms(lambda: fn(*inputs), device, args.min_run_time)
                    record(op, f"{preset}: {shapes}", device, impl, "forward", ms)
                    ms = median_ms(fwd_bwd(fn, inputs, grads), device, args.min_run_time)
                    record(op, f"{preset}: {shapes}", device, impl, "fwd+bwd", ms)
        for op, shapes, m, unit, k in select_cases(device, dtype, args.quick):
            for impl, fn in (("compiled", OPS.select_by_norm), ("fallback", select_by_norm_reference)):
                ms = median_ms(lambda: fn(m, unit, k, 2, True), device, args.min_run_time)
                record(op, shapes, device, impl, "forward", ms)
        if device == "cuda" and not args.quick:
            a = torch.rand(8, 1536, 1536, device=device, dtype=dtype)
            b = torch.rand(8, 1536, 384, device=device, dtype=dtype)
            ms = median_ms(lambda: torch.bmm(a, b), device, args.min_run_time)
            record("matmul (8,1536,1536)@(8,1536,384)", "throughput reference", device, "torch.bmm", "forward", ms,
                   tflops=round(2 * 8 * 1536 * 1536 * 384 / ms / 1e9, 2))
        for preset, cfg in presets:
            torch.manual_seed(0)
            aux = lets_core.AuxNet(cfg).to(device=device, dtype=dtype)
            # The baseline must be the released algorithm: same weights, and its work counted beside ours.
            diff = check_same(aux)
            flops = generation_matmul_flops(aux, fallback_ops)
            print(f"{device:4} generation forward matmul GFLOPs ({preset}): released {flops['released'] / 1e9:.3f}, "
                  f"lets_core {flops['lets'] / 1e9:.3f} ({flops['released'] / flops['lets']:.2f}x); "
                  f"max weight difference {diff:.1e}", flush=True)
            records.append({"op": "generation forward matmul FLOPs", "shapes": f"{preset}: all blocks and module types",
                            "released_code_flops": flops["released"], "lets_flops": flops["lets"],
                            "ratio": round(flops["released"] / flops["lets"], 3), "max_weight_difference": diff,
                            **environment(device)})
            ways = ("compiled", "fallback", "fallback-naive", "released-code")
            if device == "cuda":
                ways += ("compiled-graph", "fallback-graph")
            for way, (ms, spread) in interleaved_medians(aux, ways, device, args.min_run_time, args.rounds).items():
                record("generation step", f"{preset}: all blocks and module types", device, way, "fwd+bwd", ms,
                       rounds=args.rounds, min_ms=round(spread[0], 4), max_ms=round(spread[1], 4))
            del aux
    if args.json:
        Path(args.json).write_text(records_json(records))
        print(f"wrote {len(records)} records to {args.json}")


if __name__ == "__main__":
    main()
