"""Where the generation step's time goes: the host issuing ops, or the device running them.

    python benchmarks/profile_step.py [--config tiny|paper] [--device cpu|cuda] [--ways compiled,fallback] [--json PATH]

For each way (``compiled``: lets_core's ops with the compiled kernels; ``fallback``: the
pure-PyTorch reference), the generation step that ``bench_ops.py`` times (every Aux block
weight generated, then fixed cotangents backpropagated into learngene, F and G) runs ``--steps``
times under ``torch.profiler``, each step marked with ``record_function``. Reported per step:

- ``wall_ms``: the step's median time without the profiler (``bench_ops.median_ms``, CUDA
  synchronized);
- ``host_ms``: the host's time inside the step's mark (issuing every op and running the autograd
  engine; on CUDA the kernels run asynchronously, so this is the host's own work unless a
  synchronization blocks it);
- on CUDA, ``device_busy_ms``: the union of the step's kernel, memcpy and memset intervals on the
  GPU, ``device_busy_fraction`` = device_busy_ms / the profiled step's span, and ``kernels`` per
  step; the top kernels by GPU time;
- on CPU (no device), the top ops by their own host time.

``--select`` adds the same profile of one compiled ``select_by_norm`` call on a (16384, 4096)
matrix (issue 13's target shape), whose GPU time the ranking's sorts and the gather share.

A device busy for much less than the step's span is waiting on the host: the step is bound by
op launches, not by the GPU's work, and fewer or fused ops (or CUDA graphs, the
``compiled-graph`` way of ``bench_ops.py``) are what would speed it up. The profiler adds its own
host overhead per op, so host_ms under the profiler exceeds the unprofiled host time; wall_ms is
measured without it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile, record_function

import lets_core
from bench_common import records_json
from bench_ops import environment, generation_step, median_ms

WAYS = ("compiled", "fallback")
STEP_MARK = "lets_core.generation_step"
TOP = 12


def _device_time_us(event) -> float:
    # The attribute was renamed from cuda_time_total to device_time_total across torch versions.
    for name in ("self_device_time_total", "device_time_total", "self_cuda_time_total", "cuda_time_total"):
        value = getattr(event, name, None)
        if value is not None:
            return float(value)
    return 0.0


def union_us(intervals: list[tuple[float, float]]) -> float:
    """Total length of the union of (start, end) intervals."""
    total, end = 0.0, float("-inf")
    for start, stop in sorted(intervals):
        if stop <= end:
            continue
        total += stop - max(start, end)
        end = stop
    return total


def profile_way(aux: lets_core.AuxNet, way: str, device: str, steps: int, min_run_time: float) -> dict:
    return {"benchmark": "generation step profile", "way": way,
            **profile_step(generation_step(aux, way), device, steps, min_run_time)}


def profile_select(device: str, steps: int, min_run_time: float) -> dict:
    """select_by_norm, compiled, on the (16384, 4096) matrix of issue 13's target (k = half)."""
    g = torch.Generator(device="cpu").manual_seed(1)
    matrix = torch.randn(16384, 4096, generator=g).to(device)
    return {"benchmark": "select_by_norm profile", "way": "compiled", "shapes": "(16384,4096) unit 1 k=8192",
            **profile_step(lambda: torch.ops.lets_core.select_by_norm(matrix, 1, 8192, 2, True), device, steps,
                           min_run_time)}


def profile_step(step, device: str, steps: int, min_run_time: float) -> dict:
    """wall_ms, host_ms and (CUDA) the device's busy time and top kernels of ``step`` per call."""
    wall = median_ms(step, device, min_run_time)
    for _ in range(2):  # warm-up outside the profile
        step()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
    if device == "cuda":
        torch.cuda.synchronize()
    with profile(activities=activities) as prof:
        for _ in range(steps):
            with record_function(STEP_MARK):
                step()
        if device == "cuda":
            torch.cuda.synchronize()
    events = prof.events()
    marks = sorted((e for e in events if e.name == STEP_MARK), key=lambda e: e.time_range.start)
    if len(marks) != steps:
        raise RuntimeError(f"expected {steps} profiled steps marked {STEP_MARK!r}, found {len(marks)}")
    record = {"steps": steps, "wall_ms": round(wall, 4),
              "host_ms": round(statistics.median(m.time_range.elapsed_us() for m in marks) / 1e3, 4)}
    if device == "cuda":
        gpu = [e for e in events if e.device_type == DeviceType.CUDA]
        busy = union_us([(e.time_range.start, e.time_range.end) for e in gpu])
        # From the first step's host start to the last GPU activity: what the profiled steps took.
        span = max([e.time_range.end for e in gpu] + [marks[-1].time_range.end]) - marks[0].time_range.start
        record.update(device_busy_ms=round(busy / steps / 1e3, 4), profiled_step_ms=round(span / steps / 1e3, 4),
                      device_busy_fraction=round(busy / span, 3), kernels=round(len(gpu) / steps, 1))
        table = sorted((e for e in prof.key_averages() if _device_time_us(e) > 0), key=_device_time_us, reverse=True)
        record["top_kernels"] = [{"name": e.key[:120], "calls_per_step": round(e.count / steps, 1),
                                  "ms_per_step": round(_device_time_us(e) / steps / 1e3, 4)} for e in table[:TOP]]
    else:
        table = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
        record["top_host_ops"] = [{"name": e.key[:120], "calls_per_step": round(e.count / steps, 1),
                                   "self_ms_per_step": round(e.self_cpu_time_total / steps / 1e3, 4)}
                                  for e in table if e.key != STEP_MARK][:TOP]
    return record


def print_record(r: dict, case: str, device: str) -> None:
    line = f"{device} {case:14} {r['way']:9} wall {r['wall_ms']:9.3f} ms   host (profiled) {r['host_ms']:9.3f} ms"
    if "device_busy_ms" in r:
        line += (f"   device busy {r['device_busy_ms']:8.3f} ms of {r['profiled_step_ms']:8.3f} "
                 f"({100 * r['device_busy_fraction']:.0f}%), {r['kernels']:.0f} kernels")
    print(line, flush=True)
    for row in r.get("top_kernels", r.get("top_host_ops", [])):
        ms = row.get("ms_per_step", row.get("self_ms_per_step"))
        print(f"      {ms:9.3f} ms  {row['calls_per_step']:6.1f}x  {row['name']}")


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="tiny,paper", help="comma list of presets: tiny, paper")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cpu", "cuda"])
    parser.add_argument("--ways", default=",".join(WAYS), help=f"comma list of {WAYS}")
    parser.add_argument("--steps", type=int, default=5, help="profiled steps per way (>= 1)")
    parser.add_argument("--min-run-time", type=float, default=0.5, help="seconds of the unprofiled wall-time measurement")
    parser.add_argument("--select", action="store_true",
                        help="also profile select_by_norm (compiled) on a (16384, 4096) matrix")
    parser.add_argument("--json", type=Path, help="write the records to this file")
    args = parser.parse_args(argv)
    presets = args.config.split(",")
    for name in presets:
        if name not in ("tiny", "paper"):
            raise SystemExit(f"unknown --config {name!r}; allowed: tiny, paper")
    ways = args.ways.split(",")
    for way in ways:
        if way not in WAYS:
            raise SystemExit(f"unknown way {way!r}; allowed: {', '.join(WAYS)}")
    if args.steps < 1:
        raise SystemExit(f"--steps must be >= 1, got {args.steps}")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is available")
    if ("compiled" in ways or args.select) and not lets_core.extension_info()["extension_loaded"]:
        raise SystemExit(f"way 'compiled' needs lets_core._C ({lets_core.extension_info()['extension_status']})")
    records = []
    for preset in presets:
        torch.manual_seed(0)
        aux = lets_core.AuxNet(getattr(lets_core.presets, preset)()).to(args.device)
        for way in ways:
            record = {**profile_way(aux, way, args.device, args.steps, args.min_run_time), "config": preset,
                      **environment(args.device)}
            print_record(record, preset, args.device)
            records.append(record)
        del aux
    if args.select:
        record = {**profile_select(args.device, args.steps, args.min_run_time), **environment(args.device)}
        print_record(record, "select_by_norm", args.device)
        records.append(record)
    if args.json:
        args.json.write_text(records_json(records))
        print(f"wrote {len(records)} records to {args.json}")
    return records


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
