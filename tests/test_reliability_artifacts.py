"""Artifact integrity (issue 10): digests over every saved file and field, atomic folder saves,
clear errors for bad save targets and damaged files, and a teacher cache key that describes its weights."""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import stat
import shutil
from pathlib import Path

import pytest
import torch

import lets_core
from lets_core import artifacts
from lets_core.bundle import CONFIG_FILE, TENSORS_FILE
from lets_core.data import load_splits
from lets_core.des import DES_CONFIG, DES_DIGEST, DES_WEIGHTS
from lets_core.train import CheckpointError, evaluate_split, load_checkpoint, load_teacher, train_teacher
from lets_core.train import teacher as teacher_mod
from train_helpers import fake_fashion_mnist, quick_recipe

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


# ---------------------------------------------------------------- helpers


def _tiny_aux(seed: int = 0, **changes) -> lets_core.AuxNet:
    torch.manual_seed(seed)
    d = lets_core.presets.tiny().to_dict()
    d.update(changes)
    aux = lets_core.AuxNet(lets_core.LetsConfig.from_dict(d)).eval()
    # As stage 1 records it: save_des warns about a Des-Net that records none.
    return lets_core.record_input_norm(aux, lets_core.InputNorm((0.5,), (0.25,)))


def _edit_json(path: Path, edit) -> None:
    meta = json.loads(path.read_text())
    edit(meta)
    path.write_text(json.dumps(meta, indent=2))


def _flip_byte(path: Path, offset: int = -5) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def _siblings(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir() if p.name != path.name)


@pytest.fixture()
def bundle(tmp_path):
    aux = _tiny_aux()
    return aux, lets_core.save_bundle(aux, tmp_path / "bundle", training={"note": "stage 1"})


# ---------------------------------------------------------------- bundle digest (silent failure 1)


def test_bundle_json_records_digest_of_every_file_and_field(bundle):
    _, path = bundle
    meta = json.loads((path / CONFIG_FILE).read_text())
    assert meta["format_version"] == 2
    assert set(meta["digest"]["files"]) == {TENSORS_FILE}
    assert set(meta["digest"]["fields"]) == {"format_version", "config", "training", "input_norm"}
    assert meta["digest"]["files"][TENSORS_FILE] == artifacts.file_sha256(path / TENSORS_FILE)


def test_shape_keeping_head_dim_edit_is_detected(bundle):
    _, path = bundle
    _edit_json(path / CONFIG_FILE, lambda m: m["config"]["learngene"].update(head_dim=8))  # 16 -> 8 keeps shapes
    with pytest.raises(lets_core.BundleError, match=r"field 'config' of .*bundle.json' was changed after saving"):
        lets_core.load_bundle(path)


def test_shape_keeping_aux_depth_edit_is_detected(bundle):
    _, path = bundle

    def edit(meta):  # aux_depth 8 -> 16 with tie_length 2 -> 4: depth.g keeps its shape
        meta["config"]["aux_depth"] = 16
        meta["config"]["transform"]["tie_length"] = 4

    _edit_json(path / CONFIG_FILE, edit)
    with pytest.raises(lets_core.BundleError, match="field 'config'"):
        lets_core.load_bundle(path)


def test_shape_keeping_noise_edit_is_detected(bundle):
    _, path = bundle
    _edit_json(path / CONFIG_FILE, lambda m: m["config"]["transform"].update(f_noise=0.5))
    with pytest.raises(lets_core.BundleError, match="field 'config'"):
        lets_core.load_bundle(path)


def test_training_record_is_covered(bundle):
    _, path = bundle
    _edit_json(path / CONFIG_FILE, lambda m: m["training"].update(note="edited"))
    with pytest.raises(lets_core.BundleError, match="field 'training' .* was changed"):
        lets_core.load_bundle(path)
    _edit_json(path / CONFIG_FILE, lambda m: m.pop("training"))
    with pytest.raises(lets_core.BundleError, match="field 'training' .* was removed"):
        lets_core.load_bundle(path)


def test_added_field_is_detected(tmp_path):
    path = lets_core.save_bundle(_tiny_aux(), tmp_path / "b")  # no training record
    _edit_json(path / CONFIG_FILE, lambda m: m.update(training={"elastic": {}}))
    with pytest.raises(lets_core.BundleError, match="field 'training' .* was added"):
        lets_core.load_bundle(path)


def test_digest_record_removed_or_damaged(bundle):
    _, path = bundle
    original = (path / CONFIG_FILE).read_text()
    _edit_json(path / CONFIG_FILE, lambda m: m.pop("digest"))
    with pytest.raises(lets_core.BundleError, match="has no digest record"):
        lets_core.load_bundle(path)
    (path / CONFIG_FILE).write_text(original)
    _edit_json(path / CONFIG_FILE, lambda m: m["digest"].update(files={}))
    with pytest.raises(lets_core.BundleError, match=f"does not cover '{TENSORS_FILE}'"):
        lets_core.load_bundle(path)
    (path / CONFIG_FILE).write_text(original)
    _edit_json(path / CONFIG_FILE, lambda m: m["digest"]["files"].update({"../escape": "0" * 64}))
    with pytest.raises(lets_core.BundleError, match="not a file name of its folder"):
        lets_core.load_bundle(path)


def test_older_format_version_gives_clear_error(bundle):
    _, path = bundle
    _edit_json(path / CONFIG_FILE, lambda m: m.update(format_version=1))
    with pytest.raises(lets_core.BundleError, match="format_version 1; this lets_core reads version 2 .*older"):
        lets_core.load_bundle(path)


@pytest.mark.parametrize("content, message", [
    (b"[1, 2]", "holds a JSON list, not an object"),
    (b"5", "holds a JSON number, not an object"),
    (b'"text"', "holds a JSON string, not an object"),
    (b"\xff\xfe\x00binary\x80", "is not UTF-8 text"),
])
def test_bundle_json_that_is_not_an_object(bundle, content, message):
    _, path = bundle
    (path / CONFIG_FILE).write_bytes(content)
    with pytest.raises(lets_core.BundleError, match=message):
        lets_core.load_bundle(path)


def test_round_trip_still_exact(bundle):
    aux, path = bundle
    loaded = lets_core.load_bundle(path).eval()
    x = torch.randn(2, 1, 28, 28)
    torch.testing.assert_close(loaded(x), aux(x), rtol=0, atol=0)


# ---------------------------------------------------------------- atomic folder saves


def test_resave_replaces_the_whole_folder_and_leaves_no_temporaries(tmp_path):
    first, second = _tiny_aux(0), _tiny_aux(1)
    path = lets_core.save_bundle(first, tmp_path / "bundle")
    lets_core.save_bundle(second, path)
    loaded = lets_core.load_bundle(path)
    assert torch.equal(loaded.width.f_e, second.width.f_e)
    assert _siblings(path) == []


def test_failed_save_keeps_the_old_bundle(tmp_path, monkeypatch):
    first = _tiny_aux(0)
    path = lets_core.save_bundle(first, tmp_path / "bundle")

    def broken_write_json(target, value):
        Path(target).write_text('{"half": ')  # a write that dies midway (disk full)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("lets_core.bundle.write_json", broken_write_json)
    with pytest.raises(lets_core.BundleError, match="No space left on device.*previous content is unchanged"):
        lets_core.save_bundle(_tiny_aux(1), path)
    assert torch.equal(lets_core.load_bundle(path).width.f_e, first.width.f_e)
    assert _siblings(path) == []


def _writer(tag: str, die_midway: bool = False):
    def write(folder: Path) -> None:
        (folder / "a.txt").write_text(tag)
        if die_midway:
            os._exit(0)
        (folder / "b.txt").write_text(tag)
    return write


def _complete(folder: Path) -> str | None:
    """The tag of a complete test artifact, None when it is missing or mixed."""
    try:
        a, b = (folder / "a.txt").read_text(), (folder / "b.txt").read_text()
    except FileNotFoundError:
        return None
    return a if a == b and sorted(os.listdir(folder)) == ["a.txt", "b.txt"] else None


def _killed_save(target: Path, tag: str, point: str) -> None:
    """Save ``tag`` into ``target`` in a forked child that dies (os._exit, no cleanup) at ``point``."""
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        try:
            def die_after(fn):
                def wrapped(*args, **kwargs):
                    fn(*args, **kwargs)
                    os._exit(0)
                return wrapped

            if point == "after-fsync":
                artifacts._fsync_tree = die_after(artifacts._fsync_tree)
            elif point == "after-swap":
                artifacts._swap_into_place = die_after(artifacts._swap_into_place)
            elif point == "between-renames":
                artifacts._exchange = lambda a, b: False
                real_rename, calls = os.rename, []

                def rename(src, dst):
                    calls.append(src)
                    if len(calls) == 2:
                        os._exit(0)
                    real_rename(src, dst)

                os.rename = rename
            artifacts.save_folder_atomically(target, _writer(tag, point == "mid-write"), owned=("a.txt", "b.txt"),
                                             what="test artifact")
        finally:
            os._exit(3)  # the kill point was not reached
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, f"child did not die at {point}"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork to kill a save midway")
@pytest.mark.parametrize("point, expected", [("mid-write", "old"), ("after-fsync", "old"), ("after-swap", "new")])
def test_kill_at_any_moment_leaves_old_or_new_complete(tmp_path, point, expected):
    target = tmp_path / "artifact"
    artifacts.save_folder_atomically(target, _writer("old"), owned=("a.txt", "b.txt"), what="test artifact")
    _killed_save(target, "new", point)
    assert _complete(target) == expected
    # the next save succeeds and yields the complete new folder
    artifacts.save_folder_atomically(target, _writer("newer"), owned=("a.txt", "b.txt"), what="test artifact")
    assert _complete(target) == "newer"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork to kill a save midway")
def test_kill_between_fallback_renames_keeps_both_complete(tmp_path):
    # Without renameat2 the swap is two renames; a kill between them leaves both folders complete
    # beside the target, and the load error points at them.
    target = tmp_path / "bundle"
    artifacts.save_folder_atomically(target, _writer("old"), owned=("a.txt", "b.txt"), what="test artifact")
    _killed_save(target, "new", "between-renames")
    assert not target.exists()
    leftovers = {name: _complete(tmp_path / name) for name in _siblings(target)}
    assert sorted(leftovers.values()) == ["new", "old"], leftovers
    with pytest.raises(lets_core.BundleError, match="interrupted save left"):
        lets_core.load_bundle(target)


def test_fallback_swap_without_renameat2(tmp_path, monkeypatch):
    monkeypatch.setattr(artifacts, "_exchange", lambda a, b: False)
    first, second = _tiny_aux(0), _tiny_aux(1)
    path = lets_core.save_bundle(first, tmp_path / "bundle")
    lets_core.save_bundle(second, path)
    assert torch.equal(lets_core.load_bundle(path).width.f_e, second.width.f_e)
    assert _siblings(path) == []


# ---------------------------------------------------------------- bad save targets


def test_save_target_that_is_a_file(tmp_path):
    target = tmp_path / "bundle"
    target.write_text("not a folder")
    with pytest.raises(lets_core.BundleError, match=r"cannot save the bundle to .*bundle': it is an existing file"):
        lets_core.save_bundle(_tiny_aux(), target)
    assert target.read_text() == "not a folder"
    with pytest.raises(lets_core.BundleError, match=r"bundle' is a file, not a folder"):
        lets_core.save_bundle(_tiny_aux(), target / "sub")


def test_save_target_folder_with_foreign_files_is_not_deleted(tmp_path):
    target = tmp_path / "results"
    target.mkdir()
    (target / "notes.txt").write_text("keep me")
    with pytest.raises(lets_core.BundleError, match=r"holds files lets_core did not write there \('notes.txt'\)"):
        lets_core.save_bundle(_tiny_aux(), target)
    assert (target / "notes.txt").read_text() == "keep me"


def test_save_into_an_empty_existing_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    path = lets_core.save_bundle(_tiny_aux(), tmp_path / "empty")
    assert lets_core.load_bundle(path).cfg == lets_core.presets.tiny()


def test_save_into_unwritable_folder_simulated(tmp_path, monkeypatch):
    # Root ignores permission bits, so an EACCES from mkdir is simulated for the temporary folder.
    real_mkdir = Path.mkdir

    def mkdir(self, *args, **kwargs):
        if self.name.startswith("."):
            raise PermissionError(13, "Permission denied", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    with pytest.raises(lets_core.BundleError, match=r"its folder .* is not writable \(Permission denied\)"):
        lets_core.save_bundle(_tiny_aux(), tmp_path / "bundle")


@pytest.mark.skipif(IS_ROOT, reason="root ignores read-only permission bits")
def test_save_into_read_only_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(lets_core.BundleError, match="not writable"):
            lets_core.save_bundle(_tiny_aux(), ro / "bundle")
        with pytest.raises(lets_core.BundleError, match="cannot be created"):
            lets_core.save_bundle(_tiny_aux(), ro / "deeper" / "bundle")
    finally:
        ro.chmod(0o755)


# ---------------------------------------------------------------- Des-Nets


@pytest.fixture()
def des_folder(tmp_path):
    des = lets_core.emit_des(_tiny_aux(), heads=3, depth=4)
    return des, lets_core.save_des(des, tmp_path / "des")


def test_des_digest_lives_beside_the_timm_files(des_folder):
    _, folder = des_folder
    assert sorted(os.listdir(folder)) == sorted([DES_CONFIG, DES_WEIGHTS, DES_DIGEST])
    record = json.loads((folder / DES_DIGEST).read_text())
    assert record["digest"]["files"] == {n: artifacts.file_sha256(folder / n) for n in (DES_CONFIG, DES_WEIGHTS)}
    assert "digest" not in json.loads((folder / DES_CONFIG).read_text())  # timm's config is left as timm reads it
    assert _siblings(folder) == []


def test_load_des_round_trip(des_folder):
    des, folder = des_folder
    loaded = lets_core.load_des(folder)
    assert not loaded.training and loaded.lets_model_args == des.lets_model_args
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), des(x), rtol=0, atol=0)


def test_des_flipped_byte_is_detected(des_folder):
    _, folder = des_folder
    _flip_byte(folder / DES_WEIGHTS)
    with pytest.raises(lets_core.BundleError, match=r"model.safetensors' is corrupted or truncated"):
        lets_core.load_des(folder)


def test_des_config_edit_is_detected(des_folder):
    _, folder = des_folder
    _edit_json(folder / DES_CONFIG, lambda c: c["model_args"].update(num_heads=6))  # 48 / 6 keeps every shape
    with pytest.raises(lets_core.BundleError, match=r"config.json' is corrupted or truncated"):
        lets_core.load_des(folder)


@pytest.mark.parametrize("content, message", [(None, "lets_digest.json' is missing"),
                                              (b"[]", "holds a JSON list"),
                                              (b"\x80\x81", "is not UTF-8 text"),
                                              (b'{"format_version": 1}', "has no digest record")])
def test_des_digest_file_missing_or_bad(des_folder, content, message):
    _, folder = des_folder
    if content is None:
        (folder / DES_DIGEST).unlink()
    else:
        (folder / DES_DIGEST).write_bytes(content)
    with pytest.raises(lets_core.BundleError, match=message):
        lets_core.load_des(folder)


def test_des_save_targets(des_folder, tmp_path):
    des, folder = des_folder
    lets_core.save_des(des, folder)  # replacing a previous Des-Net folder is fine
    assert lets_core.load_des(folder).lets_model_args == des.lets_model_args
    (tmp_path / "file").write_text("x")
    with pytest.raises(lets_core.BundleError, match="cannot save the Des-Net .* existing file"):
        lets_core.save_des(des, tmp_path / "file")
    (folder / "log.jsonl").write_text("{}")
    with pytest.raises(lets_core.BundleError, match="holds files lets_core did not write there"):
        lets_core.save_des(des, folder)


def test_des_saved_after_reset_classifier_loads_with_its_new_head(tmp_path):
    """reset_classifier (before fine-tuning on another task) changes the head after emission; the
    saved config follows the model (it used to keep the emitted class count: a signed folder that
    neither load_des nor timm could load)."""
    des = lets_core.emit_des(_tiny_aux(), heads=3, depth=4)
    des.reset_classifier(5)
    loaded = lets_core.load_des(lets_core.save_des(des, tmp_path / "des5"))
    assert loaded.num_classes == 5 and loaded.lets_model_args["num_classes"] == 5
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), des.eval()(x), rtol=0, atol=0)
    assert des.lets_model_args["num_classes"] == 10  # saving does not change the model


def test_des_whose_layers_changed_is_refused_before_writing(tmp_path):
    des = lets_core.emit_des(_tiny_aux(), heads=3, depth=4)
    des.blocks[0].mlp.fc1 = torch.nn.Linear(48, 7)
    with pytest.raises(ValueError, match=r"no longer matches the timm arguments .* blocks.0.mlp.fc1.bias: \(7,\) "
                                         r"in the model, \(96,\) in its arguments"):
        lets_core.save_des(des, tmp_path / "bad")
    assert not (tmp_path / "bad").exists()


# ---------------------------------------------------------------- teachers


@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory):
    """One real teacher, trained once (1 epoch on 96 images); tests work on copies of its folder."""
    root = tmp_path_factory.mktemp("teacher")
    data = fake_fashion_mnist(root / "fm")
    splits = load_splits("fashion-mnist", data, val_size=16, seed=0)
    cfg = quick_recipe(epochs=1)
    train_teacher(splits, cfg, root / "out")
    return root, data, splits, cfg


@pytest.fixture()
def teacher_dir(teacher_run, tmp_path):
    root = teacher_run[0]
    return Path(shutil.copytree(root / "out", tmp_path / "teacher"))


def _no_training(monkeypatch):
    class Trained(Exception):
        pass

    def fit(*args, **kwargs):
        raise Trained("train_teacher trained instead of using the cache")

    monkeypatch.setattr(teacher_mod, "fit", fit)
    return Trained


def test_teacher_json_holds_digest_and_data_record(teacher_dir):
    meta = json.loads((teacher_dir / "teacher.json").read_text())
    assert meta["digest"]["files"] == {"model.safetensors": artifacts.file_sha256(teacher_dir / "model.safetensors")}
    assert {"arch", "data", "data_record", "train_config"} <= set(meta["digest"]["fields"])
    assert (teacher_dir / "checkpoint.pt").is_file()  # fit's checkpoint is kept beside it
    assert not list(teacher_dir.glob("*.tmp"))


def test_train_teacher_hashes_its_data_once(teacher_run, tmp_path, monkeypatch):
    # The cache key and fit's checkpoint share one data record: on a full dataset each hash of the
    # images costs seconds.
    _, _, splits, cfg = teacher_run
    records = importlib.import_module("lets_core.train.data_record")
    digest, hashed = records._digest, []
    monkeypatch.setattr(records, "_digest", lambda data: hashed.append(data) or digest(data))
    train_teacher(splits, cfg, tmp_path / "teacher")
    assert [len(data) for data in hashed] == [len(splits.train), len(splits.val)]
    meta = json.loads((tmp_path / "teacher" / "teacher.json").read_text())
    assert load_checkpoint(tmp_path / "teacher" / "checkpoint.pt")["data"] == meta["data_record"]


def test_teacher_cache_hit_after_verification(teacher_run, teacher_dir, monkeypatch):
    _, _, splits, cfg = teacher_run
    _no_training(monkeypatch)
    model, meta = train_teacher(splits, cfg, teacher_dir)
    assert "digest" not in meta and meta["arch"] == "lets-resnet-small"
    assert not model.training


def test_teacher_flipped_byte_is_not_a_cache_hit(teacher_run, teacher_dir, monkeypatch):
    _, _, splits, cfg = teacher_run
    _flip_byte(teacher_dir / "model.safetensors")
    with pytest.raises(CheckpointError, match="model.safetensors' is corrupted or truncated"):
        load_teacher(teacher_dir)
    trained = _no_training(monkeypatch)
    with pytest.raises(trained):
        train_teacher(splits, cfg, teacher_dir)


def test_teacher_weights_published_without_their_json_are_not_a_cache_hit(teacher_run, teacher_dir, monkeypatch):
    # A kill between the two renames: new weights beside the old teacher.json.
    _, _, splits, cfg = teacher_run
    other = teacher_mod.build_teacher(num_classes=10, in_chans=1, img_size=28)
    from safetensors.torch import save_file
    save_file({k: v.contiguous() for k, v in other.state_dict().items()}, str(teacher_dir / "model.safetensors"))
    with pytest.raises(CheckpointError, match="corrupted or truncated"):
        load_teacher(teacher_dir)
    trained = _no_training(monkeypatch)
    with pytest.raises(trained):
        train_teacher(splits, cfg, teacher_dir)


def test_teacher_json_edit_is_detected(teacher_run, teacher_dir, monkeypatch):
    _, _, splits, cfg = teacher_run
    _edit_json(teacher_dir / "teacher.json", lambda m: m["train_config"].update(epochs=50))
    with pytest.raises(CheckpointError, match="field 'train_config' .* was changed after saving"):
        load_teacher(teacher_dir)


def test_teacher_cache_key_covers_the_exact_training_data(teacher_run, teacher_dir, monkeypatch):
    # Same images and counts, other labels: the description (and describe()) is unchanged.
    _, _, splits, cfg = teacher_run
    train = dataclasses.replace(splits.train, labels=splits.train.labels.roll(1))
    other = dataclasses.replace(splits, train=train)
    assert other.describe() == splits.describe()
    trained = _no_training(monkeypatch)
    with pytest.raises(trained):
        train_teacher(other, cfg, teacher_dir)


def test_teacher_resume_on_other_data_keeps_teacher_json(teacher_run, teacher_dir):
    # Silent failure 4: resuming with another --train-limit must not relabel the old weights.
    _, data, splits, cfg = teacher_run
    before = (teacher_dir / "teacher.json").read_bytes()
    limited = load_splits("fashion-mnist", data, val_size=16, seed=0, train_limit=48)
    with pytest.raises(CheckpointError):
        train_teacher(limited, cfg, teacher_dir, resume=True)
    assert (teacher_dir / "teacher.json").read_bytes() == before
    load_teacher(teacher_dir)  # still the verified original


def test_teacher_json_without_digest_is_rejected(teacher_run, teacher_dir, monkeypatch):
    _, _, splits, cfg = teacher_run
    _edit_json(teacher_dir / "teacher.json", lambda m: m.pop("digest"))
    with pytest.raises(CheckpointError, match="has no digest record"):
        load_teacher(teacher_dir)
    trained = _no_training(monkeypatch)
    with pytest.raises(trained):
        train_teacher(splits, cfg, teacher_dir)


@pytest.mark.parametrize("key", ["arch", "num_classes", "in_chans", "img_size"])
def test_teacher_json_missing_key(teacher_dir, key):
    _edit_json(teacher_dir / "teacher.json", lambda m: m.pop(key))
    with pytest.raises(CheckpointError, match=rf"teacher.json' lacks \['{key}'\]"):
        load_teacher(teacher_dir)


@pytest.mark.parametrize("content, message", [(b"[1]", "holds a JSON list, not an object"),
                                              (b"null", "holds a JSON null"),
                                              (b"\xff\xd8\xff", "is not UTF-8 text"),
                                              (b"{oops", "is not valid JSON")])
def test_teacher_json_not_an_object(teacher_dir, content, message):
    (teacher_dir / "teacher.json").write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        load_teacher(teacher_dir)


def test_load_teacher_nonexistent_path(tmp_path):
    with pytest.raises(CheckpointError, match=r"teacher '/nonexistent/teacher' does not exist"):
        load_teacher("/nonexistent/teacher")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_teacher(tmp_path / "missing.safetensors", "resnet18", num_classes=10, in_chans=1)


def test_teacher_save_failure_keeps_the_old_pair(teacher_dir, monkeypatch):
    before = {n: (teacher_dir / n).read_bytes() for n in ("model.safetensors", "teacher.json")}
    meta = json.loads(before["teacher.json"])
    meta.pop("digest")
    monkeypatch.setattr(teacher_mod, "write_json", lambda path, value: (_ for _ in ()).throw(
        OSError(28, "No space left on device")))
    model = teacher_mod.build_teacher(num_classes=10, in_chans=1, img_size=28)
    with pytest.raises(CheckpointError, match="cannot save the teacher into .*No space left on device"):
        teacher_mod._save_teacher(teacher_dir, model, meta)
    assert {n: (teacher_dir / n).read_bytes() for n in before} == before
    assert not list(teacher_dir.glob("*.tmp"))
    load_teacher(teacher_dir)


def test_compiled_models_save_with_plain_keys(tmp_path):
    """A torch.compile'd Aux-Net's state dict keys carry "_orig_mod.": its bundle used to be
    written, signed, and never loadable."""
    aux = _tiny_aux()
    loaded = lets_core.load_bundle(lets_core.save_bundle(torch.compile(aux, backend="eager"), tmp_path / "b"))
    assert torch.equal(loaded.width.f_e, aux.width.f_e)
    des = lets_core.emit_des(aux, heads=3, depth=4)
    assert lets_core.load_des(lets_core.save_des(torch.compile(des, backend="eager"), tmp_path / "d")).num_classes == 10


def test_non_finite_weights_are_refused_everywhere_they_would_pass_silently(tmp_path):
    """One NaN in F made every emitted Des-Net NaN while emit, save and evaluate reported success."""
    aux = _tiny_aux()
    lets_core.save_bundle(aux, tmp_path / "good")
    with torch.no_grad():
        aux.width.f_e[3, 0] = float("nan")
    with pytest.raises(ValueError, match=r"non-finite values \(NaN or inf\) in width.f_e \(1 of"):
        lets_core.save_bundle(aux, tmp_path / "nan")
    with pytest.raises(ValueError, match="the emitted Des-Net holds non-finite values"):
        lets_core.emit_des(aux, heads=3, depth=4)
    # A bundle written before this check (same file, a NaN put in place and the digest re-signed)
    path = tmp_path / "good"
    from safetensors.torch import load_file, save_file
    state = load_file(str(path / TENSORS_FILE))
    state["width.f_e"][3, 0] = float("nan")
    save_file(state, str(path / TENSORS_FILE))
    meta = json.loads((path / CONFIG_FILE).read_text())
    meta["digest"] = artifacts.digest_record({TENSORS_FILE: path / TENSORS_FILE},
                                             {k: v for k, v in meta.items() if k != "digest"})
    (path / CONFIG_FILE).write_text(json.dumps(meta))
    with pytest.raises(lets_core.BundleError, match=r"holds non-finite values .* width.f_e"):
        lets_core.load_bundle(path)


def test_a_folder_with_an_owned_file_name_is_not_deleted(tmp_path):
    """A folder named bundle.json passed the name check and was deleted with its contents."""
    (tmp_path / "b" / CONFIG_FILE).mkdir(parents=True)
    (tmp_path / "b" / CONFIG_FILE / "thesis.txt").write_text("precious")
    with pytest.raises(lets_core.BundleError, match="holds files lets_core did not write there"):
        lets_core.save_bundle(_tiny_aux(), tmp_path / "b")
    assert (tmp_path / "b" / CONFIG_FILE / "thesis.txt").read_text() == "precious"


def test_teacher_cache_ignores_the_test_split_and_float_statistics(teacher_run, teacher_dir, monkeypatch):
    """The key held splits.describe(): the images' float mean and std (whose last digits change with
    the thread count, so a torchrun run retrained the teacher) and the test size (which never
    touches training). A reused teacher is scored on this call's test split."""
    _, data, splits, cfg = teacher_run
    _no_training(monkeypatch)
    drifted = dataclasses.replace(splits, mean=(splits.mean[0] + 1e-15,), std=(splits.std[0] * (1 + 1e-15),))
    _, meta = train_teacher(drifted, cfg, teacher_dir)
    assert meta["data"] == drifted.describe()
    fewer = load_splits("fashion-mnist", data, val_size=16, seed=0, test_limit=8)
    model, meta = train_teacher(fewer, cfg, teacher_dir)
    assert meta["data"]["test"] == 8
    assert meta["test_top1"] == evaluate_split(model, fewer)["top1"]


def test_saved_weights_get_the_permissions_of_any_new_file(tmp_path, teacher_dir):
    """safetensors writes its files 0600: weights beside 0644 JSON files were unreadable to the
    other users of a shared folder."""
    old = os.umask(0o022)
    try:
        bundle = lets_core.save_bundle(_tiny_aux(), tmp_path / "b")
        des = lets_core.save_des(lets_core.emit_des(_tiny_aux(), 3, 4), tmp_path / "d")
    finally:
        os.umask(old)
    for path in (bundle / TENSORS_FILE, bundle / CONFIG_FILE, des / DES_WEIGHTS, des / DES_CONFIG):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
    # A teacher's weights are published the same way (umask 022 here too).
    assert stat.S_IMODE((teacher_dir / "model.safetensors").stat().st_mode) == 0o666 & ~old


def test_save_des_names_the_way_back_for_a_model_timm_loaded(tmp_path):
    import timm

    folder = lets_core.save_des(lets_core.emit_des(_tiny_aux(), 3, 4), tmp_path / "d")
    plain = timm.create_model(f"local-dir:{folder}", pretrained=True)
    with pytest.raises(ValueError, match=r"load its folder with lets_core.load_des instead, or copy the weights"):
        lets_core.save_des(plain, tmp_path / "again")
