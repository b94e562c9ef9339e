"""`lets demo --quick` end to end (exactly as a user runs it), the report's structure, the digits
fallback, and early failure on a size the bundle cannot produce."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lets_core import DesSizeError, _extension
from lets_core.data import FASHION_MNIST_INSTALL
from lets_core.demo import DemoConfig, pick_dataset, run_demo



def test_quick_demo_end_to_end(tmp_path):
    # Run from outside the checkout, so `-m` imports the installed package (with its compiled
    # library), as a user's shell would; an in-place development build comes via PYTHONPATH.
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    out = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-m", "lets_core.cli", "demo", "--quick", "--out", str(out), "--no-progress"],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| Des-Net | params | LeTs-paper direct | LeTs-paper + 1 ep | LeTs-elastic direct |" in proc.stdout
    report = json.loads((out / "report.json").read_text())
    assert report["mode"] == "quick" and report["timings_seconds"]["total"] < 180
    assert report["bundle"]["bytes"] > 0 and report["bundle"]["params"] > 0
    assert [(r["heads"], r["depth"]) for r in report["rows"]] == [(2, 4), (4, 8)]
    assert list(report["stage1"]) == ["paper", "elastic"]
    assert report["stage1"]["elastic"]["elastic"]["num_random"] == 1 and report["stage1"]["paper"]["elastic"] is None
    assert report["stage1"]["paper"]["distills"] and report["stage1"]["elastic"]["distills"]  # alpha 1
    for row in report["rows"]:
        assert set(row["lets"]) == {"paper", "elastic"}
        assert set(row["scratch_top1_by_epoch"]) == {"1", "2"}
        values = [v for lets in row["lets"].values() for v in lets.values()] + list(row["scratch_top1_by_epoch"].values())
        assert len(values) == 6 and all(0.0 <= v <= 1.0 for v in values)
    assert report["rows"][1]["params"] > report["rows"][0]["params"]
    flops = report["costs"]["training_flops"]
    assert set(flops) == {"lets-paper", "lets-elastic", "scratch-1ep", "scratch-2ep"}
    # Elastic stage 1 also trains Des-Nets, so it costs more than the paper's; scratch scales with epochs.
    assert flops["lets-elastic"] > flops["lets-paper"] > 0
    assert flops["scratch-2ep"] == pytest.approx(2 * flops["scratch-1ep"])
    text = (out / "report.md").read_text()
    assert "## What the numbers say" in text and "## What the family costs" in text
    # Which kernels the run used is recorded and said (the subprocess inherits this run's flags).
    kernels = "compiled" if _extension.STATE.loaded else "reference"
    assert report["environment"]["lets_core_kernels"] == kernels and f", {kernels} lets_core kernels" in text
    assert (out / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "aux-paper" / "bundle" / "bundle.safetensors").is_file()
    assert (out / "aux-elastic" / "bundle" / "bundle.safetensors").is_file()


def test_demo_falls_back_to_digits_with_a_clear_message(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LETS_FASHION_MNIST_DIR", str(tmp_path / "empty"))
    assert pick_dataset(DemoConfig(dataset="auto")) == "digits"
    out = capsys.readouterr().out
    assert "Fashion-MNIST is not installed" in out and FASHION_MNIST_INSTALL in out
    assert pick_dataset(DemoConfig(dataset="fashion-mnist")) == "fashion-mnist"


def test_demo_rejects_bad_settings_before_training(tmp_path):
    with pytest.raises(DesSizeError, match="9"):
        run_demo(DemoConfig(out=str(tmp_path / "d"), sizes=[(9, 2)], dataset="digits"))
    assert not (tmp_path / "d" / "teacher").exists()
    with pytest.raises(ValueError, match="demo dataset must be one of"):
        DemoConfig(dataset="cifar10")
    with pytest.raises(ValueError, match="scratch_epochs"):
        DemoConfig(scratch_epochs=[0])
    with pytest.raises(ValueError, match=r"stage1 must be a non-empty list of \['paper', 'elastic'\], got \['fast'\]"):
        DemoConfig(stage1=["fast"])
    with pytest.raises(ValueError, match="quick and full"):
        DemoConfig.for_mode(quick=True, full=True)


def test_reading_with_a_one_epoch_scratch_budget_says_stage_1_is_never_paid_back():
    """`lets demo --scratch-epochs 1` trained everything, then crashed on math.ceil(inf) before
    writing report.md and report.png."""
    from lets_core.demo_report import reading

    row = {"heads": 2, "depth": 4, "lets": {"paper": {"ft1_top1": 0.5, "direct_top1": 0.4}},
           "scratch_top1_by_epoch": {"1": 0.3}}
    report = {"stage1": {"paper": {"test_top1": 0.6}}, "rows": [row],
              "costs": {"training_flops": {"lets-paper": 10.0, "scratch-1ep": 2.0}}}
    text = "\n".join(reading(report))
    assert "no number of sizes pays stage 1 back" in text and "5.00x" in text


def test_validation_size_follows_the_dataset_unless_given(tmp_path):
    """2,000 validation images (sized for Fashion-MNIST) left digits, the demo's own fallback, no
    training images: the default is now a fraction on other data."""
    from lets_core.demo import experiment_splits
    from lets_core.train import DistEnv

    cfg = DemoConfig(dataset="digits", out=str(tmp_path))
    splits = experiment_splits(cfg, cfg.model_config(), DistEnv())
    assert len(splits.val) == round(0.1 * (len(splits.train) + len(splits.val)))
    given = DemoConfig(dataset="digits", out=str(tmp_path), val_size=50)
    assert len(experiment_splits(given, given.model_config(), DistEnv()).val) == 50


@pytest.mark.parametrize("overrides, message", [
    (dict(sizes=[(2.9, 4)]), r"pair of integers \(heads, depth\), got \(2.9, 4\)"),  # int() made it size 2
    (dict(sizes=[(2, 4, 6)]), r"\(heads, depth\) pair, got \(2, 4, 6\)"),
    (dict(sizes=[4]), r"\(heads, depth\) pair, got 4"),
    (dict(scratch_epochs=[1.7, 2]), "scratch_epochs must be a non-empty list of positive integers"),
    (dict(aux_epochs=0), "DemoConfig.aux_epochs must be an integer >= 1, got 0"),
    (dict(batch_size=0), "DemoConfig.batch_size must be an integer >= 1, got 0"),
    (dict(elastic_random=-1), "DemoConfig.elastic_random must be an integer >= 0, got -1"),
    (dict(elastic_weight=0), "DemoConfig.elastic_weight must be a finite number > 0, got 0"),
    (dict(elastic_weight=float("nan")), "DemoConfig.elastic_weight must be a finite number > 0, got nan"),
    # Elastic settings with only the paper's stage 1 were recorded in the report and used by nothing.
    (dict(stage1=["paper"], elastic_random=2), r"elastic_random=2 sets elastic stage 1, which stage1=\['paper'\]"),
    (dict(stage1=["paper"], elastic_target="aux", elastic_weight=0.5),
     "elastic_target='aux', elastic_weight=0.5 set elastic stage 1"),
    (dict(strategy="top-L2"), "strategy must be one of"),
])
def test_demo_settings_are_checked_when_configured(overrides, message):
    with pytest.raises(ValueError, match=message):
        DemoConfig(**overrides)


def test_a_size_given_twice_is_run_once():
    assert DemoConfig(sizes=[(2, 4), (3, 6), (2, 4)]).sizes == [(2, 4), (3, 6)]


def test_the_report_says_when_a_stage_1_did_not_distill():
    from lets_core.demo_report import markdown

    report = json.loads((Path(__file__).parent.parent / "benchmarks/results/demo/report.json").read_text())
    report["stage1"]["paper"]["distills"] = False
    text = markdown(report)
    assert "paper stage 1 (" in text and "of training on labels, no distillation)" in text
    assert "elastic stage 1 (" in text and "of distillation)" in text  # an older report: every stage 1 distilled


def test_a_new_run_removes_the_earlier_runs_report(tmp_path, capsys):
    """A re-run killed before its report left the earlier run's report beside the new run's
    bundle, describing models that were no longer there."""
    from types import SimpleNamespace

    from lets_core.demo import start_experiment
    from lets_core.demo_report import REPORT_FILES

    for name in REPORT_FILES:
        (tmp_path / name).write_text("earlier run")
    (tmp_path / "notes.txt").write_text("the user's")
    start_experiment(SimpleNamespace(out=str(tmp_path)), None, REPORT_FILES)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    assert "removing the earlier run's report (report.json, report.md, report.png)" in capsys.readouterr().out
