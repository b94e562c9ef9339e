"""lets_core.cpu_memory: glibc keeps large freed blocks for reuse once asked, and the ``lets``
training commands ask unless told not to."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from lets_core import cpu_memory
from lets_core.cli import program as cli

needs_glibc = pytest.mark.skipif(cpu_memory._glibc() is None, reason="needs glibc (Linux)")

# Page faults of allocating, writing and freeing a 256 MiB tensor three times, after three rounds
# of the same (the first rounds may still grow the heap around Python's own small blocks; faults
# are counted by the kernel: ru_minflt).
_FAULTS = textwrap.dedent("""
    import resource, sys, torch
    from lets_core import cpu_memory
    if sys.argv[1] == "reuse":
        assert cpu_memory.reuse_freed_memory()
    def touch():
        t = torch.ones(64 * 2**20)
        del t
    touch(); touch(); touch()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    touch(); touch(); touch()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
""")


def _faults(mode: str, cwd) -> int:
    # From outside the checkout, so that `python -c` imports the installed lets_core (with its
    # compiled library, which LETS_CORE_REQUIRE_EXTENSION may demand), not the source tree.
    done = subprocess.run([sys.executable, "-c", _FAULTS, mode], capture_output=True, text=True, cwd=cwd)
    assert done.returncode == 0, done.stderr[-3000:]
    return int(done.stdout.split()[-1])


@needs_glibc
def test_reuse_freed_memory_stops_page_faults_on_reallocation(tmp_path):
    default, reuse = _faults("release", tmp_path), _faults("reuse", tmp_path)
    # 3 x 256 MiB of fresh 4 KiB pages is ~196,000 faults with glibc's defaults (fewer if the
    # kernel backs them with huge pages); reused memory faults on no page at all.
    assert default > 1000, default
    assert reuse < default / 20, (reuse, default)


def test_reuse_freed_memory_warns_and_changes_nothing_without_glibc(monkeypatch):
    monkeypatch.setattr(cpu_memory, "_glibc", lambda: None)
    with pytest.warns(RuntimeWarning, match="not glibc"):
        assert cpu_memory.reuse_freed_memory() is False


@pytest.mark.parametrize("value, calls", [(None, 1), ("reuse", 1), ("release", 0)])
def test_reuse_unless_disabled_follows_the_environment(monkeypatch, value, calls):
    done = []
    monkeypatch.setattr(cpu_memory, "reuse_freed_memory", lambda: done.append(1) or True)
    if value is None:
        monkeypatch.delenv(cpu_memory.ENV, raising=False)
    else:
        monkeypatch.setenv(cpu_memory.ENV, value)
    assert cpu_memory.reuse_unless_disabled() is bool(calls)
    assert len(done) == calls


def test_reuse_unless_disabled_names_a_bad_value(monkeypatch):
    monkeypatch.setenv(cpu_memory.ENV, "keep")
    with pytest.raises(ValueError, match=r"LETS_CORE_CPU_MEMORY='keep' is not valid; allowed: 'reuse'.*'release'"):
        cpu_memory.reuse_unless_disabled()


def test_training_commands_reuse_memory_and_others_do_not(monkeypatch, capsys):
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")  # no re-execution of the test process
    monkeypatch.setenv(cpu_memory.ENV, "keep")  # refused: proves the command asked
    assert cli.main(["train-aux", "--out", "unused", "--epochs", "1"]) == 2
    assert "LETS_CORE_CPU_MEMORY='keep' is not valid" in capsys.readouterr().err
    assert cli.main(["info"]) == 0  # does not train: never reads the variable
