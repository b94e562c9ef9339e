"""Compile-only check of the CUDA sources (CI has no GPU): every .cu in a cuda/ folder under csrc/
(csrc/ops/cuda/<op>_kernel.cu, which also registers the op's CUDA kernel) with nvcc for the
requested architectures, and any .cpp there with the host compiler, with the flags a real CUDA
build uses. Nothing is linked, so it takes a fraction of a full extension build.

    python tests/cuda_compile_check.py [--arch 9.0] [--jobs 2]

Needs a CUDA toolkit (CUDA_HOME, or /usr/local/cuda-<torch's CUDA version>) and a CUDA build of
torch; exits non-zero with the compiler output if anything fails.
"""

from __future__ import annotations

import argparse
import glob
import os
import subprocess
import sys
import sysconfig
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent


def cuda_home() -> Path:
    for c in (os.environ.get("CUDA_HOME"), f"/usr/local/cuda-{torch.version.cuda}", "/usr/local/cuda"):
        if c and (Path(c) / "bin" / "nvcc").is_file():
            return Path(c)
    raise SystemExit(f"no CUDA toolkit found (set CUDA_HOME); torch {torch.__version__} wants CUDA {torch.version.cuda}")


def include_flags(home: Path) -> list[str]:
    os.environ["CUDA_HOME"] = str(home)  # read when cpp_extension is imported
    from torch.utils import cpp_extension
    try:
        paths = cpp_extension.include_paths(device_type="cuda")
    except TypeError:  # torch < 2.6 spells it cuda=True
        paths = cpp_extension.include_paths(cuda=True)
    paths = [p for p in paths if "cuda" not in Path(p).name or Path(p).exists()]
    paths += [str(home / "include"), sysconfig.get_paths()["include"]]
    # cuBLAS/cuSPARSE headers that torch's CUDA headers include come with torch's nvidia wheels.
    for entry in sys.path:
        paths += sorted(glob.glob(os.path.join(entry, "nvidia", "*", "include")))
    return [f"-I{p}" for p in dict.fromkeys(paths)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default=os.environ.get("TORCH_CUDA_ARCH_LIST", "9.0"),
                        help="compute capabilities, e.g. '9.0' or '8.0;9.0'")
    parser.add_argument("--jobs", type=int, default=int(os.environ.get("MAX_JOBS", "2")))
    args = parser.parse_args()
    if torch.version.cuda is None:
        raise SystemExit(f"torch {torch.__version__} is a CPU-only build; the CUDA check needs a CUDA torch")
    home = cuda_home()
    incs = include_flags(home)
    std = "-std=c++20" if tuple(int(x) for x in torch.__version__.split(".")[:2]) >= (2, 10) else "-std=c++17"
    defs = ["-DLETS_CORE_WITH_CUDA", "-DTORCH_EXTENSION_NAME=_C", f"-D_GLIBCXX_USE_CXX11_ABI={int(torch._C._GLIBCXX_USE_CXX11_ABI)}"]
    gencode = []
    for arch in args.arch.replace(",", ";").replace(" ", ";").split(";"):
        if arch:
            num = arch.replace(".", "").replace("+PTX", "")
            gencode.append(f"-gencode=arch=compute_{num},code=sm_{num}")
    out = Path(tempfile.mkdtemp(prefix="lets_core_cuda_check_"))
    jobs = []
    # The CUDA sources as setup.py picks them: those inside a cuda/ folder under csrc/.
    cuda_sources = [p for p in sorted((ROOT / "csrc").rglob("*")) if "cuda" in p.relative_to(ROOT).parts[:-1]]
    for src in cuda_sources:
        obj = str(out / (src.name + ".o"))  # the full name: widen_kernel.cu and widen_kernel.cpp may both exist
        if src.suffix == ".cu":
            jobs.append([str(home / "bin" / "nvcc"), "-c", str(src), "-o", obj, std, "-O3",
                         "--expt-relaxed-constexpr", "-Xcompiler", "-fPIC", *gencode, *defs, *incs])
        elif src.suffix == ".cpp":
            jobs.append(["c++", "-c", str(src), "-o", obj, std, "-O1", "-fPIC", *defs, *incs])
    if not jobs:
        raise SystemExit(f"no CUDA sources found under {ROOT / 'csrc'}")

    def run(cmd: list[str]) -> tuple[list[str], subprocess.CompletedProcess, float]:
        start = time.perf_counter()
        return cmd, subprocess.run(cmd, capture_output=True, text=True), time.perf_counter() - start

    failed = False
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for cmd, proc, secs in pool.map(run, jobs):
            name = Path(cmd[2]).relative_to(ROOT)
            print(f"{'ok ' if proc.returncode == 0 else 'FAIL'} {name} ({secs:.0f} s)")
            if proc.returncode:
                failed = True
                print(" ".join(cmd), proc.stdout, proc.stderr, sep="\n")
    print(f"CUDA {torch.version.cuda} at {home}, archs {args.arch}: {'FAILED' if failed else 'all sources compile'}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
