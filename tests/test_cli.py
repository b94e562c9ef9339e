"""The `lets` command line: every subcommand's --help, config files, a full run on a small
dataset, and clear errors for bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from train_helpers import fake_fashion_mnist

import lets_core
from lets_core import cli
from lets_core.cli.commands import COMMANDS


@pytest.fixture(autouse=True)
def _no_reexec(monkeypatch):
    # Training commands re-execute themselves unless an OpenMP wait policy is already set.
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert f"usage: lets {command}" in out and "--config FILE" in out


def test_config_file_sets_defaults_and_flags_win(tmp_path, capsys):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"epochs": 7, "batch_size": 32}))
    args = cli.parse(["train-teacher", "--config", str(path), "--epochs", "2"])
    assert (args.epochs, args.batch_size) == (2, 32)
    path.write_text(json.dumps({"epochz": 7}))
    # a bad config file is a usage error like a bad flag: exit 2, "lets CMD: error: ..."
    with pytest.raises(SystemExit) as exit_info:
        cli.parse(["train-teacher", "--config", str(path)])
    assert exit_info.value.code == 2 and "unknown keys ['epochz']" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        cli.parse(["demo", "--config", str(tmp_path / "none.json")])
    assert exit_info.value.code == 2 and "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("command, sources", [("finetune", ("des", "bundle", "scratch")),
                                              ("evaluate", ("des", "bundle", "teacher"))])
def test_exactly_one_model_source(command, sources, tmp_path, capsys):
    # argparse's required mutually exclusive group: none or two is a usage error (exit 2) ...
    flags = [f"--{name}" if name == "scratch" else f"--{name}=x" for name in sources]
    for argv in ([command], [command, flags[2], flags[0]]):
        with pytest.raises(SystemExit) as exit_info:
            cli.parse(argv)
        assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"one of the arguments {' '.join('--' + name for name in sources)} is required" in err
    assert f"argument --{sources[0]}: not allowed with argument --{sources[2]}" in err
    # ... the one may come from a --config file, and a file's gives way to the command line's.
    path = tmp_path / "c.json"
    path.write_text(json.dumps({sources[1]: "from-file"}))
    assert getattr(cli.parse([command, "--config", str(path)]), sources[1]) == "from-file"
    args = cli.parse([command, "--config", str(path), "--des", "d"])
    assert (args.des, getattr(args, sources[1])) == ("d", None)


def test_full_pipeline_through_the_cli(tmp_path, capsys):
    data = str(fake_fashion_mnist(tmp_path / "fm"))
    common = ["--data-dir", data, "--val-size", "16", "--batch-size", "16", "--no-progress", "--num-workers", "0"]
    teacher, aux = str(tmp_path / "teacher"), str(tmp_path / "aux")
    assert cli.main(["train-teacher", "--out", teacher, "--epochs", "1", *common]) == 0
    assert cli.main(["train-aux", "--out", aux, "--teacher", teacher, "--epochs", "2", *common]) == 0
    assert "bundle saved" in capsys.readouterr().out
    # resuming a finished run is a no-op that still succeeds
    assert cli.main(["train-aux", "--out", aux, "--teacher", teacher, "--epochs", "2", "--resume", *common]) == 0
    des = str(tmp_path / "des")
    assert cli.main(["emit", "--bundle", f"{aux}/bundle", "--heads", "3", "--depth", "6", "--strategy", "top-l2",
                     "--out", des]) == 0
    assert cli.main(["finetune", "--des", des, "--drop-path", "0.2", "--out", str(tmp_path / "ft"), "--epochs", "1",
                     *common]) == 0
    assert json.loads((tmp_path / "ft" / "model" / "config.json").read_text())["model_args"]["drop_path_rate"] == 0.2
    result = json.loads((tmp_path / "ft" / "result.json").read_text())
    assert 0 <= result["test_top1"] <= 1 and len(result["history"]) == 1
    assert cli.main(["finetune", "--scratch", "--heads", "2", "--depth", "2", "--out", str(tmp_path / "scratch"),
                     "--epochs", "1", *common]) == 0
    assert cli.main(["finetune", "--bundle", f"{aux}/bundle", "--heads", "2", "--plan", "0,7",
                     "--out", str(tmp_path / "ft2"), "--epochs", "1", *common]) == 0
    capsys.readouterr()
    # The scratch run has the emitted Des-Net's shapes; resuming it as the emitted one is refused.
    err = _error(["finetune", "--bundle", f"{aux}/bundle", "--heads", "2", "--depth", "2", "--resume",
                  "--out", str(tmp_path / "scratch"), "--epochs", "1", *common], capsys)
    assert "starts from another model or teacher" in err and "source: checkpoint 'scratch' vs now 'bundle'" in err
    for source in (["--des", str(tmp_path / "ft" / "model")], ["--bundle", f"{aux}/bundle"], ["--teacher", teacher]):
        assert cli.main(["evaluate", *source, "--data-dir", data, "--val-size", "16", "--json"]) == 0
        metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert metrics["count"] == 32 and 0 <= metrics["top1"] <= 1


def _error(argv, capsys) -> str:
    assert cli.main(argv) == 2
    return capsys.readouterr().err


def test_bad_inputs_give_clear_errors(tmp_path, capsys):
    err = _error(["train-teacher", "--data-dir", str(tmp_path / "nowhere"), "--out", str(tmp_path / "t")], capsys)
    assert "apt-get update && apt-get install -y dataset-fashion-mnist" in err
    err = _error(["emit", "--bundle", str(tmp_path / "nobundle"), "--heads", "3", "--depth", "2",
                  "--out", str(tmp_path / "d")], capsys)
    assert "bundle file" in err and "missing" in err
    data = str(fake_fashion_mnist(tmp_path / "fm"))
    common = ["--data-dir", data, "--val-size", "16", "--batch-size", "16", "--no-progress", "--num-workers", "0"]
    err = _error(["train-aux", "--out", str(tmp_path / "aux"), "--epochs", "1", *common], capsys)
    assert "--alpha 1.0 distills from a teacher" in err
    assert cli.main(["train-aux", "--out", str(tmp_path / "aux"), "--epochs", "1", "--alpha", "0", *common]) == 0
    err = _error(["emit", "--bundle", str(tmp_path / "aux" / "bundle"), "--heads", "9", "--depth", "2",
                  "--out", str(tmp_path / "d")], capsys)
    assert "9" in err and "heads" in err
    err = _error(["evaluate", "--teacher", str(tmp_path / "aux"), "--data-dir", data], capsys)
    assert "teacher.json" in err
    err = _error(["finetune", "--des", str(tmp_path / "aux"), "--out", str(tmp_path / "x"), *common], capsys)
    assert "config.json" in err and "missing" in err
    err = _error(["train-aux", "--out", str(tmp_path / "aux"), "--epochs", "1", "--alpha", "0", "--lr", "1e-3",
                  "--resume", *common], capsys)
    assert "configuration changed (lr: checkpoint 0.024 vs now 0.001)" in err  # 0.024: the small-data recipe


def test_only_the_entry_point_reexecutes_for_passive_openmp(monkeypatch):
    """`lets` re-runs itself with OMP_WAIT_POLICY=PASSIVE; main([...]) called from Python must not,
    since that replaced the caller's whole process (a test run ended silently that way)."""
    from lets_core import cli
    from lets_core.cli import program
    from lets_core.cli.commands import compare as command

    class Reexecuted(Exception):
        pass

    def execve(*args):
        raise Reexecuted(args[1])

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.setattr(program.os, "execve", execve)
    monkeypatch.setattr(command, "run_compare", lambda cfg, env: None)
    assert cli.main(["compare", "--no-progress"]) == 0  # from Python: runs here
    monkeypatch.setattr(program.sys, "argv", ["lets", "compare", "--no-progress"])
    with pytest.raises(Reexecuted, match="lets_core.cli") as reexecuted:
        cli.main()  # the entry point: re-executes once with the policy set
    # ... running this very package first on the path, not whatever the current folder holds.
    argv = reexecuted.value.args[0]
    home = str(Path(lets_core.__file__).resolve().parent.parent)
    assert argv[1] == "-c" and f"sys.path.insert(0, {home!r})" in argv[2] and argv[3:] == ["compare", "--no-progress"]
