"""Reliability of the command line, configuration values and data sources (issue 10): every bad
value found by probing fails with one line naming the value and what is allowed, exit code 2,
and never silently changes what runs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import lets_core
from lets_core import cli, info, presets
from lets_core.cli.commands import COMMANDS
from lets_core.config import LearngeneConfig, LetsConfig, TransformConfig
from lets_core.data import DatasetError, load_splits
from lets_core.errors import LetsConfigError
from lets_core.train import TrainConfig


@pytest.fixture(autouse=True)
def _no_reexec(monkeypatch):
    # Training commands re-execute themselves unless an OpenMP wait policy is already set.
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


NORM = lets_core.InputNorm((0.5,), (0.25,))


def _saved_des(folder):
    """An untrained Des-Net saved with a normalization, as training records one (save_des warns otherwise)."""
    aux = lets_core.record_input_norm(lets_core.AuxNet(lets_core.presets.tiny()), NORM)
    return lets_core.save_des(lets_core.emit_des(aux, 2, 2), folder)


def _config(tmp_path, values, name="c.json"):
    path = tmp_path / name
    path.write_text(json.dumps(values))
    return str(path)


def _parse_error(argv, capsys) -> str:
    """argparse's refusal: exit 2, a usage line and one `lets CMD: error: ...` line."""
    with pytest.raises(SystemExit) as exit_info:
        cli.parse(argv)  # not main: a value wrongly accepted must not start a training run
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"lets {argv[0]}: error: " in err and "Traceback" not in err
    return err


def _run_error(argv, capsys) -> str:
    """A refusal by the command itself: exit 2 and exactly one line, no traceback."""
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"lets {argv[0]}: error: ") and err.count("\n") == 1, err
    return err


def _image_folder(root, classes: int, per_class: int = 3, size: int = 28, empty: tuple[str, ...] = ()):
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in range(classes):
        folder = root / f"c{c:02d}"
        folder.mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8)).save(folder / f"{i}.png")
    for name in empty:
        (root / name).mkdir(parents=True)
    return root


# 1. --config FILE values go through the flags' own parsing ------------------------------------

@pytest.mark.parametrize("key", ["resume", "augment", "progress"])
def test_config_switch_given_as_a_string_is_refused(tmp_path, capsys, key):
    # {"resume": "false"} used to be truthy: the run resumed.
    err = _parse_error(["train-teacher", "--config", _config(tmp_path, {key: "false"})], capsys)
    assert f"'{key}' must be true or false (a JSON boolean)" in err and "got 'false'" in err


def test_config_switches_take_json_booleans_with_the_flags_meaning(tmp_path):
    args = cli.parse(["train-teacher", "--config", _config(tmp_path, {"resume": False, "augment": False,
                                                                      "progress": True})])
    assert (args.resume, args.augment, args.progress) == (False, False, True)
    args = cli.parse(["train-teacher", "--config", _config(tmp_path, {"resume": True, "augment": True})])
    assert (args.resume, args.augment) == (True, True)
    args = cli.parse(["train-teacher", "--config", _config(tmp_path, {"num_workers": None})])
    assert args.num_workers is None  # null leaves the default


def test_required_flags_given_in_the_config_file_count(tmp_path, capsys):
    path = _config(tmp_path, {"bundle": str(tmp_path / "nobundle"), "heads": 3, "depth": 2,
                              "out": str(tmp_path / "des")})
    args = cli.parse(["emit", "--config", path])
    assert (args.bundle, args.heads, args.depth) == (str(tmp_path / "nobundle"), 3, 2)
    assert cli.parse(["emit", "--config", path, "--heads", "4"]).heads == 4  # the command line wins
    # it gets as far as reading the bundle, instead of "the following arguments are required"
    err = _run_error(["emit", "--config", path], capsys)
    assert "nobundle" in err and "arguments are required" not in err


@pytest.mark.parametrize("values, message", [
    ({"epochs": "x"}, "'epochs': 'x' is not an integer"),
    ({"epochs": 0}, "'epochs': must be a positive integer, got '0'"),
    ({"epochs": 2.5}, "'epochs': '2.5' is not an integer"),
    ({"batch_size": True}, "'batch_size' must be a number as for --batch-size, got True"),
    ({"amp": "fp8"}, "'amp' must be one of ['auto', 'bf16', 'fp16', 'off'], got 'fp8'"),
    ({"lr": "inf"}, "'lr': must be a finite number, got 'inf'"),
    ({"val_size": float("nan")}, "'val_size': must be a fraction in [0, 1) or a whole count >= 1, got 'nan'"),
    ({"image_size": 0}, "'image_size': must be a positive integer, got '0'"),
    ({"dataset": ["digits"]}, "'dataset' must be a string as for --dataset, got ['digits']"),
])
def test_config_values_are_checked_like_the_flags(tmp_path, capsys, values, message):
    err = _parse_error(["train-teacher", "--config", _config(tmp_path, values)], capsys)
    assert message in err and "c.json" in err


def test_config_file_errors_exit_2_with_the_usage(tmp_path, capsys):
    err = _parse_error(["train-teacher", "--config", _config(tmp_path, {"epochz": 7})], capsys)
    assert "unknown keys ['epochz']" in err and "usage: lets train-teacher" in err
    err = _parse_error(["demo", "--config", _config(tmp_path, [1, 2])], capsys)
    assert "must hold a JSON object" in err
    (tmp_path / "bad.json").write_text("{")
    assert "is not valid JSON" in _parse_error(["demo", "--config", str(tmp_path / "bad.json")], capsys)
    assert "does not exist" in _parse_error(["demo", "--config", str(tmp_path / "none.json")], capsys)


def test_config_lists_and_exclusive_modes(tmp_path):
    path = _config(tmp_path, {"quick": True, "sizes": [[2, 4], "3x6"], "scratch_epochs": [1, 2],
                              "stage1": ["elastic"]})
    args = cli.parse(["demo", "--config", path])
    assert (args.quick, args.sizes, args.scratch_epochs, args.stage1) == (True, [(2, 4), (3, 6)], [1, 2], ["elastic"])
    # --full on the command line wins over the file's --quick instead of clashing with it
    args = cli.parse(["demo", "--config", path, "--full", "--sizes", "4x8"])
    assert (args.quick, args.full, args.sizes) == (False, True, [(4, 8)])
    args = cli.parse(["emit", "--config", _config(tmp_path, {"plan": [0, 2, 4]}), "--bundle", "b", "--heads", "2",
                      "--out", "o"])
    assert args.plan == [0, 2, 4]


# 2. finite and in-range numbers -----------------------------------------------------------------

@pytest.mark.parametrize("argv, message", [
    (["train-teacher", "--val-size", "nan"], "argument --val-size: must be a fraction in [0, 1) or a whole count"),
    (["train-teacher", "--val-size", "1.5"], "got '1.5'"),
    (["emit", "--bundle", "b", "--heads", "2", "--out", "o", "--drop-path", "nan"],
     "argument --drop-path: must be a number in [0, 1), got 'nan'"),
    (["finetune", "--scratch", "--drop-path", "2"], "argument --drop-path: must be a number in [0, 1), got '2'"),
    (["train-aux", "--drop-path", "-1"], "argument --drop-path: must be a number in [0, 1), got '-1'"),
    (["train-teacher", "--image-size", "0"], "argument --image-size: must be a positive integer, got '0'"),
    (["evaluate", "--des", "d", "--image-size", "-3"], "argument --image-size: must be a positive integer"),
    (["train-teacher", "--lr", "inf"], "argument --lr: must be a finite number, got 'inf'"),
    (["train-teacher", "--weight-decay", "nan"], "argument --weight-decay: must be a finite number, got 'nan'"),
    (["train-aux", "--tau", "inf"], "argument --tau: must be a finite number, got 'inf'"),
    (["train-aux", "--warmup-epochs", "nan"], "argument --warmup-epochs: must be a finite number, got 'nan'"),
    (["train-teacher", "--label-smoothing", "nan"], "argument --label-smoothing: must be a finite number"),
    (["demo", "--alpha", "nan"], "argument --alpha: must be a finite number, got 'nan'"),
    (["train-aux", "--elastic-weight", "inf"], "argument --elastic-weight: must be a finite number"),
    (["train-teacher", "--num-workers", "-1"], "argument --num-workers: must be an integer >= 0, got '-1'"),
    (["train-teacher", "--train-limit", "0"], "argument --train-limit: must be a positive integer, got '0'"),
])
def test_non_finite_or_out_of_range_flags_are_refused(argv, message, capsys):
    assert message in _parse_error(argv, capsys)


@pytest.mark.parametrize("name, bad", [
    ("lr", float("inf")), ("weight_decay", float("nan")), ("tau", float("inf")), ("warmup_epochs", float("nan")),
    ("label_smoothing", float("nan")), ("label_smoothing", 1.0), ("num_workers", -1), ("augment", "false"),
    ("progress", "false"), ("seed", 1.5),
])
def test_train_config_refuses_non_finite_and_mistyped_values(name, bad):
    with pytest.raises(ValueError, match=rf"TrainConfig\.{name} must .* got {bad!r}"):
        TrainConfig(**{name: bad})


def test_model_config_floats_are_finite_and_bounded():
    for rate in (float("nan"), float("inf"), -0.1, 1.0, True):
        with pytest.raises(LetsConfigError, match=rf"drop_path_rate must be in \[0, 1\), got {rate!r}"):
            LetsConfig(drop_path_rate=rate)
    # 1e308 is finite but its G normalization overflows to NaN
    with pytest.raises(LetsConfigError, match=r"TransformConfig.g_noise must be at most 1.0, got 1e\+308"):
        TransformConfig(g_noise=1e308)
    with pytest.raises(LetsConfigError, match=r"TransformConfig.f_noise must be at most 1.0, got 5.0"):
        TransformConfig(f_init="net2net", f_noise=5.0)
    assert TransformConfig(g_noise=1.0).g_noise == 1.0


# 3. LetsConfig from JSON: LetsConfigError, not TypeError / AttributeError / OverflowError -------

@pytest.mark.parametrize("text, message", [
    ("[1]", r"LetsConfig must be a JSON object .* got \[1\]"),
    ("5", r"LetsConfig must be a JSON object .* got 5"),
    ("{", r"not valid JSON"),
    (b"\xff\xfe\x00binary", r"not valid JSON"),
    ('{"learngene": 5}', r"learngene must be a JSON object .* got 5"),
    ('{"transform": [1, 2]}', r"transform must be a JSON object .* got \[1, 2\]"),
])
def test_lets_config_from_json_names_the_bad_value(text, message):
    with pytest.raises(LetsConfigError, match=message):
        LetsConfig.from_json(text)


def test_lets_config_from_dict_and_mlp_ratio():
    data = presets.tiny().to_dict()
    data["learngene"] = 5
    with pytest.raises(LetsConfigError, match=r"learngene must be a JSON object .* got 5"):
        LetsConfig.from_dict(data)
    with pytest.raises(LetsConfigError, match=r"mlp_ratio must be a finite number > 0, got inf"):
        LearngeneConfig(mlp_ratio=float("inf"))
    with pytest.raises(LetsConfigError, match=r"mlp_ratio must be a finite number > 0, got nan"):
        LearngeneConfig(mlp_ratio=float("nan"))


def test_a_bad_model_config_file_is_one_line(tmp_path, capsys):
    path = tmp_path / "m.json"
    path.write_text("[1]")
    err = _run_error(["finetune", "--scratch", "--heads", "2", "--depth", "2", "--model-config", str(path),
                      "--out", str(tmp_path / "o")], capsys)
    assert "LetsConfig must be a JSON object" in err


# 4. data: degenerate image folders, and data that does not fit the model ------------------------

def test_image_folders_with_one_class_or_empty_classes_are_refused(tmp_path):
    one = _image_folder(tmp_path / "one", classes=1, per_class=10)
    with pytest.raises(DatasetError, match=r"has 1 class folder\(s\) \['c00'\]; a classifier needs at least 2"):
        load_splits("folder", one, image_size=8)
    hollow = _image_folder(tmp_path / "hollow", classes=3, per_class=5, empty=("zz-empty",))
    with pytest.raises(DatasetError, match=r"class folders \['zz-empty'\] .* hold no images"):
        load_splits("folder", hollow, image_size=8)
    # a test folder must have images of every training class too
    split = tmp_path / "split"
    _image_folder(split / "train", classes=3, per_class=5)
    _image_folder(split / "test", classes=2, per_class=2, empty=("c02",))
    with pytest.raises(DatasetError, match=r"\['c02'\] .* hold no images"):
        load_splits("folder", split, image_size=8)


def test_load_splits_refuses_bad_sizes(tmp_path):
    folder = _image_folder(tmp_path / "f", classes=2, per_class=5)
    with pytest.raises(DatasetError, match=r"val_size must be a fraction in \[0, 1\) or a count >= 0, got nan"):
        load_splits("folder", folder, image_size=8, val_size=float("nan"))
    with pytest.raises(DatasetError, match=r"image_size must be a positive integer or None, got 0"):
        load_splits("folder", folder, image_size=0)
    with pytest.raises(DatasetError, match=r"train_limit must be a positive integer or None, got '5'"):
        load_splits("folder", folder, image_size=8, train_limit="5")


@pytest.fixture()
def des_10_classes(tmp_path):
    from lets_core.des import save_des
    from lets_core.train import scratch_des

    path = tmp_path / "des"
    # 10 classes, 1 x 28 x 28; with a normalization, as training records one (save_des warns otherwise)
    save_des(lets_core.record_input_norm(scratch_des(presets.tiny(), 2, 2), NORM), path)
    return str(path)


def test_data_with_other_classes_than_the_model_is_named(tmp_path, capsys, des_10_classes):
    data = str(_image_folder(tmp_path / "twelve", classes=12))
    err = _run_error(["evaluate", "--des", des_10_classes, "--dataset", "folder", "--data-dir", data], capsys)
    assert "takes 10 classes but the data has 12 classes" in err  # was an IndexError traceback
    err = _run_error(["evaluate", "--des", des_10_classes, "--dataset", "folder", "--data-dir", data,
                      "--channels", "3", "--image-size", "14"], capsys)
    assert "takes 10 classes, 1 channels, 28 px images but the data has 12 classes, 3 channels, 14 px images" in err
    err = _run_error(["finetune", "--des", des_10_classes, "--dataset", "folder", "--data-dir", data,
                      "--out", str(tmp_path / "ft"), "--epochs", "1", "--no-progress"], capsys)
    assert "takes 10 classes but the data has 12 classes" in err
    ten = str(_image_folder(tmp_path / "ten", classes=10))
    assert cli.main(["evaluate", "--des", des_10_classes, "--dataset", "folder", "--data-dir", ten, "--json"]) == 0


# 5. teachers: a wrong path says so; evaluate takes a checkpoint file with --teacher-arch ---------

def test_missing_teacher_says_it_does_not_exist(tmp_path, capsys):
    missing = str(tmp_path / "nonexistent")
    err = _run_error(["evaluate", "--teacher", missing, "--dataset", "digits"], capsys)
    assert f"--teacher {missing!r} does not exist" in err
    err = _run_error(["train-aux", "--teacher", missing, "--dataset", "digits", "--out", str(tmp_path / "a")], capsys)
    assert f"--teacher {missing!r} does not exist" in err


def test_teacher_folder_with_a_damaged_teacher_json(tmp_path, capsys):
    folder = tmp_path / "teacher"
    folder.mkdir()
    (folder / "teacher.json").write_text(json.dumps({"arch": "lets-resnet-small", "num_classes": 10}))
    err = _run_error(["evaluate", "--teacher", str(folder), "--dataset", "digits"], capsys)
    assert "lacks ['in_chans', 'img_size']" in err
    (folder / "teacher.json").write_text("[]")
    assert "lacks" in _run_error(["evaluate", "--teacher", str(folder), "--dataset", "digits"], capsys)
    (folder / "teacher.json").write_text(json.dumps({"arch": "lets-resnet-small", "num_classes": 10,
                                                     "in_chans": 1, "img_size": 8}))
    err = _run_error(["evaluate", "--teacher", str(folder), "--teacher-arch", "resnet18", "--dataset", "digits"],
                     capsys)
    assert "--teacher-arch 'resnet18' contradicts the teacher folder's architecture 'lets-resnet-small'" in err


def test_evaluate_a_teacher_checkpoint_file_with_teacher_arch(tmp_path, capsys):
    from safetensors.torch import save_file

    from lets_core.train import build_teacher

    data = str(_image_folder(tmp_path / "three", classes=3, size=16))
    torch.manual_seed(0)
    teacher = build_teacher("lets-resnet-small", num_classes=3, in_chans=1, img_size=16)
    file = tmp_path / "teacher.safetensors"
    save_file(teacher.state_dict(), str(file))
    common = ["--dataset", "folder", "--data-dir", data, "--channels", "1", "--image-size", "16"]
    err = _run_error(["evaluate", "--teacher", str(file), *common], capsys)
    assert "is a checkpoint file: pass its timm architecture with --teacher-arch" in err
    assert cli.main(["evaluate", "--teacher", str(file), "--teacher-arch", "lets-resnet-small", "--json",
                     *common]) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert 0 <= metrics["top1"] <= 1 and metrics["count"] > 0


# 6. info and list-valued flags -----------------------------------------------------------------

def test_info_refuses_unknown_arguments(capsys):
    with pytest.raises(SystemExit) as exit_info:
        info.main(["--bogus"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "usage: python -m lets_core.info" in err and "unrecognized arguments: --bogus" in err


@pytest.mark.parametrize("argv, message", [
    (["demo", "--scratch-epochs", "a,b"],
     "argument --scratch-epochs: item 'a' of 'a,b' is not valid; expected comma-separated positive integers"),
    (["demo", "--scratch-epochs", "1,0"], "item '0' of '1,0' is not valid"),
    (["demo", "--sizes", "2x4,3"], "argument --sizes: item '3' of '2x4,3' is not valid; expected comma-separated "
     "HEADSxDEPTH"),
    (["demo", "--sizes", "2x4,"], "item '' of '2x4,' is not valid"),
    (["demo", "--stage1", "paper,bogus"], "argument --stage1: item 'bogus' of 'paper,bogus' is not valid; expected "
     "comma-separated names among ['paper', 'elastic']"),
    (["emit", "--bundle", "b", "--heads", "2", "--out", "o", "--plan", "0,-2"],
     "argument --plan: item '-2' of '0,-2' is not valid; expected comma-separated Aux layer indices"),
])
def test_list_flags_name_the_bad_item_and_the_form(argv, message, capsys):
    assert message in _parse_error(argv, capsys)


def test_list_flags_parse():
    args = cli.parse(["demo", "--sizes", "2x4, H3xL6", "--scratch-epochs", "1,2,4", "--stage1", "elastic"])
    assert (args.sizes, args.scratch_epochs, args.stage1) == ([(2, 4), (3, 6)], [1, 2, 4], ["elastic"])


# 7. whatever the command raises for bad input is one line with exit code 2 ----------------------

@pytest.mark.parametrize("exc, line", [
    (PermissionError(13, "Permission denied", "/root/x"), "lets info: error: '/root/x': permission denied\n"),
    (IsADirectoryError(21, "Is a directory", "/tmp"), "lets info: error: '/tmp': is a directory\n"),
    (LetsConfigError("bad\nvalue 3"), "lets info: error: bad value 3\n"),
])
def test_user_errors_are_one_line(monkeypatch, capsys, exc, line):
    def fail(args):
        raise exc

    monkeypatch.setitem(COMMANDS, "info", COMMANDS["info"]._replace(run=fail))
    assert cli.main(["info"]) == 2
    assert capsys.readouterr().err == line


def test_error_classes_are_covered_by_main():
    from lets_core.errors import BundleError
    from lets_core.train.checkpoint import CheckpointError

    for kind in (LetsConfigError, BundleError, CheckpointError, DatasetError):
        assert issubclass(kind, ValueError)


def test_evaluate_on_an_empty_split_is_refused(tmp_path, capsys):
    """It used to print top-1 0 and loss 0 over 0 images and exit 0 (also with --json)."""
    des = _saved_des(tmp_path / "d")
    err = _run_error(["evaluate", "--des", str(des), "--dataset", "digits", "--split", "val", "--val-size", "0",
                      "--json"], capsys)
    assert "the 'val' split of digits has no images" in err and "--val-size" in err


def test_seed_out_of_range_is_named(capsys):
    err = _parse_error(["finetune", "--scratch", "--heads", "2", "--depth", "2", "--seed", "99999999999999999999999"],
                       capsys)
    assert "--seed: must be an integer in [0, 2**63 - 1]" in err
    err = _parse_error(["demo", "--seed", "-1"], capsys)
    assert "--seed: must be an integer in [0, 2**63 - 1], got '-1'" in err


def test_image_folder_that_is_a_file_is_named_as_such(tmp_path, capsys):
    des = _saved_des(tmp_path / "d")
    (tmp_path / "afile").write_text("x")
    err = _run_error(["evaluate", "--des", str(des), "--dataset", "folder", "--data-dir", str(tmp_path / "afile")],
                     capsys)
    assert "afile' is a file, not a folder" in err


def test_elastic_values_without_elastic_are_refused(capsys):
    """They were dropped without a word: the run trained the paper's stage 1."""
    err = _run_error(["train-aux", "--dataset", "digits", "--alpha", "0", "--elastic-random", "3",
                      "--elastic-weight", "5"], capsys)
    assert "--elastic-random, --elastic-weight only apply to elastic stage 1: add --elastic" in err


def test_demo_elastic_flags_without_the_elastic_variant_are_refused_and_a_bad_one_keeps_the_report(tmp_path, capsys):
    """--stage1 paper took --elastic-* values, recorded them and used none; --elastic-weight 0 was
    refused only after the earlier run's report had been removed."""
    err = _run_error(["demo", "--stage1", "paper", "--elastic-target", "aux", "--out", str(tmp_path)], capsys)
    assert "--elastic-target applies only to the elastic stage 1, which --stage1 paper does not run" in err
    err = _run_error(["demo", "--full", "--stage1", "paper", "--elastic-random", "2", "--elastic-weight", "2",
                      "--out", str(tmp_path)], capsys)
    assert "--elastic-random, --elastic-weight apply only to the elastic stage 1" in err
    (tmp_path / "report.json").write_text("{}")
    err = _run_error(["demo", "--elastic-weight", "0", "--out", str(tmp_path)], capsys)
    assert "DemoConfig.elastic_weight must be a finite number > 0, got 0.0" in err
    assert (tmp_path / "report.json").read_text() == "{}"


def test_train_aux_names_the_elastic_flag_of_a_bad_size_before_reading_data(tmp_path, capsys):
    """Caught only after the data was loaded, and named by ElasticConfig's field, not the flag."""
    missing = str(tmp_path / "no-such-folder")  # read first, it would be the error
    base = ["train-aux", "--dataset", "folder", "--data-dir", missing, "--alpha", "0", "--elastic",
            "--elastic-target", "aux", "--out", str(tmp_path / "a")]
    err = _run_error([*base, "--elastic-min-heads", "9"], capsys)
    assert "--elastic-min-heads 9: ElasticConfig.min_heads=9 cannot be emitted" in err and "heads must be in [2, 4]" in err
    err = _run_error([*base, "--elastic-min-depth", "9", "--elastic-max-depth", "3"], capsys)
    assert "--elastic-min-depth 9, --elastic-max-depth 3: ElasticConfig.min_depth 9 must be <= max_depth 3" in err
    err = _run_error([*base, "--elastic-max-depth", "1"], capsys)
    assert "--elastic-max-depth 1: ElasticConfig depths give an empty range" in err


def test_an_elastic_target_that_distills_needs_the_teacher_even_at_alpha_0(tmp_path, capsys):
    """With --alpha 0 the teacher was never loaded, so a given --teacher was reported missing."""
    err = _run_error(["train-aux", "--dataset", "digits", "--alpha", "0", "--elastic", "--out", str(tmp_path / "a")],
                     capsys)
    assert "--elastic-target teacher distills from a teacher: pass --teacher" in err
    err = _run_error(["train-aux", "--dataset", "digits", "--alpha", "0", "--elastic", "--teacher",
                      str(tmp_path / "missing"), "--out", str(tmp_path / "a")], capsys)
    assert "missing" in err and "distills from a teacher: pass --teacher" not in err  # the teacher is read


def test_emit_defaults_to_the_strategy_an_elastic_bundle_was_trained_with(tmp_path, capsys):
    """lets emit ignored bundle.json's record and emitted with 'continuous': other neurons than the
    ones elastic stage 1 trained as Des-Nets."""
    from lets_core.elastic import ElasticConfig
    training = {"elastic": ElasticConfig(strategy="top-l2", target="aux").to_dict()}
    aux = lets_core.record_input_norm(lets_core.AuxNet(lets_core.presets.tiny()), NORM)
    bundle = lets_core.save_bundle(aux, tmp_path / "b", training=training)
    args = ["emit", "--bundle", str(bundle), "--heads", "3", "--depth", "4", "--out", str(tmp_path / "d")]
    assert cli.main(args) == 0
    assert "strategy top-l2" in capsys.readouterr().out
    assert cli.main([*args, "--strategy", "continuous"]) == 0
    captured = capsys.readouterr()
    assert "strategy continuous" in captured.out and "trained elastically with strategy 'top-l2'" in captured.err
    assert "StrategyWarning" not in captured.err  # the command's note says it once, not the library's warning too


def test_info_json_is_one_document(capsys):
    """It printed two or three JSON objects in a row, which json.load refuses."""
    assert cli.main(["info", "--json", "--preset", "tiny"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert {"torch", "extension", "preset"} <= set(document) and document["preset"]["aux_depth"] == 8


def test_evaluate_checks_its_seed_and_refuses_a_teacher_arch_it_would_ignore(tmp_path, capsys):
    err = _parse_error(["evaluate", "--des", "d", "--seed", "-1"], capsys)
    assert "--seed: must be an integer in [0, 2**63 - 1], got '-1'" in err
    des = _saved_des(tmp_path / "d")
    err = _run_error(["evaluate", "--des", str(des), "--teacher-arch", "resnet18", "--dataset", "digits"], capsys)
    assert "--teacher-arch describes a --teacher checkpoint file" in err


def test_train_aux_loads_a_teacher_checkpoint_file(tmp_path, capsys):
    """A checkpoint file with --teacher-arch was never loaded: the run failed with "distills from a
    teacher, but none was given" although one was given."""
    from safetensors.torch import save_file
    from train_helpers import fake_fashion_mnist

    from lets_core.train.teacher import SMALL_RESNET, build_teacher

    teacher = build_teacher(SMALL_RESNET, num_classes=10, in_chans=1, img_size=28)
    save_file(teacher.state_dict(), str(tmp_path / "teacher.safetensors"))
    common = ["--data-dir", str(fake_fashion_mnist(tmp_path / "fm")), "--val-size", "16", "--batch-size", "16",
              "--no-progress", "--num-workers", "0", "--epochs", "1", "--warmup-epochs", "0.5"]
    assert cli.main(["train-aux", "--teacher", str(tmp_path / "teacher.safetensors"), "--teacher-arch", SMALL_RESNET,
                     "--out", str(tmp_path / "aux"), *common]) == 0
    # A teacher nothing distills from is refused, not ignored.
    err = _run_error(["train-aux", "--teacher", str(tmp_path / "teacher.safetensors"), "--alpha", "0",
                      "--out", str(tmp_path / "aux0"), *common], capsys)
    assert "--teacher is not used: --alpha 0" in err


def test_finetune_refuses_flags_its_source_does_not_use(tmp_path, capsys):
    """`finetune --des` trained the saved size whatever --heads/--depth/--strategy/--plan/--preset
    said, and without stochastic depth whatever --drop-path said, exiting 0."""
    des = str(_saved_des(tmp_path / "d"))
    out = ["--out", str(tmp_path / "run"), "--dataset", "digits"]
    err = _run_error(["finetune", "--des", des, "--heads", "4", *out], capsys)
    assert "--heads does not apply to --des: it fine-tunes the saved Des-Net as it is" in err
    err = _run_error(["finetune", "--des", des, "--strategy", "top-l2", "--plan", "0,1", "--preset", "paper", *out], capsys)
    assert "--strategy, --plan, --preset do not apply to --des" in err
    bundle = lets_core.save_bundle(lets_core.record_input_norm(lets_core.AuxNet(presets.tiny()), NORM), tmp_path / "b")
    err = _run_error(["finetune", "--bundle", str(bundle), "--heads", "3", "--preset", "tiny", *out], capsys)
    assert "--preset does not apply to --bundle: the bundle holds its model configuration" in err
    err = _run_error(["finetune", "--scratch", "--heads", "2", "--depth", "2", "--plan", "0,1", *out], capsys)
    assert "--plan does not apply to --scratch" in err
    config = _config(tmp_path, presets.tiny().to_dict(), "model.json")
    err = _run_error(["finetune", "--scratch", "--heads", "2", "--depth", "2", "--preset", "tiny", "--model-config",
                      config, *out], capsys)
    assert "--preset tiny and --model-config both describe the model; give one" in err


def test_load_des_sets_the_stochastic_depth_to_fine_tune_with(tmp_path):
    folder = _saved_des(tmp_path / "d")
    saved = lets_core.load_des(folder)
    tuned = lets_core.load_des(folder, drop_path_rate=0.3)
    assert saved.lets_model_args["drop_path_rate"] == 0.0 and tuned.lets_model_args["drop_path_rate"] == 0.3
    assert tuned.blocks[-1].drop_path1.drop_prob == pytest.approx(0.3)  # timm's linear schedule ends at the rate
    x = torch.randn(2, 1, 28, 28)
    torch.testing.assert_close(tuned(x), saved(x), rtol=0, atol=0)  # the same weights: eval ignores drop-path
    with pytest.raises(ValueError, match="drop_path_rate must be a number in"):
        lets_core.load_des(folder, drop_path_rate=1.0)


def test_train_aux_refuses_loss_settings_its_loss_does_not_use(capsys):
    """--label-smoothing at --alpha 1 and --tau at --alpha 0 trained bit-identical weights."""
    err = _run_error(["train-aux", "--dataset", "digits", "--label-smoothing", "0.1"], capsys)
    assert "--label-smoothing 0.1 smooths the labels of the cross-entropy term, which --alpha 1 weighs 0" in err
    err = _run_error(["train-aux", "--dataset", "digits", "--alpha", "0", "--tau", "4"], capsys)
    assert "--tau 4 is the distillation temperature, and --alpha 0 without --elastic distills nothing" in err
