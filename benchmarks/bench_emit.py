"""Time and peak memory to emit Des-Nets from a paper-configuration bundle.

Cases: Des-H6-L12 alone, Des-H12-L12 alone (``emit_des``), and twelve sizes in one go, both one
by one (``emit_des`` per size) and with ``emit_des_many`` (one generation, gathers). Each is run
compiled and on the fallback, in separate processes.

    python benchmarks/bench_emit.py --json benchmarks/results/emit_cpu.json
    python benchmarks/bench_emit.py --device cuda
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

from bench_common import append_json, device_name, emit_result, run_variant

TWELVE = [(h, l) for h in (6, 9, 12) for l in (13, 14, 15, 16)]
CASES = ("H6-L12", "H12-L12", "twelve-one-by-one", "twelve-many")


def worker(args: argparse.Namespace) -> dict:
    import torch

    import lets_core
    from lets_core._extension import extension_info

    case, impl = args.variant.split(":")
    device = torch.device(args.device)
    torch.manual_seed(0)
    aux = lets_core.AuxNet(lets_core.presets.paper()).to(device)

    def run() -> list:
        if case == "H6-L12":
            return [lets_core.emit_des(aux, 6, 12, args.strategy)]
        if case == "H12-L12":
            return [lets_core.emit_des(aux, 12, 12, args.strategy)]
        if case == "twelve-one-by-one":
            return [lets_core.emit_des(aux, h, l, args.strategy) for h, l in TWELVE]
        return lets_core.emit_des_many(aux, TWELVE, args.strategy)

    run()  # warm-up (first-call allocations, kernel selection)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        models = run()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
        params = sum(p.numel() for m in models for p in m.parameters())
        del models
    if device.type == "cuda":
        peak_mb = (torch.cuda.max_memory_allocated() - base) / 2**20
    else:
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    times.sort()
    return {
        "benchmark": "emit", "case": case, "impl": impl, "strategy": args.strategy,
        "device": device_name(device), "median_s": times[len(times) // 2], "repeats": args.repeats,
        "peak_mem_mb": peak_mb, "peak_kind": "allocator above bundle" if device.type == "cuda" else "process max RSS",
        "des_params": params, "threads": torch.get_num_threads(), "torch": torch.__version__,
        "extension_loaded": extension_info()["extension_loaded"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--strategy", default="top-l2")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--json", type=Path)
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        emit_result(worker(args))
        return
    base = ["--device", args.device, "--strategy", args.strategy, "--repeats", str(args.repeats)]
    records = []
    for case in args.cases.split(","):
        if case not in CASES:
            raise SystemExit(f"unknown case {case!r}; allowed: {CASES}")
        for impl in ("compiled", "fallback"):
            record = run_variant(__file__, base, f"{case}:{impl}", fallback=impl == "fallback")
            if record is not None:
                records.append(record)
    if records:
        r0 = records[0]
        print(f"Des-Net emission, paper configuration, strategy {r0['strategy']}, {r0['device']}, "
              f"torch {r0['torch']}, {r0['threads']} threads")
        print(f"{'case':<20}{'impl':<10}{'median s':>10}{'peak MB':>10}{'Des params (M)':>16}")
        for r in records:
            print(f"{r['case']:<20}{r['impl']:<10}{r['median_s']:>10.2f}{r['peak_mem_mb']:>10.0f}"
                  f"{r['des_params'] / 1e6:>16.1f}")
    append_json(args.json, records)


if __name__ == "__main__":
    main()
