"""Build script. Metadata lives in pyproject.toml; this file builds the compiled extension.

Install against the torch you already have: ``pip install --no-build-isolation .``

Environment variables:
- ``LETS_CORE_BUILD_EXT=0``: build no extension (the pure-PyTorch fallback runs).
- ``FORCE_CUDA=1``: compile the CUDA kernels even without a visible GPU (then set
  ``TORCH_CUDA_ARCH_LIST``; it defaults to ``9.0``, H100/H200). Without it, CUDA kernels are built
  when torch has CUDA, a toolkit is found and a GPU is visible.
- ``TORCH_CUDA_ARCH_LIST``, ``MAX_JOBS``, ``CUDA_HOME``: as for any torch extension.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import setup

ROOT = Path(__file__).resolve().parent
REBUILD = "pip install --no-build-isolation ."
SKIP_HINT = "or set LETS_CORE_BUILD_EXT=0 to install without it (the pure-PyTorch fallback runs, slower)"
METADATA_ONLY = {"egg_info", "dist_info", "sdist", "--name", "--version", "check"}


# The package's requirements (pyproject.toml declares them dynamic). TORCH is the range the code
# supports; a build with the compiled library narrows it to the minor version it was compiled
# against (_torch_pin), since the library's C++ ABI is that version's.
TORCH = "torch>=2.11,<2.15"
DEPENDENCIES = [
    "timm>=1.0",
    "numpy",
    "safetensors",
    "tqdm",
    # lets_core.data: scikit-learn ships the digits dataset, Pillow decodes image folders;
    # lets_core.demo: matplotlib draws report.png.
    "scikit-learn",
    "pillow",
    "matplotlib",
]


def _torch_pin(version: str) -> str:
    """``torch==2.14.*`` for a library compiled against torch 2.14.x: a wheel with the library
    installed beside another torch minor could not load it (undefined symbols), and ran on the
    fallback with only a warning."""
    major, minor = version.split("+")[0].split(".")[:2]
    return f"torch=={major}.{minor}.*"


def _flag(name: str, default: bool = False) -> bool:
    # Strict, as lets_core's run-time flags are: any value but these (a typo, "2") used to mean
    # "off", and LETS_CORE_BUILD_EXT=bogus installed the package without its compiled library.
    value = os.environ.get(name, "").strip().lower()
    if value == "":
        return default
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise SystemExit(f"lets_core: {name}={os.environ[name]!r} is not understood; allowed: 1/true/yes/on or "
                     f"0/false/no/off (empty: the default, {'on' if default else 'off'})")


def _is_real_toolkit(home: Path) -> bool:
    return (home / "bin" / "nvcc").is_file() and (home / "include" / "cuda_runtime.h").is_file()


def _find_cuda_home(torch_cuda: str | None) -> str | None:
    """A CUDA toolkit root. A bare ``nvcc`` wrapper script on PATH makes torch guess /usr/local,
    so look for a directory that really holds bin/nvcc and the runtime headers, preferring the
    toolkit version torch was built with."""
    candidates = []
    for name in ("CUDA_HOME", "CUDA_PATH"):
        given = os.environ.get(name)
        if given and not _is_real_toolkit(Path(given)):
            # It was skipped without a word, and the build took another toolkit or none.
            print(f"lets_core: {name}={given!r} holds no bin/nvcc and include/cuda_runtime.h, so it is not a "
                  f"CUDA toolkit; ignored, looking in the usual places", file=sys.stderr)
        candidates.append(given)
    if torch_cuda:
        candidates.append(f"/usr/local/cuda-{torch_cuda}")
    candidates.append("/usr/local/cuda")
    candidates += sorted(glob.glob("/usr/local/cuda-*"), reverse=True)
    nvcc = shutil.which("nvcc")
    if nvcc:
        candidates.append(str(Path(nvcc).resolve().parent.parent))
    for c in candidates:
        if c and _is_real_toolkit(Path(c)):
            return str(Path(c))
    return None


def _toolkit_version(cuda_home: str) -> str:
    """The version of the nvcc that compiles the kernels ("13.0"), which build_info reports; torch's
    own CUDA version (torch.version.cuda) can differ from it."""
    try:
        out = subprocess.run([str(Path(cuda_home) / "bin" / "nvcc"), "--version"], capture_output=True, text=True,
                             timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        out = ""
    found = re.search(r"release (\d+\.\d+)", out)
    return found.group(1) if found else "unknown"


def _wheel_cuda_includes() -> list[str]:
    """Headers of torch's own nvidia wheels (cuBLAS, cuSPARSE, ...), which torch's CUDA headers
    include but a bare toolkit may lack."""
    found = []
    for entry in sys.path:
        for inc in sorted(glob.glob(os.path.join(entry, "nvidia", "*", "include"))):
            if os.path.isfile(os.path.join(inc, "cublas_v2.h")) and inc not in found:
                found.append(inc)
    return found


def _headers() -> list[str]:
    """Every header under csrc/: without ninja, setuptools rebuilds only when a source or one of
    these ``depends`` is newer than the library, so a change to a header alone (widen_mix_order.h,
    the meaning of widen_mix's order) kept the old kernels and recorded a fresh digest for them."""
    return sorted(str(p.relative_to(ROOT)) for p in (ROOT / "csrc").rglob("*.h"))


def _sources(with_cuda: bool) -> list[str]:
    """The C++/CUDA sources under csrc/, by folder: every .cpp outside a ``cuda/`` folder (the module,
    csrc/common/, each op's csrc/ops/<op>.cpp and csrc/ops/cpu/<op>_kernel.cpp), and with CUDA every
    .cu and .cpp inside one (csrc/ops/cuda/<op>_kernel.cu)."""
    sources = []
    for path in sorted((ROOT / "csrc").rglob("*")):
        rel = path.relative_to(ROOT)
        in_cuda = "cuda" in rel.parts[:-1]
        if (path.suffix == ".cpp" and not in_cuda) or (with_cuda and in_cuda and path.suffix in (".cu", ".cpp")):
            sources.append(str(rel))
    return sources


def _extensions():
    if not _flag("LETS_CORE_BUILD_EXT", default=True):
        print(f"lets_core: LETS_CORE_BUILD_EXT={os.environ['LETS_CORE_BUILD_EXT']!r}, building no compiled extension")
        return [], {}
    try:
        import torch
    except ImportError:
        if METADATA_ONLY.intersection(sys.argv[1:]):
            return [], {}
        raise SystemExit(
            "lets_core: torch must be installed before building the extension; install it and run "
            "`pip install --no-build-isolation .`, or set LETS_CORE_BUILD_EXT=0 to skip the extension"
        )

    cuda_home = _find_cuda_home(torch.version.cuda) if torch.version.cuda else None
    if cuda_home:
        os.environ["CUDA_HOME"] = cuda_home  # read by torch.utils.cpp_extension at import
    force_cuda = _flag("FORCE_CUDA")
    gpu_visible = torch.version.cuda is not None and torch.cuda.is_available()
    with_cuda = force_cuda or (cuda_home is not None and gpu_visible)
    if with_cuda and torch.version.cuda is None:
        raise SystemExit(f"lets_core: FORCE_CUDA=1 but torch {torch.__version__} is a CPU-only build")
    if with_cuda and cuda_home is None:
        raise SystemExit("lets_core: CUDA kernels requested but no CUDA toolkit found; set CUDA_HOME "
                         "to a directory holding bin/nvcc and include/cuda_runtime.h")
    if torch.version.cuda and not with_cuda and not METADATA_ONLY.intersection(sys.argv[1:]):
        why = "no GPU is visible" if cuda_home else "no CUDA toolkit was found (set CUDA_HOME)"
        print(f"lets_core: torch has CUDA {torch.version.cuda}, but {why}: building the CPU kernels only, and "
              f"lets_core ops on CUDA tensors will run the pure-PyTorch reference. For the CUDA kernels: "
              f"FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST=<arch, e.g. 9.0> {REBUILD}", file=sys.stderr)
    if with_cuda and not gpu_visible and not os.environ.get("TORCH_CUDA_ARCH_LIST"):
        # torch derives the arch list from visible GPUs and fails with none; H100/H200 are sm_90.
        os.environ["TORCH_CUDA_ARCH_LIST"] = "9.0"

    from torch.utils.cpp_extension import BuildExtension, CppExtension, CUDAExtension

    sources = _sources(with_cuda)
    macros = [
        ("LETS_CORE_TORCH_VERSION", f'"{torch.__version__}"'),
        ("LETS_CORE_BUILD_TOOL", '"setuptools"'),
    ]
    cxx = ["-O3"]
    kwargs = {}
    if with_cuda:
        macros += [
            ("LETS_CORE_WITH_CUDA", None),
            ("LETS_CORE_CUDA_VERSION", f'"{_toolkit_version(cuda_home)}"'),
            ("LETS_CORE_CUDA_ARCHS", f'"{os.environ.get("TORCH_CUDA_ARCH_LIST", "visible GPUs")}"'),
        ]
        kwargs["include_dirs"] = _wheel_cuda_includes()
        kwargs["extra_compile_args"] = {"cxx": cxx, "nvcc": ["-O3", "-lineinfo"]}
        ext = CUDAExtension("lets_core._C", sources, define_macros=macros, depends=_headers(), **kwargs)
    else:
        ext = CppExtension("lets_core._C", sources, define_macros=macros, extra_compile_args=cxx, depends=_headers())
    print(f"lets_core: building lets_core._C with {'CPU+CUDA' if with_cuda else 'CPU'} kernels "
          f"against torch {torch.__version__}"
          + (f", CUDA {torch.version.cuda} at {cuda_home}, archs {os.environ.get('TORCH_CUDA_ARCH_LIST', 'of the visible GPUs')}"
             if with_cuda else ""))
    return [ext], {"build_ext": _with_digest(BuildExtension.with_options(use_ninja=shutil.which("ninja") is not None))}


def _check_compilers(compiler) -> None:
    """Every program the build will run must exist: the C++ compiler torch compiles with (``CXX``,
    default ``c++``), and the C compiler and linker Python was built with (or ``CC``/``LDSHARED``)."""
    programs = {os.environ.get("CXX", "c++")}
    for attr in ("compiler_so", "linker_so"):
        command = getattr(compiler, attr, None)
        if command:
            programs.add(command[0])
    missing = sorted(p for p in programs if shutil.which(p) is None)
    if missing:
        raise SystemExit(f"lets_core: cannot compile lets_core._C: {', '.join(missing)} not found. Install a C++ "
                         f"compiler (e.g. g++) or point CXX/CC at one, {SKIP_HINT}")


def _with_digest(build_ext):
    """``build_ext`` that also writes the built library's record beside it (``_C.digest.json``: size,
    SHA-256, the op schemas it was built for), which lets_core checks before loading ``_C``; see
    lets_core/_build_record.py, which the CMake build runs too."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("lets_core_build_record", ROOT / "lets_core" / "_build_record.py")
    record = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(record)
    write_digest = record.write

    class BuildExtWithDigest(build_ext):
        def finalize_options(self):
            super().finalize_options()
            if getattr(self, "editable_mode", False):
                # `pip install -e` compiles in a temporary folder that it deletes, so every
                # reinstall recompiled all sources (85 s on 2 cores). Objects kept here let ninja
                # rebuild only what changed.
                self.build_temp = str(ROOT / "build" / "editable-temp")

        def build_extensions(self):
            _check_compilers(self.compiler)
            try:
                super().build_extensions()
            except Exception as exc:  # noqa: BLE001 - the compiler's own messages are printed above
                # A failed compile ended in a 200-line traceback that never said the package works
                # without the extension.
                raise SystemExit(f"lets_core: compiling lets_core._C failed ({type(exc).__name__}: {exc}); see the "
                                 f"compiler's messages above. Fix the toolchain, {SKIP_HINT}") from exc
            for ext in self.extensions:
                write_digest(Path(self.get_ext_fullpath(ext.name)))

        def copy_extensions_to_source(self):
            # An in-place or editable build (`pip install -e`) builds in a build directory and copies
            # only the library into the package; its record must be written beside that copy too.
            super().copy_extensions_to_source()
            for ext in self.extensions:
                write_digest(Path(self.get_ext_fullpath(ext.name)))

    return BuildExtWithDigest


ext_modules, cmdclass = _extensions()
torch_requirement = _torch_pin(sys.modules["torch"].__version__) if ext_modules else TORCH
setup(ext_modules=ext_modules, cmdclass=cmdclass, install_requires=[torch_requirement, *DEPENDENCIES])
