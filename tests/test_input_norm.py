"""A model's input normalization is recorded when it is trained, kept by every saved form, and used
by evaluation and fine-tuning: evaluating a saved model must not depend on the data flags of the
evaluating run (--train-limit changed a Des-Net's measured top-1 before it was recorded)."""

from __future__ import annotations

import json

import pytest
import torch
from train_helpers import fake_fashion_mnist, quick_recipe, small_splits

import lets_core
from lets_core import cli
from lets_core.data import load_splits
from lets_core.errors import BundleError
from lets_core.input_norm import (InputNorm, Renormalized, fed_as, normalized_for, record_input_norm,
                                  recorded_input_norm)
from lets_core.train import evaluate_split, finetune, load_teacher, train_aux, train_teacher
from lets_core.train.checkpoint import CheckpointError

NORM = InputNorm((0.3,), (0.4,))


@pytest.fixture(autouse=True)
def _no_reexec(monkeypatch):
    # Training commands re-execute themselves unless an OpenMP wait policy is already set.
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.mark.parametrize("mean, std, message", [
    ((), (), "mean must be a non-empty sequence"),
    ("0.3", (0.4,), "mean must be a non-empty sequence"),
    ((0.3,), (float("nan"),), "std must hold finite numbers"),
    ((True,), (0.4,), "mean must hold finite numbers"),
    ((0.3, 0.3), (0.4,), "2 means but 1 stds"),
    ((0.3,), (0.0,), "std must be positive"),
])
def test_bad_normalizations_are_refused(mean, std, message):
    with pytest.raises(ValueError, match=message):
        InputNorm(mean, std)


def test_saved_records_are_read_or_refused_by_name():
    assert InputNorm.from_dict({"mean": [0.3], "std": [0.4]}, "f") == NORM
    with pytest.raises(ValueError, match="f: the input normalization must be an object with 'mean' and 'std'"):
        InputNorm.from_dict({"mean": [0.3]}, "f")
    with pytest.raises(ValueError, match="f: input normalization std must be positive"):
        InputNorm.from_dict({"mean": [0.3], "std": [-1]}, "f")
    with pytest.raises(TypeError, match="norm must be an InputNorm or None, got dict"):
        record_input_norm(torch.nn.Linear(1, 1), {"mean": [0.3], "std": [0.4]})


def test_bundle_and_des_folders_keep_the_record_and_timm_reads_it(tmp_path):
    import timm
    import timm.data

    aux = record_input_norm(lets_core.AuxNet(lets_core.presets.tiny()), NORM)
    loaded = lets_core.load_bundle(lets_core.save_bundle(aux, tmp_path / "bundle"))
    assert recorded_input_norm(loaded) == NORM
    assert json.loads((tmp_path / "bundle" / "bundle.json").read_text())["input_norm"] == NORM.to_dict()
    # Emitted Des-Nets inherit it (one and many), and timm's data config follows it in memory ...
    des = lets_core.emit_des(loaded, 3, 6)
    assert recorded_input_norm(des) == NORM
    assert all(recorded_input_norm(m) == NORM for m in lets_core.emit_des_many(loaded, [(2, 4), (4, 8)]))
    config = timm.data.resolve_data_config({}, model=des)
    assert (config["input_size"], tuple(config["mean"]), tuple(config["std"])) == ((1, 28, 28), (0.3,), (0.4,))
    # ... and on disk, for load_des and for timm without lets_core (a new head keeps it too).
    des.reset_classifier(5)
    lets_core.save_des(des, tmp_path / "des")
    assert recorded_input_norm(lets_core.load_des(tmp_path / "des")) == NORM
    plain = timm.create_model(f"local-dir:{tmp_path / 'des'}", pretrained=True)
    assert tuple(timm.data.resolve_data_config({}, model=plain)["mean"]) == (0.3,)


def test_folders_without_a_record_load_without_one_and_an_edited_record_is_refused(tmp_path):
    aux = lets_core.AuxNet(lets_core.presets.tiny())  # records nothing, as bundles saved before the record
    lets_core.save_bundle(aux, tmp_path / "old")
    assert "input_norm" not in json.loads((tmp_path / "old" / "bundle.json").read_text())
    assert recorded_input_norm(lets_core.load_bundle(tmp_path / "old")) is None
    with pytest.warns(UserWarning, match="records no input normalization, so its config.json has no mean"):
        lets_core.save_des(lets_core.emit_des(aux, 3, 6), tmp_path / "old_des")
    assert "mean" not in json.loads((tmp_path / "old_des" / "config.json").read_text())["pretrained_cfg"]
    assert recorded_input_norm(lets_core.load_des(tmp_path / "old_des")) is None
    # The record is covered by bundle.json's digest: an edited mean is a damaged bundle.
    lets_core.save_bundle(record_input_norm(aux, NORM), tmp_path / "b")
    path = tmp_path / "b" / "bundle.json"
    path.write_text(path.read_text().replace("0.3", "0.5"))
    with pytest.raises(BundleError, match="input_norm"):
        lets_core.load_bundle(tmp_path / "b")


def test_evaluation_uses_the_record_whatever_the_data_flags(tmp_path):
    root = fake_fashion_mnist(tmp_path / "fm")
    small = load_splits("fashion-mnist", root, val_size=16, train_limit=20, seed=0)
    full = load_splits("fashion-mnist", root, val_size=16, seed=0)
    assert small.mean != full.mean  # the two runs' own statistics differ
    des = record_input_norm(lets_core.emit_des(lets_core.AuxNet(lets_core.presets.tiny()), 3, 6), InputNorm.of(full))
    assert evaluate_split(des, small) == evaluate_split(des, full)
    # Without a record each run's own statistics are used (what lets evaluate did for every model).
    record_input_norm(des, None)
    assert evaluate_split(des, small) != evaluate_split(des, full)
    assert normalized_for(des, small) is small


def test_a_record_for_other_channels_is_refused(tmp_path):
    splits = small_splits(tmp_path)
    model = record_input_norm(torch.nn.Linear(1, 1), InputNorm((0.5,) * 3, (0.2,) * 3))
    with pytest.raises(ValueError, match="records an input normalization for 3 channels but the data has 1"):
        normalized_for(model, splits)


def test_training_records_the_normalization_it_used(tmp_path):
    splits = small_splits(tmp_path)
    cfg = lets_core.presets.tiny()
    aux = train_aux(cfg, splits, quick_recipe(epochs=1, alpha=0.0), tmp_path / "aux").model
    assert recorded_input_norm(aux) == InputNorm.of(splits)
    assert recorded_input_norm(lets_core.load_bundle(tmp_path / "aux" / "bundle")) == InputNorm.of(splits)
    # Fine-tuning a model that records another normalization keeps it (as timm users fine-tune a
    # pretrained model with its own mean and std) and the saved Des-Net says so.
    des = record_input_norm(lets_core.emit_des(aux, 3, 6), NORM)
    tuned = finetune(des, splits, quick_recipe(epochs=1), tmp_path / "ft").model
    assert recorded_input_norm(tuned) == NORM
    assert recorded_input_norm(lets_core.load_des(tmp_path / "ft" / "model")) == NORM


def test_a_teacher_trained_with_other_statistics_sees_its_own_inputs(tmp_path):
    splits = small_splits(tmp_path)
    teacher = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(28 * 28, 10))
    assert fed_as(teacher, splits) is teacher  # no record: nothing to convert
    record_input_norm(teacher, InputNorm.of(splits))
    assert fed_as(teacher, splits) is teacher  # the same statistics: nothing to convert
    record_input_norm(teacher, NORM)
    adapted = fed_as(teacher, splits)
    assert isinstance(adapted, Renormalized)
    pixels = torch.rand(4, 1, 28, 28, dtype=torch.float64)
    data_input = (pixels - splits.mean[0]) / splits.std[0]
    own_input = (pixels - 0.3) / 0.4
    torch.testing.assert_close(adapted(data_input.float()), teacher(own_input.float()), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="cannot convert 1-channel inputs to the 3 channels"):
        Renormalized(teacher, NORM, InputNorm((0.5,) * 3, (0.2,) * 3))


def test_a_teacher_folder_records_its_normalization_old_folders_included(tmp_path):
    splits = small_splits(tmp_path)
    out = tmp_path / "teacher"
    model, meta = train_teacher(splits, quick_recipe(epochs=1), out)
    assert recorded_input_norm(model) == InputNorm.of(splits) and meta["input_norm"] == InputNorm.of(splits).to_dict()
    assert recorded_input_norm(load_teacher(out)) == InputNorm.of(splits)
    # A teacher.json written before the field: its data description holds the same statistics.
    path = out / "teacher.json"
    saved = json.loads(path.read_text())
    saved.pop("input_norm")
    from lets_core.artifacts import digest_record

    saved.pop("digest")
    saved["digest"] = digest_record({"model.safetensors": out / "model.safetensors"}, saved)
    path.write_text(json.dumps(saved))
    assert recorded_input_norm(load_teacher(out)) == InputNorm.of(splits)
    saved["input_norm"] = {"mean": [0.3], "std": [0.0]}
    saved.pop("digest")
    saved["digest"] = digest_record({"model.safetensors": out / "model.safetensors"}, saved)
    path.write_text(json.dumps(saved))
    with pytest.raises(CheckpointError, match="std must be positive"):
        load_teacher(out)


def test_lets_evaluate_reports_the_same_top1_whatever_train_limit(tmp_path, capsys):
    data = str(fake_fashion_mnist(tmp_path / "fm"))
    aux = lets_core.AuxNet(lets_core.presets.tiny())
    splits = load_splits("fashion-mnist", data, val_size=16, seed=0)
    lets_core.save_des(record_input_norm(lets_core.emit_des(aux, 3, 6), InputNorm.of(splits)), tmp_path / "des")
    with pytest.warns(UserWarning, match="records no input normalization"):
        lets_core.save_des(lets_core.emit_des(aux, 3, 6), tmp_path / "old")  # records none

    def evaluate(folder, *flags):
        assert cli.main(["evaluate", "--des", str(folder), "--data-dir", data, "--val-size", "16", "--json",
                         *flags]) == 0
        captured = capsys.readouterr()
        return json.loads(captured.out.strip().splitlines()[-1]), captured.err

    (a, err_a), (b, _) = evaluate(tmp_path / "des"), evaluate(tmp_path / "des", "--train-limit", "20")
    assert a == b and a["input_norm"]["source"] == "model" and "note" not in err_a
    (c, err_c), (d, _) = evaluate(tmp_path / "old"), evaluate(tmp_path / "old", "--train-limit", "20")
    assert c["input_norm"]["source"] == "data" and c["input_norm"]["mean"] != d["input_norm"]["mean"]
    assert "records no input normalization" in err_c


def test_a_baseline_source_keeps_the_record(tmp_path):
    from lets_core.baselines import ligo, load_source, save_source
    from lets_core.baselines.source import Source

    aux = lets_core.AuxNet(lets_core.presets.ligo(lets_core.presets.tiny()))
    source = Source("lets-ligo", aux.cfg, ligo.stored_state(aux), input_norm=NORM)
    loaded = load_source(save_source(source, tmp_path / "s"))
    assert loaded.input_norm == NORM and recorded_input_norm(ligo.emit(loaded, 3, 6)) == NORM
    # A source saved without one (by an older lets_core) still loads, and records none.
    old = load_source(save_source(Source("lets-ligo", aux.cfg, ligo.stored_state(aux)), tmp_path / "old"))
    assert old.input_norm is None and "input_norm" not in (tmp_path / "old" / "source.json").read_text()


def test_wrapped_and_timm_loaded_models_keep_the_record(tmp_path):
    """nn.DataParallel hid the record, and a Des-Net loaded by timm alone had its mean and std only
    in its config: evaluation and fit then used the data's statistics."""
    import timm
    import timm.data

    des = record_input_norm(lets_core.emit_des(lets_core.AuxNet(lets_core.presets.tiny()), 3, 6), NORM)
    assert recorded_input_norm(torch.nn.DataParallel(des)) == NORM
    lets_core.save_des(des, tmp_path / "des")
    assert recorded_input_norm(timm.create_model(f"local-dir:{tmp_path / 'des'}", pretrained=True)) == NORM
    # A freshly built timm model's ImageNet defaults describe no training of its own.
    assert recorded_input_norm(timm.create_model("resnet18", pretrained=False, num_classes=2)) is None
    # Forgetting a record removes the mean and std timm reads.
    record_input_norm(des, None)
    assert "mean" not in des.pretrained_cfg and timm.data.resolve_data_config({}, model=des)["mean"] != (0.3,)


def test_a_resume_that_would_feed_the_teacher_differently_is_refused(tmp_path):
    """The checkpoint fingerprinted the teacher's weights only: the same weights with another
    record (converted inputs) or none passed as the same teacher."""
    from lets_core.train import fit

    splits = small_splits(tmp_path)
    torch.manual_seed(0)
    teacher = record_input_norm(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(28 * 28, 10)), NORM)
    student = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(28 * 28, 10))
    recipe = quick_recipe(epochs=1, alpha=1.0)
    fit(student, splits, recipe, kind="des", teacher=teacher, out_dir=tmp_path / "run")
    fit(student, splits, recipe, kind="des", teacher=teacher, out_dir=tmp_path / "run", resume=True)  # the same
    record_input_norm(teacher, None)
    with pytest.raises(CheckpointError, match="teacher: checkpoint state"):
        fit(student, splits, recipe, kind="des", teacher=teacher, out_dir=tmp_path / "run", resume=True)


def test_a_record_for_another_channel_count_than_the_models_is_refused(tmp_path):
    """Three ImageNet values on a one-channel Aux-Net were recorded, saved and signed; timm's
    transform then failed on the saved Des-Net ("output with shape [1, 28, 28] doesn't match the
    broadcast shape [3, 28, 28]"), and one value on a colour model silently served all channels."""
    from lets_core.input_norm import INPUT_NORM_ATTR
    rgb = InputNorm((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    aux = lets_core.AuxNet(lets_core.presets.tiny())  # in_chans 1
    message = ("the input normalization has 3 channels .* but the model takes 1; give one mean and one std per "
               "input channel")
    with pytest.raises(ValueError, match="record_input_norm: " + message):
        record_input_norm(aux, rgb)
    des = lets_core.emit_des(aux, 3, 6)
    with pytest.raises(ValueError, match="record_input_norm: " + message):
        record_input_norm(des, rgb)
    # A record set around record_input_norm is refused when saved.
    setattr(aux, INPUT_NORM_ATTR, rgb)
    with pytest.raises(ValueError, match="save_bundle: " + message):
        lets_core.save_bundle(aux, tmp_path / "b")
    setattr(des, INPUT_NORM_ATTR, rgb)
    with pytest.raises(ValueError, match="save_des: " + message):
        lets_core.save_des(des, tmp_path / "d")
    assert not (tmp_path / "b").exists() and not (tmp_path / "d").exists()
    # One value on a three-channel configuration.
    import dataclasses
    cfg = lets_core.presets.tiny()
    colour = dataclasses.replace(cfg, learngene=dataclasses.replace(cfg.learngene, in_chans=3))
    with pytest.raises(ValueError, match="has 1 channels .* but the model takes 3"):
        record_input_norm(lets_core.AuxNet(colour), NORM)
    assert recorded_input_norm(record_input_norm(lets_core.AuxNet(colour), rgb)) == rgb


def test_a_mean_outside_zero_one_is_refused_as_another_scale():
    with pytest.raises(ValueError, match=r"mean must be in \[0, 1\] .*got \[73.0\]; divide statistics of 0-255 "
                                         r"pixels by 255"):
        InputNorm((73.0,), (90.0,))
    with pytest.raises(ValueError, match=r"mean must be in \[0, 1\]"):
        InputNorm((-0.1,), (0.5,))
    assert InputNorm((0.0,), (1.0,)).std == (1.0,)  # a fixed convention (no scaling) stays allowed


def test_numpy_and_tensor_scalars_are_numbers():
    """A float32 numpy mean was refused as "must hold finite numbers, got [np.float32(0.5)]"."""
    import numpy as np
    images = np.full((4, 28, 28), 0.5, dtype=np.float32)
    assert InputNorm((images.mean(),), (np.float32(0.25),)) == InputNorm((0.5,), (0.25,))
    assert InputNorm((torch.tensor(0.5),), (torch.tensor(0.25, dtype=torch.float64),)) == InputNorm((0.5,), (0.25,))
    assert InputNorm(np.array([0.5]), torch.tensor([0.25])) == InputNorm((0.5,), (0.25,))
    for bad in (np.bool_(True), torch.tensor(True), torch.tensor([0.5]), np.float32("nan"), "0.5", 1j):
        with pytest.raises(ValueError, match="mean must hold finite numbers"):
            InputNorm((bad,), (0.25,))
