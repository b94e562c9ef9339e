"""The example scripts under python/ (their training is run by hand, see their docstrings; here
only what they print about it, with lets_core's training functions stubbed)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import SimpleNamespace

import lets_core

SCRIPTS = Path(__file__).resolve().parents[1] / "python"


def test_train_pipeline_labels_the_scratch_baseline_scratch(monkeypatch, tmp_path):
    """Both fine-tuning runs printed "des epoch 1/1: ..." though the second is the scratch baseline."""
    spec = importlib.util.spec_from_file_location("train_pipeline_example", SCRIPTS / "train_pipeline.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    model = SimpleNamespace(eval=lambda: model)
    splits = SimpleNamespace(describe=lambda: "splits", train=[0] * 10_000)
    runs = []

    def finetune(des, splits, recipe, out_dir, desc="des"):
        runs.append((des, Path(out_dir).name, desc))  # desc: what fit prints before each epoch
        return SimpleNamespace(model=des)

    monkeypatch.setattr(script, "load_splits", lambda *args, **kwargs: splits)
    monkeypatch.setattr(script, "train_teacher", lambda *args, **kwargs: (None, {"test_top1": 0.0}))
    monkeypatch.setattr(script, "train_aux", lambda *args, **kwargs: SimpleNamespace(model=model))
    monkeypatch.setattr(script, "evaluate_split", lambda *args, **kwargs: {"top1": 0.0})
    monkeypatch.setattr(script, "finetune", finetune)
    monkeypatch.setattr(script, "scratch_des", lambda *args, **kwargs: "scratch model")
    monkeypatch.setattr(lets_core, "emit_des", lambda *args, **kwargs: "emitted model")
    monkeypatch.setattr(sys, "argv", ["train_pipeline.py", "--out", str(tmp_path)])
    script.main()
    assert runs == [("emitted model", "des", "des"), ("scratch model", "scratch", "scratch")]
