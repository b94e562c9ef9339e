"""Shared plumbing of the end-to-end benchmarks: one subprocess per variant, records as JSON."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Iterable

RESULT_PREFIX = "RESULT "


def run_variant(script: str, args: list[str], variant: str, fallback: bool) -> dict | None:
    """Run ``script --variant variant`` in a fresh process (its own peak memory, its own op
    dispatch: the extension switch is read at import); returns its result record."""
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    if fallback:
        env["LETS_CORE_DISABLE_EXTENSION"] = "1"
    done = subprocess.run([sys.executable, script, *args, "--variant", variant], env=env,
                          capture_output=True, text=True)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith(RESULT_PREFIX)]
    if done.returncode != 0 or not lines:
        print(f"{variant}: failed\n{done.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(lines[-1][len(RESULT_PREFIX):])


def checked_variants(text: str, allowed: tuple[str, ...], rounds: int) -> list[str]:
    """The ``--variants`` comma list, each one of ``allowed``, and a ``--rounds`` of at least 1."""
    variants = text.split(",")
    for variant in variants:
        if variant not in allowed:
            raise SystemExit(f"unknown variant {variant!r}; allowed: {allowed}")
    if rounds < 1:
        raise SystemExit(f"--rounds must be >= 1, got {rounds}")
    return variants


def interleaved_rounds(script: str, args: list[str], variants: list[str], rounds: int,
                       fallback: Callable[[str], bool] = lambda variant: False) -> list[dict]:
    """Run every variant once per round, taking turns, so a slow spell of a shared machine hits them
    alike; each variant's record is its median round, with the round medians attached."""
    runs: dict[str, list[dict]] = {v: [] for v in variants}
    for _ in range(rounds):
        for variant in variants:
            record = run_variant(script, args, variant, fallback=fallback(variant))
            if record is not None:
                runs[variant].append(record)
    records = []
    for variant, done in runs.items():
        if done:
            done.sort(key=lambda r: r["median_ms"])
            records.append({**done[len(done) // 2], "rounds": len(done),
                            "round_median_ms": [round(r["median_ms"], 1) for r in done]})
    return records


def add_cpu_memory_flag(parser) -> None:
    """--cpu-memory: whether the timed process keeps freed blocks (lets_core.cpu_memory)."""
    from lets_core.cpu_memory import MODES
    parser.add_argument("--cpu-memory", default="release", choices=MODES,
                        help="reuse: glibc keeps freed blocks for reuse (lets_core.cpu_memory, what the lets "
                             "training commands do); release: glibc's own settings, freed blocks go back")


def apply_cpu_memory(mode: str) -> None:
    """Set up this process as --cpu-memory says; a setting glibc refuses ends the benchmark."""
    from lets_core import cpu_memory
    if mode == "reuse" and not cpu_memory.reuse_freed_memory():
        raise SystemExit("--cpu-memory reuse: the C library did not take the settings (see the warning)")


def emit_result(record: dict) -> None:
    print(RESULT_PREFIX + json.dumps(record))


def device_name(device) -> str:
    import torch
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.machine()}, {os.cpu_count()} cores)"


def records_json(records: list[dict]) -> str:
    """A JSON list with one record per line: diffs stay readable and files stay short."""
    return "[\n" + ",\n".join(json.dumps(r) for r in records) + "\n]\n"


def append_json(path: Path | None, records: list[dict]) -> None:
    if path is None:
        return
    old = json.loads(path.read_text()) if path.exists() else []
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(records_json(old + records))


def saved_for_backward_mb(forward: Callable[[], Any], params: Iterable) -> float:
    """Unique storage MiB autograd saves for backward while ``forward()`` runs (activations and
    generated weights), the parameters' own storage excluded."""
    import torch

    storages: dict[int, int] = {}

    def pack(t):
        st = t.untyped_storage()
        storages[st.data_ptr()] = st.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = forward()
    skip = {p.untyped_storage().data_ptr() for p in params}
    del out
    return sum(n for ptr, n in storages.items() if ptr not in skip) / 2**20


def train_state_mb(model, opt) -> float:
    """MiB of trainable parameters, their gradients and the optimizer's state tensors."""
    tensors = []
    for p in model.parameters():
        if p.requires_grad:
            tensors += [p] + ([p.grad] if p.grad is not None else [])
    for state in opt.state.values():
        tensors += [v for v in state.values() if hasattr(v, "element_size") and v.dim() > 0]
    return sum(t.numel() * t.element_size() for t in tensors) / 2**20
