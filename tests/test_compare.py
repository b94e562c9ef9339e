"""`lets compare` through the Python API: every method end to end on a tiny dataset, the report's
files, caching of finished work, and clear errors for bad settings."""

from __future__ import annotations

import json

import pytest
from train_helpers import fake_fashion_mnist

from lets_core import _extension
from lets_core.baselines import METHODS
from lets_core.compare import METHOD_NAMES, CompareConfig, run_compare
from lets_core.train.checkpoint import CheckpointError


def _config(tmp_path, **overrides) -> CompareConfig:
    base = dict(dataset="fashion-mnist", data_dir=str(fake_fashion_mnist(tmp_path / "fm", n_train=160)),
                val_size=32, sizes=[(2, 4), (4, 8)], tune_epochs=[0, 1], teacher_epochs=1, stage1_epochs=1,
                batch_size=32, out=str(tmp_path / "cmp"), progress=False)
    return CompareConfig(**{**base, **overrides})


def test_every_method_runs_end_to_end_and_the_report_is_written(tmp_path):
    cfg = _config(tmp_path)
    report = run_compare(cfg)
    assert set(report["methods"]) == set(METHOD_NAMES) == {"lets", "lets-elastic", *METHODS}
    for size, methods in report["results"].items():
        heads = report["sizes"][size]["heads"]
        expected = set(METHOD_NAMES) - ({"tleg", "sws"} if heads != 4 else set())  # Aux width only
        assert set(methods) == expected, size
        for r in methods.values():
            assert set(r["top1_by_epochs"]) == {"0", "1"}
            assert all(0.0 <= v <= 1.0 for v in r["top1_by_epochs"].values())
    assert report["methods"]["scratch"]["stored_parameters"] == 0
    assert report["methods"]["lets"]["stored_parameters"] < report["methods"]["pre-fin"]["stored_parameters"]
    out = tmp_path / "cmp"
    assert json.loads((out / "compare.json").read_text())["results"] == report["results"]
    text = (out / "compare.md").read_text()
    assert "| H2-L4 | lets-elastic |" in text and "stored parameters" in text
    kernels = "compiled" if _extension.STATE.loaded else "reference"
    assert report["environment"]["lets_core_kernels"] == kernels and f", {kernels} lets_core kernels" in text
    # TLEG and SWS make only the Aux width: the cost table says how many sizes each row covers.
    assert "| tleg | 1 of 2 |" in text and "| sws | 1 of 2 |" in text and "| lets | 2 of 2 |" in text
    assert (out / "compare.png").stat().st_size > 10_000

    # A second run with the same --out reuses every finished stage 1 and tuning run.
    again = run_compare(_config(tmp_path, methods=["lets", "imwlm"]))
    for name in ("lets", "imwlm"):
        assert again["methods"][name]["stage1_history"] == report["methods"][name]["stage1_history"]
        # The cost table reports what the reused stage 1 cost when it was trained, not this run's load.
        assert again["methods"][name]["stage1_seconds"] == report["methods"][name]["stage1_seconds"] > 0
        for size in again["results"]:
            assert again["results"][size][name]["top1_by_epochs"] == report["results"][size][name]["top1_by_epochs"]
    # Another strategy emits other Des-Nets: resuming the first run's tuned ones is refused (it
    # reported them as the new strategy's).
    with pytest.raises(CheckpointError, match="starting model's strategy: checkpoint 'continuous' vs now 'top-l2'"):
        run_compare(_config(tmp_path, methods=["lets"], strategy="top-l2"))


@pytest.mark.parametrize("overrides, message", [
    (dict(methods=["lets", "bogus"]), "methods must be a non-empty list of"),
    (dict(methods=[]), "methods must be a non-empty list of"),
    (dict(tune_epochs=[1, -1]), "tune_epochs must be a non-empty list of integers >= 0"),
    (dict(tune_epochs=[1.5]), "tune_epochs must be a non-empty list of integers >= 0"),
    (dict(dataset="imagenet"), "dataset must be one of"),
    (dict(dataset="folder", data_dir=None), "needs data_dir"),
    (dict(sizes=[]), "at least one Des-Net size"),
    # checked up front: it used to fail in the report, after every training had run
    (dict(sizes=[(2, 4), (9, 4)]), "heads=9 gives no valid width"),
    (dict(sizes=[(2, 0)]), "depth must be an integer >= 1, got 0"),
    # it used to train the teacher and TLEG's stage 1, then print an empty table and exit 0
    (dict(methods=["lets", "tleg"], sizes=[(2, 4)]), "method 'tleg' can make none of the sizes 2x4"),
    # the Python API has no argparse choices: emit_des refused it only after every stage 1
    (dict(strategy="top-L2"), "strategy must be one of"),
    (dict(stage1_epochs=0), "CompareConfig.stage1_epochs must be an integer >= 1, got 0"),
    (dict(learngene_width=40), "learngene_width must be a multiple of the head width 16 from 16 to the Aux-Net's "
                               "width 64, got 40"),
    (dict(learngene_width=80), "learngene_width must be a multiple of the head width 16"),
    (dict(learngene_width=True), "learngene_width must be a multiple of the head width 16"),
    # a 48-wide learngene makes 3 and 4 heads only: refused before any training, naming the width
    (dict(learngene_width=48), "size 2x4 cannot be made from a learngene of width 48"),
])
def test_bad_settings_are_named(tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        _config(tmp_path, **overrides)


@pytest.mark.parametrize("overrides, message", [
    (dict(tune_lrs=[]), "tune_lrs must be a non-empty list of positive finite numbers"),
    (dict(tune_lrs=[1e-2, 0.0]), "tune_lrs must be a non-empty list of positive finite numbers"),
    (dict(tune_lrs=[float("nan")]), "tune_lrs must be a non-empty list of positive finite numbers"),
    (dict(tune_lrs="0.01"), "tune_lrs must be a non-empty list of positive finite numbers"),
    # a grid is chosen on validation: without validation images it would pick on nothing
    (dict(tune_lrs=[1e-2, 4e-3], val_size=0), "val_size is 0"),
])
def test_bad_tuning_lrs_are_named(tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        _config(tmp_path, **overrides)


def test_a_tuning_lr_grid_keeps_the_run_best_on_validation(tmp_path):
    """Every tuned cell is tuned at each lr; the kept lr is the best validation top-1 (the first on
    a tie), and the test top-1 reported is that run's own."""
    grid = [3e-2, 1e-4]
    cfg = _config(tmp_path, methods=["lets", "scratch"], sizes=[(2, 4)], tune_lrs=grid)
    report = run_compare(cfg)
    assert report["config"]["tune_lrs"] == grid
    for method, r in report["results"]["2x4"].items():
        scores = r["val_top1_by_epochs"]["1"]
        assert set(scores) == {"0.03", "0.0001"}
        best = max(scores.values())
        assert r["tune_lr_by_epochs"]["1"] == next(lr for lr in grid if scores[f"{lr:g}"] == best), method
    text = (tmp_path / "cmp" / "compare.md").read_text()
    assert "chosen among 0.03, 0.0001 on the validation split" in text and "Tuning lr kept" in text
    # Each lr's run is cached under its own name: rerunning with the kept lr alone resumes that
    # run, and its test top-1 is the one the search reported.
    for method, r in report["results"]["2x4"].items():
        alone = run_compare(_config(tmp_path, methods=[method], sizes=[(2, 4)], tune_lrs=[r["tune_lr_by_epochs"]["1"]]))
        assert alone["results"]["2x4"][method]["top1_by_epochs"] == r["top1_by_epochs"], method
        assert "val_top1_by_epochs" not in alone["results"]["2x4"][method]


def test_lets_ligo_emits_with_the_runs_strategy(tmp_path, monkeypatch):
    """LeTs(LiGO) selects neurons as LeTs does: `--strategy` reaches it (it always emitted with
    'continuous' while LeTs used the strategy asked for)."""
    from lets_core.baselines import ligo

    seen = []

    def spy(aux, heads, depth, **options):
        seen.append(options["strategy"])
        return emit_des(aux, heads, depth, **options)

    emit_des = ligo.emit_des
    monkeypatch.setattr(ligo, "emit_des", spy)
    run_compare(_config(tmp_path, methods=["lets-ligo"], sizes=[(2, 4)], tune_epochs=[0], strategy="top-l2"))
    assert seen == ["top-l2"]


def test_aliases_name_the_same_method(tmp_path):
    assert _config(tmp_path, methods=["weight-selection", "imwlm", "lets"]).methods == ["imwlm", "lets"]


def test_lets_compare_command_line(tmp_path, monkeypatch, capsys):
    from lets_core import cli

    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")  # no re-execution of the test process
    data = fake_fashion_mnist(tmp_path / "fm", n_train=320)  # --quick holds out 200 for validation
    out = tmp_path / "cli"
    code = cli.main(["compare", "--quick", "--dataset", "fashion-mnist", "--data-dir", str(data), "--methods",
                     "lets,imwlm", "--sizes", "2x4", "--tune-epochs", "0,1",
                     "--train-limit", "96", "--batch-size", "32", "--out", str(out), "--no-progress"])
    assert code == 0
    report = json.loads((out / "compare.json").read_text())
    assert list(report["methods"]) == ["lets", "imwlm"] and list(report["results"]) == ["2x4"]
    assert report["config"]["tune_lrs"] == [1.6e-2]  # the default: one lr, so no search
    assert "| H2-L4 | lets |" in capsys.readouterr().out


def test_the_tune_lr_flag_gives_one_lr_or_a_grid(monkeypatch):
    from lets_core import cli
    from lets_core.cli.commands import compare as command

    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")  # no re-execution of the test process
    seen = []
    monkeypatch.setattr(command, "run_compare", lambda cfg, env: seen.append(cfg))
    for value, grid in (("4e-3", [4e-3]), ("1.6e-2, 4e-3,1e-3", [1.6e-2, 4e-3, 1e-3])):
        assert cli.main(["compare", "--tune-lr", value, "--no-progress"]) == 0
        assert seen.pop().tune_lrs == grid


@pytest.mark.parametrize("argv, message", [
    (["compare", "--methods", "lets,bogus"], "item 'bogus'"),
    (["compare", "--tune-epochs", "0,-1"], "item '-1'"),
    (["compare", "--sizes", "2x"], "item '2x'"),
    (["compare", "--tune-lr", "1e-2,0"], "item '0'"),
    (["compare", "--tune-lr", "1e-2,nan"], "item 'nan'"),
])
def test_lets_compare_flags_name_the_bad_item(argv, message, capsys):
    from lets_core import cli

    with pytest.raises(SystemExit) as exit_info:
        cli.parse(argv)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_compare_runs_on_an_image_folder_with_its_own_classes(tmp_path, monkeypatch):
    import numpy as np
    from PIL import Image

    from lets_core import cli

    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    rng = np.random.default_rng(0)
    for c, cls in enumerate(("ant", "bee", "cow")):  # 3 classes, colour images of another size
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        for i in range(40):
            img = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
            img[:6, :6] = 80 * c
            Image.fromarray(img).save(tmp_path / "imgs" / cls / f"{i}.png")
    out = tmp_path / "cmp"
    argv = ["compare", "--dataset", "folder", "--data-dir", str(tmp_path / "imgs"), "--methods", "lets,nested",
            "--sizes", "2x4", "--tune-epochs", "0,1", "--teacher-epochs", "1", "--stage1-epochs", "1",
            "--batch-size", "16", "--val-size", "0.2", "--out", str(out), "--no-progress"]
    assert cli.main(argv) == 0
    report = json.loads((out / "compare.json").read_text())
    assert report["dataset"]["dataset"] == "folder" and report["dataset"]["num_classes"] == 3
    assert report["model_config"]["learngene"]["num_classes"] == 3
    assert set(report["results"]["2x4"]) == {"lets", "nested"}


def test_the_reading_says_why_nothing_is_compared():
    """With LeTs as the only method the reading said "No LeTs method was run."."""
    from lets_core.compare_report import reading

    base = {"config": {"tune_epochs": [0, 1]}, "results": {"2x4": {}}}
    assert reading(dict(base, methods={"lets": {}})) == [
        "- No other method ran at a LeTs size, so there is nothing to compare LeTs against."]
    assert reading(dict(base, methods={"scratch": {}})) == ["- No LeTs method was run."]


def _report(scores: dict[str, dict[str, dict[str, float]]], tune_epochs=(0, 1)) -> dict:
    """A compare report with the given top-1 per size, method and tuning length."""
    sizes = {s: {"heads": int(s[0]), "depth": int(s[2:]), "params": 1000 * int(s[0])} for s in scores}
    methods = sorted({m for by_method in scores.values() for m in by_method})
    return {"config": {"tune_epochs": list(tune_epochs)}, "sizes": sizes, "dataset": {"dataset": "fashion-mnist"},
            "methods": {m: {} for m in methods},
            "results": {s: {m: {"top1_by_epochs": v} for m, v in by_method.items()} for s, by_method in scores.items()}}


def test_ties_are_level_and_every_tied_best_is_bold():
    """A tie counted as "ahead" in the reading, and only the first of two tied best methods was bold."""
    from lets_core.compare_report import reading, top1_lines

    report = _report({"2x4": {"lets": {"0": 0.1, "1": 0.5}, "imwlm": {"0": 0.2, "1": 0.5}},
                      "4x8": {"lets": {"0": 0.1, "1": 0.4}, "imwlm": {"0": 0.2, "1": 0.6}},
                      "3x6": {"lets": {"0": 0.1, "1": 0.7}, "imwlm": {"0": 0.2, "1": 0.6}}})
    assert reading(report) == ["- lets + 1 ep against imwlm + 1 ep: ahead at 1, level at 1, behind at 1 of 3 sizes "
                               "(points: H2-L4 +0.0, H4-L8 -20.0, H3-L6 +10.0)."]
    table = top1_lines(report)
    assert "| H2-L4 | lets | 10.00 | **50.00** |" in table and "| H2-L4 | imwlm | **20.00** | **50.00** |" in table


def test_the_plot_needs_no_direct_column(tmp_path):
    """`--tune-epochs 1` trained everything, then failed drawing the direct panel (KeyError '0')."""
    from lets_core.compare_report import plot

    plot(_report({"2x4": {"lets": {"1": 0.5}, "scratch": {"1": 0.4}}}, tune_epochs=(1,)), tmp_path / "c.png")
    assert (tmp_path / "c.png").stat().st_size > 1000


def test_only_methods_that_run_the_teacher_are_charged_for_it():
    """At alpha 0 every method but scratch was said to distill and charged the teacher's time."""
    from lets_core.baselines.nested import NestedConfig, NestedObjective
    from lets_core.compare import SAMPLES_TOWARD_TEACHER, distills
    from lets_core.elastic import ElasticConfig, ElasticObjective
    from lets_core.presets import tiny
    from lets_core.train import TrainConfig

    assert distills("lets", 1.0) and not distills("lets", 0.0) and not distills("scratch", 1.0)
    assert all(distills(m, 0.0) for m in SAMPLES_TOWARD_TEACHER)
    # The rule follows the objectives themselves: at alpha 0 these two still read the teacher's logits.
    plain = TrainConfig(alpha=0.0)
    assert ElasticObjective(ElasticConfig(), tiny(), plain).teacher_reason is not None
    assert NestedObjective(NestedConfig(), tiny(), plain).teacher_reason is not None


def test_the_learngene_width_reaches_the_methods_that_read_it(tmp_path):
    """--learngene-width changes the LeTs learngene (what it stores) and the nested ViT's smallest
    sampled width; weight selection's source is the Aux-shaped ViT either way. A run folder trained
    at another width is not resumed as if it were this one's."""
    from lets_core import AuxNet, cli
    from lets_core.baselines.nested import NestedConfig

    data = fake_fashion_mnist(tmp_path / "fm", n_train=160)
    argv = ["compare", "--dataset", "fashion-mnist", "--data-dir", str(data), "--methods", "lets,nested,imwlm",
            "--sizes", "3x6", "--tune-epochs", "0", "--teacher-epochs", "1", "--stage1-epochs", "1",
            "--batch-size", "32", "--val-size", "32", "--no-progress"]
    reports = {}
    for width in (32, 48):
        out = tmp_path / f"w{width}"
        assert cli.main(argv + ["--learngene-width", str(width), "--out", str(out)]) == 0
        reports[width] = json.loads((out / "compare.json").read_text())
        cfg = CompareConfig(learngene_width=width, sizes=[(3, 6)], methods=["lets"]).model_config()
        assert reports[width]["model_config"]["learngene"]["embed_dim"] == width
        shape = f"LeTs learngene: 4 blocks of width {width} ({width // 16} heads of 16)"
        assert shape in (out / "compare.md").read_text()
        assert reports[width]["methods"]["lets"]["stored_parameters"] == AuxNet(cfg).stored_parameter_count()
        nested_source = json.loads((out / "stage1-nested" / "source" / "source.json").read_text())
        assert nested_source["config"]["learngene"]["embed_dim"] == width
        assert NestedConfig().sampler(cfg).min_heads == width // 16  # 2 heads at width 32, 3 at 48
    assert reports[48]["methods"]["lets"]["stored_parameters"] > reports[32]["methods"]["lets"]["stored_parameters"]
    assert reports[48]["methods"]["imwlm"]["stored_parameters"] == reports[32]["methods"]["imwlm"]["stored_parameters"]
    with pytest.raises(CheckpointError, match="learngene.embed_dim: checkpoint 48 vs now 32"):
        run_compare(_config(tmp_path, methods=["lets"], sizes=[(3, 6)], tune_epochs=[0], out=str(tmp_path / "w48"),
                            data_dir=str(data), val_size=32))
