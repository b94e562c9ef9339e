"""Building and packaging from the source tree: the sdist's contents, setup.py's flags and messages,
and the build record both builds write (probe 12)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# What a build from the sdist needs besides the package: every source and header of the extension.
EXTENSION_SUFFIXES = (".h", ".cpp", ".cu")


def _source_copy(dst: Path) -> Path:
    """The files a build reads, copied (a build writes egg-info and build/ beside setup.py)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.so", "_C.digest.json", "*.egg-info", "build", "dist")
    for name in ("lets_core", "csrc", "tests", "python"):
        shutil.copytree(ROOT / name, dst / name, ignore=ignore)
    for name in ("setup.py", "pyproject.toml", "README.md", "MANIFEST.in", "CMakeLists.txt", "requirements.txt",
                 "CONTRIBUTING.md"):
        shutil.copy2(ROOT / name, dst / name)
    (dst / ".ci").mkdir()
    shutil.copy2(ROOT / ".ci" / "run", dst / ".ci" / "run")
    return dst


def _setup_py(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "setup.py", *args], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, **env))


def test_the_sdist_holds_everything_a_build_needs(tmp_path):
    # setuptools packs only the .cpp files named as sources: the sdist lacked every header and
    # every CUDA kernel, and no build from it could succeed.
    src = _source_copy(tmp_path / "src")
    proc = _setup_py(src, "-q", "sdist", "--dist-dir", str(tmp_path / "dist"))
    assert proc.returncode == 0, proc.stderr
    (archive,) = (tmp_path / "dist").glob("lets_core-*.tar.gz")
    with tarfile.open(archive) as tar:
        packed = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    wanted = {str(p.relative_to(ROOT)) for p in (ROOT / "csrc").rglob("*") if p.suffix in EXTENSION_SUFFIXES}
    assert len(wanted) > 20 and any(w.endswith(".cu") for w in wanted) and any(w.endswith(".h") for w in wanted)
    wanted |= {"CMakeLists.txt", "requirements.txt", "setup.py", "pyproject.toml", "tests/run_ci.sh", ".ci/run",
               "lets_core/_build_record.py", "lets_core/ops/_schema_fingerprint.py"}
    assert wanted - packed == set()


@pytest.mark.parametrize("value", ["bogus", "2"])
def test_build_flags_refuse_values_they_do_not_understand(value):
    # Any value but 1/true/yes/on used to mean "off": LETS_CORE_BUILD_EXT=bogus installed the
    # package without its compiled library.
    for flag in ("LETS_CORE_BUILD_EXT", "FORCE_CUDA"):
        proc = _setup_py(ROOT, "--name", **{flag: value})
        assert proc.returncode != 0 and f"{flag}={value!r} is not understood" in proc.stderr


def test_a_missing_compiler_is_named_with_the_way_to_install_without_the_extension(tmp_path):
    # It ended in a 227-line traceback that never said LETS_CORE_BUILD_EXT=0 installs the package.
    src = _source_copy(tmp_path / "src")
    proc = _setup_py(src, "build_ext", "--inplace", CXX="/nonexistent/c++")
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert "/nonexistent/c++ not found" in last and "LETS_CORE_BUILD_EXT=0" in last, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert not list((src / "lets_core").glob("_C*.so"))


def test_a_compiler_that_fails_ends_in_one_line_with_the_way_out(tmp_path):
    src = _source_copy(tmp_path / "src")
    proc = _setup_py(src, "build_ext", "--inplace", CXX=shutil.which("false") or "/bin/false")
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("lets_core: compiling lets_core._C failed") and "LETS_CORE_BUILD_EXT=0" in last, \
        proc.stderr[-2000:]


def test_a_cuda_home_that_is_no_toolkit_is_named(tmp_path):
    # It was skipped without a word. `--name` runs the same search without compiling.
    proc = _setup_py(ROOT, "--name", CUDA_HOME=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    import torch

    if torch.version.cuda:
        assert f"CUDA_HOME={str(tmp_path)!r} holds no bin/nvcc" in proc.stderr
    else:  # a CPU-only torch never looks for a toolkit
        assert "CUDA_HOME" not in proc.stderr


def test_the_build_record_is_what_lets_core_checks(tmp_path):
    # CMake runs `python lets_core/_build_record.py LIBRARY` after linking: setup.py wrote the record
    # alone, and a CMake library beside an older setuptools record was refused as "damaged".
    library = tmp_path / "_C.fake.so"
    library.write_bytes(b"\x7fELF" + bytes(range(256)) * 4)
    script = ROOT / "lets_core" / "_build_record.py"
    proc = subprocess.run([sys.executable, str(script), str(library)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    record = json.loads((tmp_path / "_C.digest.json").read_text())
    from lets_core.ops import _registry
    from lets_core.ops._schema_fingerprint import fingerprint

    assert record["size"] == library.stat().st_size and record["file"] == library.name
    assert record["sha256"] == hashlib.sha256(library.read_bytes()).hexdigest()
    assert record["op_schemas_sha256"] == fingerprint(_registry.SCHEMAS)
    bad = subprocess.run([sys.executable, str(script), str(tmp_path / "missing.so")], capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode == 2 and "usage" in bad.stderr


def test_an_editable_install_keeps_its_objects_between_builds(tmp_path):
    """`pip install -e` compiles in a temporary folder it deletes: each reinstall recompiled every
    source (82 s on 2 cores; 7 s with the objects kept, 18 s after one source changed)."""
    src = _source_copy(tmp_path / "src")
    script = ("import sys; sys.argv = ['setup.py', '--name']; __file__ = 'setup.py'; exec(open('setup.py').read()); "
              "from setuptools.dist import Distribution; "
              "command = cmdclass['build_ext'](Distribution({'ext_modules': ext_modules})); "
              "command.editable_mode = MODE; command.ensure_finalized(); print('TEMP', command.build_temp)")
    temps = {}
    for mode in (True, False):
        proc = subprocess.run([sys.executable, "-c", script.replace("MODE", str(mode))], cwd=src, capture_output=True,
                              text=True, timeout=120, env=dict(os.environ, LETS_CORE_BUILD_EXT="1"))
        assert proc.returncode == 0, proc.stderr
        temps[mode] = proc.stdout.split("TEMP ")[-1].strip()
    assert Path(temps[True]) == src / "build" / "editable-temp"
    assert Path(temps[False]) != src / "build" / "editable-temp"  # other builds keep setuptools' own folder



@pytest.mark.parametrize("build_ext, expected", [("1", "PIN"), ("0", "Requires-Dist: torch<2.15,>=2.11")])
def test_a_build_with_the_compiled_library_requires_the_torch_minor_it_was_compiled_against(tmp_path, build_ext,
                                                                                          expected):
    # The wheel allowed any torch 2.11-2.14 while its library loads only under the one it was
    # compiled against (elsewhere: undefined symbols, and the fallback with a warning).
    import torch

    major, minor = torch.__version__.split("+")[0].split(".")[:2]
    expected = expected.replace("PIN", f"Requires-Dist: torch=={major}.{minor}.*")
    src = _source_copy(tmp_path / "src")
    (tmp_path / "meta").mkdir()
    proc = _setup_py(src, "-q", "dist_info", "--output-dir", str(tmp_path / "meta"), LETS_CORE_BUILD_EXT=build_ext)
    assert proc.returncode == 0, proc.stderr
    (metadata,) = (tmp_path / "meta").glob("*/METADATA")
    lines = metadata.read_text().splitlines()
    assert [line for line in lines if line.startswith("Requires-Dist: torch")] == [expected]
    assert "License-Expression: MIT" in lines and "Requires-Dist: timm>=1.0" in lines
    assert "SetuptoolsDeprecationWarning" not in proc.stderr  # the license table's banner
