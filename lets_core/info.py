"""What lets_core was built with and which kernel each op runs: ``python -m lets_core.info``
(``--json`` for the raw dict). ``lets_core.extension_info()`` returns the same facts."""

from __future__ import annotations

import json
import sys
from typing import Any

from ._extension import extension_info


def format_info(info: dict[str, Any]) -> str:
    build = info["build"]
    lines = [
        f"python {info['python']}, torch {info['torch']} (CUDA {info['torch_cuda']}), "
        f"{info['threads']} CPU threads, CUDA available: {info['cuda_available']} {info['devices'] or ''}".rstrip(),
        f"extension lets_core._C: {info['extension_status']}",
    ]
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
    args = sys.argv[1:] if argv is None else argv
    info = extension_info()
    print(json.dumps(info, indent=2) if "--json" in args else format_info(info))


if __name__ == "__main__":
    main()
