"""Checkpoints: an interrupted run resumed from its last checkpoint ends bitwise equal to an
uninterrupted one; damaged or mismatched checkpoints fail clearly; writes are atomic."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from train_helpers import quick_recipe, small_splits

import lets_core
from lets_core.train import CHECKPOINT_FILE, LOG_FILE, CheckpointError, fit, load_checkpoint, save_checkpoint


class Killed(Exception):
    """Stands for the process dying mid-epoch."""


def _aux():
    # drop-path consumes the global RNG every step, so RNG restoration is part of what is checked
    cfg = dataclasses.replace(lets_core.presets.tiny(), drop_path_rate=0.1)
    return lets_core.AuxNet(cfg)


def _teacher(splits):
    torch.manual_seed(123)
    return lets_core.train.build_teacher(num_classes=splits.num_classes, in_chans=1, img_size=28).eval()


def test_resume_after_kill_mid_epoch_is_bitwise_identical(tmp_path):
    splits = small_splits(tmp_path)
    recipe = quick_recipe(alpha=0.5, tau=2.0, clip_grad=1.0)
    teacher = _teacher(splits)

    torch.manual_seed(0)
    full = fit(_aux(), splits, recipe, kind="aux", teacher=teacher, out_dir=tmp_path / "full")

    def die(epoch, step):
        if (epoch, step) == (1, 2):
            raise Killed

    torch.manual_seed(0)
    with pytest.raises(Killed):
        fit(_aux(), splits, recipe, kind="aux", teacher=teacher, out_dir=tmp_path / "cut", on_step=die)
    assert load_checkpoint(tmp_path / "cut" / CHECKPOINT_FILE, "aux")["epoch"] == 1

    torch.manual_seed(999)  # a fresh process would start from a different state; resume must not care
    resumed = fit(_aux(), splits, recipe, kind="aux", teacher=teacher, out_dir=tmp_path / "cut", resume=True)

    a, b = full.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    log = [json.loads(line) for line in (tmp_path / "cut" / LOG_FILE).read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2, 3]
    timing = ("epoch_seconds", "images_per_second")
    strip = lambda rows: [{k: v for k, v in r.items() if k not in timing} for r in rows]
    assert strip(log) == strip(full.history) == strip(resumed.history)
    assert log == resumed.history


def test_resume_of_a_finished_run_trains_nothing(tmp_path):
    splits = small_splits(tmp_path)
    recipe = quick_recipe(epochs=1)
    first = fit(lets_core.AuxNet(lets_core.presets.tiny()), splits, recipe, kind="aux", out_dir=tmp_path / "run")
    again = fit(lets_core.AuxNet(lets_core.presets.tiny()), splits, recipe, kind="aux", out_dir=tmp_path / "run",
                resume=True)
    assert again.history == first.history
    assert all(torch.equal(first.model.state_dict()[k], v) for k, v in again.model.state_dict().items())


def test_resume_with_another_teacher_or_starting_model_is_refused(tmp_path):
    splits = small_splits(tmp_path)
    recipe = quick_recipe(epochs=1, alpha=0.5)
    teacher = _teacher(splits)
    run = tmp_path / "run"
    origin = {"source": "scratch", "seed": 0}
    fit(lets_core.AuxNet(lets_core.presets.tiny()), splits, recipe, kind="aux", teacher=teacher, out_dir=run,
        origin=origin)
    other = _teacher(splits)
    with torch.no_grad():
        next(other.parameters()).add_(1.0)
    with pytest.raises(CheckpointError, match=r"starts from another model or teacher \(teacher: checkpoint state "):
        fit(lets_core.AuxNet(lets_core.presets.tiny()), splits, recipe, kind="aux", teacher=other, out_dir=run,
            resume=True, origin=origin)
    with pytest.raises(CheckpointError, match=r"starting model's seed: checkpoint 0 vs now 1"):
        fit(lets_core.AuxNet(lets_core.presets.tiny()), splits, recipe, kind="aux", teacher=teacher, out_dir=run,
            resume=True, origin={"source": "scratch", "seed": 1})
    # the same teacher (an equal copy) and the same origin resume
    fit(lets_core.AuxNet(lets_core.presets.tiny()), splits, recipe, kind="aux", teacher=_teacher(splits),
        out_dir=run, resume=True, origin=dict(origin))
    # a checkpoint written before origins were recorded cannot be checked, so it is refused
    state = load_checkpoint(run / CHECKPOINT_FILE)
    del state["origin"], state["rng"], state["format_version"]
    save_checkpoint(run / CHECKPOINT_FILE, state)
    with pytest.raises(CheckpointError, match="records neither the model it started from nor its teacher"):
        fit(lets_core.AuxNet(lets_core.presets.tiny()), splits, recipe, kind="aux", teacher=teacher, out_dir=run,
            resume=True, origin=origin)


def test_mismatched_checkpoints_fail_clearly(tmp_path):
    splits = small_splits(tmp_path)
    fit(lets_core.AuxNet(lets_core.presets.tiny()), splits, quick_recipe(epochs=1), kind="aux",
        out_dir=tmp_path / "run")
    with pytest.raises(CheckpointError, match=r"configuration changed \(lr: checkpoint 0.004 vs now 0.001\)"):
        fit(lets_core.AuxNet(lets_core.presets.tiny()), splits, quick_recipe(epochs=1, lr=1e-3), kind="aux",
            out_dir=tmp_path / "run", resume=True)
    with pytest.raises(CheckpointError, match="written while training a 'aux' model; this run trains a 'des'"):
        fit(lets_core.emit_des(lets_core.AuxNet(lets_core.presets.tiny()), 2, 4), splits, quick_recipe(epochs=1),
            kind="des", out_dir=tmp_path / "run", resume=True)
    wider = lets_core.AuxNet(dataclasses.replace(lets_core.presets.tiny(), aux_embed_dim=48))
    with pytest.raises(CheckpointError, match="holds a model of another shape"):
        fit(wider, splits, quick_recipe(epochs=1), kind="aux", out_dir=tmp_path / "run", resume=True)
    path = tmp_path / "run" / CHECKPOINT_FILE
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="corrupted"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "none.pt")


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / CHECKPOINT_FILE
    save_checkpoint(path, {"kind": "aux", "epoch": 1})

    def crash(obj, f, *args, **kwargs):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {"kind": "aux", "epoch": 2})
    monkeypatch.undo()
    assert load_checkpoint(path, "aux")["epoch"] == 1
