"""Loading the compiled library: fallback, forced fallback, required extension, diagnostics."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch

import lets_core
from lets_core import _extension

# Subprocesses start in a scratch directory: started in the checkout, `python -c` would import the
# source tree (without the compiled library) instead of the installed package.
SCRATCH = tempfile.gettempdir()

# A compiled library for another torch fails at import in the same way as a missing file: both
# raise ImportError from `from . import _C`, which this simulates by blocking the module.
BLOCK_C = "import sys; sys.modules['lets_core._C'] = None; "


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("LETS_CORE_")}
    full_env.update(env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full_env, timeout=120, cwd=SCRATCH)


def info_in_subprocess(prefix: str = "", **env: str) -> dict:
    proc = run_python(prefix + "import json, lets_core; print(json.dumps(lets_core.extension_info()))", **env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_state_matches_the_dispatcher():
    info = lets_core.extension_info()
    expected = "compiled" if _extension.STATE.loaded else "reference"
    assert all(kernels["CPU"] == expected for kernels in info["ops"].values()), info
    if _extension.STATE.loaded:
        assert set(info["build"]["kernels"]["CPU"]) == set(info["ops"])
        assert info["build"]["torch_version"].split("+")[0] == torch.__version__.split("+")[0]
    else:
        assert info["extension_status"] != "loaded"


def test_disable_forces_the_fallback():
    info = info_in_subprocess(LETS_CORE_DISABLE_EXTENSION="1")
    assert not info["extension_loaded"]
    assert "LETS_CORE_DISABLE_EXTENSION" in info["extension_status"]
    assert {k["CPU"] for k in info["ops"].values()} == {"reference"}


def test_missing_library_is_recorded_and_import_still_works():
    code = BLOCK_C + "import torch, lets_core; a = lets_core.AuxNet(lets_core.presets.tiny()); " \
                     "print(a(torch.randn(1, 1, 28, 28)).shape); print(lets_core.extension_info()['extension_status'])"
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    assert "torch.Size([1, 10])" in proc.stdout
    # Said as what it is: Python's own message blamed a circular import.
    assert "could not be imported: it is not built" in proc.stdout and "circular" not in proc.stdout


def test_require_makes_a_missing_library_an_error():
    proc = run_python(BLOCK_C + "import lets_core", LETS_CORE_REQUIRE_EXTENSION="1")
    assert proc.returncode != 0
    assert "LETS_CORE_REQUIRE_EXTENSION=1 but the compiled extension is not in use" in proc.stderr


def test_require_and_disable_contradict():
    proc = run_python("import lets_core", LETS_CORE_REQUIRE_EXTENSION="1", LETS_CORE_DISABLE_EXTENSION="1")
    assert proc.returncode != 0 and "contradict" in proc.stderr


def test_unknown_flag_value_is_an_error():
    proc = run_python("import lets_core", LETS_CORE_DISABLE_EXTENSION="maybe")
    assert proc.returncode != 0 and "'maybe' is not understood" in proc.stderr


@pytest.mark.skipif(not _extension.STATE.loaded, reason="needs the compiled library (this run uses the fallback)")
def test_require_passes_when_the_library_is_built():
    proc = run_python("import lets_core", LETS_CORE_REQUIRE_EXTENSION="1")
    assert proc.returncode == 0, proc.stderr


# The subprocess is told CUDA is available, as on a GPU machine: a build without CUDA kernels must
# then fail the import under REQUIRE instead of letting every CUDA test pass on the reference.
FAKE_GPU = "import torch; torch.cuda.is_available = lambda: True; "


@pytest.mark.skipif(torch.cuda.is_available(), reason="simulates a GPU machine; a real one runs the next test")
def test_require_on_a_gpu_machine_needs_every_compiled_cuda_kernel():
    info = info_in_subprocess()
    if not info["extension_loaded"]:
        pytest.skip("needs the compiled library")
    proc = run_python(FAKE_GPU + "import lets_core", LETS_CORE_REQUIRE_EXTENSION="1")
    if info["build"].get("with_cuda"):
        assert proc.returncode == 0, proc.stderr
    else:
        assert proc.returncode != 0
        assert "has no compiled CUDA kernel for" in proc.stderr
        for op in info["ops"]:
            assert op in proc.stderr.splitlines()[-1]
    # Without REQUIRE the same build imports and the reference serves CUDA tensors; info says so.
    on_gpu = info_in_subprocess(FAKE_GPU)
    says = [w for w in on_gpu["extension_warnings"] if "built without CUDA kernels" in w]
    assert len(says) == (0 if info["build"].get("with_cuda") else 1), on_gpu["extension_warnings"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_every_op_runs_its_compiled_cuda_kernel():
    info = info_in_subprocess(LETS_CORE_REQUIRE_EXTENSION="1")
    assert info["build"]["with_cuda"], info["build"]
    assert {op: keys["CUDA"] for op, keys in info["ops"].items()} == {op: "compiled" for op in info["ops"]}


def test_info_command_prints_every_op():
    proc = subprocess.run([sys.executable, "-m", "lets_core.info"], capture_output=True, text=True, timeout=120, cwd=SCRATCH)
    assert proc.returncode == 0, proc.stderr
    assert "RuntimeWarning" not in proc.stderr
    for op in lets_core.extension_info()["ops"]:
        assert op in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "lets_core.info", "--json"], capture_output=True, text=True, timeout=120, cwd=SCRATCH)
    printed = json.loads(proc.stdout)
    assert printed["ops"].keys() == lets_core.extension_info()["ops"].keys()
    # It says which copy of the package, and which library file, answered.
    assert printed["package"] == str(Path(lets_core.__file__).resolve().parent)
    if _extension.STATE.loaded:
        assert printed["library"] == str(Path(lets_core._C.__file__).resolve())


# (device, autocast dtype or None, rtol, atol): bf16 results of two kernels that sum in different
# orders differ by a few bf16 ulps.
GENERATION_CASES = [("cpu", None, 1e-4, 1e-6), ("cpu", "bfloat16", 3e-2, 3e-3), ("cuda", None, 1e-4, 1e-6),
                    ("cuda", "bfloat16", 3e-2, 3e-3)]


@pytest.mark.parametrize("device,autocast,rtol,atol", GENERATION_CASES,
                         ids=["cpu", "cpu-bf16-autocast", "cuda", "cuda-bf16-autocast"])
def test_compiled_and_fallback_generate_the_same_auxnet(device, autocast, rtol, atol):
    """The tiny Aux-Net end to end (generation, forward, backward into every parameter) with the
    compiled kernels and with the reference, in separate processes so each loads its own path."""
    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("needs a GPU")
    amp = f"torch.autocast('{device}', dtype=torch.{autocast})" if autocast else "contextlib.nullcontext()"
    code = ("import contextlib, torch, lets_core; torch.manual_seed(0); "
            f"a = lets_core.AuxNet(lets_core.presets.tiny()).to('{device}'); "
            f"x = torch.randn(2, 1, 28, 28).to('{device}'); "
            f"ctx = {amp}\n"
            "with ctx: out = a(x)\n"
            "out.float().square().sum().backward(); "
            "torch.save([out.detach().cpu()] + [p.grad.cpu() for p in a.parameters() if p.requires_grad], '{}')")
    results = []
    for flag in ("0", "1"):
        path = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"lets_core_ext_{os.getpid()}_{flag}.pt")
        proc = run_python(code.replace("'{}'", repr(path)), LETS_CORE_DISABLE_EXTENSION=flag)
        assert proc.returncode == 0, proc.stderr
        results.append(torch.load(path))
        os.remove(path)
    assert len(results[0]) == len(results[1]) > 1
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=rtol, atol=atol)


def test_the_build_reads_the_schemas_the_package_defines():
    # setup.py records the fingerprint of the schemas it reads from the op files' source text;
    # lets_core compares it with the schemas it defined. Both readings must agree.
    from lets_core.ops import _registry
    from lets_core.ops._schema_fingerprint import fingerprint, schemas_in_sources

    assert sorted(schemas_in_sources(Path(_registry.__file__).parent)) == sorted(_registry.SCHEMAS)
    assert len(_registry.SCHEMAS) == len(_registry.OPS)
    assert fingerprint(list(reversed(_registry.SCHEMAS))) == fingerprint(_registry.SCHEMAS)


@pytest.mark.skipif(not _extension.STATE.loaded, reason="needs the compiled library (this run uses the fallback)")
def test_a_library_built_for_other_op_schemas_is_not_loaded(tmp_path):
    """An op's schema changed and the library not rebuilt: loading it aborted the interpreter inside
    `import lets_core` (torch refuses the kernel while the library loads). It now falls back."""
    import shutil
    package = tmp_path / "lets_core"
    shutil.copytree(Path(lets_core.__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__"))
    op_file = package / "ops" / "group_mix.py"
    source = op_file.read_text()
    changed = source.replace('"group_mix(Tensor stack, Tensor coeff) -> Tensor"',
                             '"group_mix(Tensor stack, Tensor coeff, float scale=1.0) -> Tensor"')
    for name in ("group_mix_reference", "check_group_mix", "_group_mix_fake"):
        changed = changed.replace(f"def {name}(stack: Tensor, coeff: Tensor)",
                                  f"def {name}(stack: Tensor, coeff: Tensor, scale: float = 1.0)")
    assert changed.count("scale") == 4  # the schema and the three functions
    op_file.write_text(changed)
    code = ("import torch, lets_core; a = lets_core.AuxNet(lets_core.presets.tiny()); "
            "print(a(torch.randn(1, 1, 28, 28)).shape); print(lets_core.extension_info()['extension_status'])")
    proc = run_python(code, PYTHONPATH=str(tmp_path))
    assert proc.returncode == 0, proc.stderr  # was -6 (SIGABRT)
    assert "torch.Size([1, 10])" in proc.stdout and "built for other op schemas" in proc.stdout
    required = run_python("import lets_core", PYTHONPATH=str(tmp_path), LETS_CORE_REQUIRE_EXTENSION="1")
    assert required.returncode == 1 and "built for other op schemas" in required.stderr

