"""Shared plumbing of the end-to-end benchmarks: one subprocess per variant, records as JSON."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

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
