"""What lets_core was built with and which kernel each op runs: ``python -m lets_core.info``
(``--json`` for the raw dict). ``lets_core.extension_info()`` returns the same facts."""

from __future__ import annotations

import argparse
import json
import platform
import sys
from typing import Any

import torch

from ._extension import extension_info, load, op_kernels


def run_environment(device: torch.device | str, processes: int) -> dict[str, Any]:
    """What a run report records of the process that made it: versions, threads, device, and which
    kernels the lets_core ops ran on that device (a run on the fallback is slower, and its report
    said nothing of it)."""
    state = load()
    key = "CUDA" if torch.device(device).type == "cuda" else "CPU"
    kernels = sorted({keys[key] for keys in op_kernels().values()})
    return {"torch": torch.__version__, "threads": torch.get_num_threads(), "python": platform.python_version(),
            "machine": platform.machine(), "device": str(device), "processes": processes,
            "lets_core_kernels": kernels[0] if len(kernels) == 1 else "mixed",
            "extension_status": state.reason}


def kernels_clause(environment: dict[str, Any]) -> str:
    """A report's words for the kernels its run used (", compiled lets_core kernels"); empty for
    reports written before the record."""
    kernels = environment.get("lets_core_kernels")
    if kernels is None:
        return ""
    if kernels == "compiled":
        return ", compiled lets_core kernels"
    return f", {kernels} lets_core kernels ({environment['extension_status']})"


def format_info(info: dict[str, Any]) -> str:
    build = info["build"]
    lines = [
        f"python {info['python']}, torch {info['torch']} (CUDA {info['torch_cuda']}), "
        f"{info['threads']} CPU threads, CUDA available: {info['cuda_available']} {info['devices'] or ''}".rstrip(),
        f"package {info['package']}",
        f"extension lets_core._C: {info['extension_status']}",
    ]
    if info["library"]:
        lines.append(f"  library {info['library']}")
    if build:
        cuda = (f"CUDA {build['cuda_version']} for archs {build['cuda_archs']}" if build.get("with_cuda")
                else "no CUDA kernels")
        lines.append(f"  built for torch {build['torch_version']} with {build['build_tool']}, {cuda}")
        for key, ops in sorted(build.get("kernels", {}).items()):
            lines.append(f"  compiled {key} kernels: {', '.join(ops)}")
    lines += [f"  warning: {w}" for w in info["extension_warnings"]]
    lines.append("kernel each op runs:")
    width = max(len(op) for op in info["ops"])
    for op, keys in info["ops"].items():
        lines.append(f"  {op:<{width}}  " + "  ".join(f"{k}: {v}" for k, v in keys.items()))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    # argparse, so that a mistyped flag exits 2 with the usage line instead of being ignored.
    parser = argparse.ArgumentParser(prog="python -m lets_core.info", description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print the raw dict as JSON")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    info = extension_info()
    print(json.dumps(info, indent=2) if args.json else format_info(info))


if __name__ == "__main__":
    main()
