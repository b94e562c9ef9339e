"""The documented benchmark commands still run and write sane records (smoke runs, tiny sizes).

Timing figures are not checked here (they are printed by the benchmarks, not asserted); what is
checked is that every way/variant produced a positive time and the records carry what
benchmarks/README.md reports.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from testing import extension_loaded

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def run(script: str, *args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    # From outside the checkout, so that the installed lets_core (and its compiled library) is used.
    done = subprocess.run([sys.executable, str(BENCHMARKS / script), *args], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300, env=dict(os.environ, HF_HUB_OFFLINE="1"))
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.mark.skipif(not extension_loaded(), reason="bench_ops.py compares against the compiled library")
def test_bench_ops_quick_writes_every_op_and_generation_way(tmp_path):
    out = tmp_path / "ops.json"
    run("bench_ops.py", "--device", "cpu", "--quick", "--min-run-time", "0.02", "--rounds", "1",
        "--json", str(out), tmp_path=tmp_path)
    records = json.loads(out.read_text())
    ops = {r["op"].split()[0] for r in records}
    assert {"widen", "widen_mix", "group_mix", "select_by_norm", "generation"} <= ops
    ways = {r["implementation"] for r in records if r["op"] == "generation step"}
    assert ways == {"compiled", "fallback", "fallback-naive", "released-code"}
    timed = [r for r in records if "median_ms" in r]
    assert all(r["median_ms"] > 0 and r["extension"] == "loaded" for r in timed)
    # The released-code baseline is checked against lets_core's weights and its work counted.
    (flops,) = [r for r in records if r["op"] == "generation forward matmul FLOPs"]
    assert flops["max_weight_difference"] < 1e-4 and flops["released_code_flops"] > flops["lets_flops"] > 0
    assert len(timed) == len(records) - 1


def test_median_ms_times_on_the_threads_it_records(monkeypatch):
    """torch.utils.benchmark.Timer runs on 1 thread unless told; the ops benchmarks record
    torch.get_num_threads(), so they must time on that many."""
    import torch
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import bench_ops
    seen = []
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        bench_ops.median_ms(lambda: seen.append(torch.get_num_threads()), "cpu", 0.01)
    finally:
        torch.set_num_threads(before)
    assert seen and set(seen) == {2}


@pytest.mark.skipif(not extension_loaded(), reason="bench_blas_limit.py times the compiled step")
def test_bench_blas_limit_tiny_reports_the_median_round(tmp_path):
    out = tmp_path / "blas.json"
    done = run("bench_blas_limit.py", "--config", "tiny", "--min-run-time", "0.05", "--rounds", "2",
               "--cpu-memory", "reuse", "--json", str(out), tmp_path=tmp_path)
    (record,) = json.loads(out.read_text())
    assert record["products"] > 0 and record["matmul_gflop"] > 0 and record["cpu_memory"] == "reuse"
    assert record["rounds"] == 2 and len(record["round_fractions"]) == 2
    assert record["fraction_of_gemm_limit"] in record["round_fractions"]
    assert all(r["gemm_ms"] > 0 for r in record["per_shape"] if not r["thin"])
    assert "% of the GEMM limit" in done.stdout


def test_bench_train_step_tiny_reports_every_variant(tmp_path):
    out = tmp_path / "train.json"
    done = run("bench_train_step.py", "--config", "tiny", "--batch", "4", "--min-time", "0.05", "--rounds", "1",
               "--variants", "plain,lets,released", "--cpu-memory", "reuse", "--json", str(out), tmp_path=tmp_path)
    records = {r["variant"]: r for r in json.loads(out.read_text())}
    assert set(records) == {"plain", "lets", "released"}
    for r in records.values():
        assert r["median_ms"] > 0 and r["step_memory_mb"] > 0 and r["rounds"] == 1 and r["cpu_memory"] == "reuse"
    # The Aux-Net trains fewer parameters than the plain ViT it generates (learngene + F + G).
    assert records["lets"]["trainable_params"] < records["plain"]["trainable_params"]
    assert "released-code / lets step time" in done.stdout


def test_bench_train_step_refuses_the_graph_variant_off_cuda(tmp_path):
    done = subprocess.run([sys.executable, str(BENCHMARKS / "bench_train_step.py"), "--config", "tiny",
                           "--variants", "plain,lets-graph"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "lets-graph replays CUDA graphs and needs --device cuda" in done.stderr


def test_profile_step_tiny_reports_host_time_and_top_ops(tmp_path):
    out = tmp_path / "profile.json"
    compiled = extension_loaded()
    ways = "compiled,fallback" if compiled else "fallback"
    done = run("profile_step.py", "--config", "tiny", "--device", "cpu", "--ways", ways, "--steps", "2",
               "--min-run-time", "0.02", *(["--select"] if compiled else []), "--json", str(out), tmp_path=tmp_path)
    records = json.loads(out.read_text())
    assert [r["way"] for r in records] == ways.split(",") + (["compiled"] if compiled else [])
    assert [r["benchmark"] for r in records][-1] == ("select_by_norm profile" if compiled else "generation step profile")
    for r in records:
        assert r["wall_ms"] > 0 and r["host_ms"] > 0 and r["steps"] == 2
        assert r["top_host_ops"] and all(op["self_ms_per_step"] >= 0 for op in r["top_host_ops"])
    assert "host (profiled)" in done.stdout


def test_union_us_counts_overlapping_intervals_once(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    from profile_step import union_us
    assert union_us([(5, 6), (0, 2), (1, 3), (1.5, 2.5)]) == 4
    assert union_us([]) == 0


def test_generation_outputs_round_trip_keeps_tied_layers_shared(monkeypatch):
    """The graphed generation's module returns each distinct tensor once and rebuilds the state
    dict, tied layers again sharing one tensor; off CUDA the graph itself is refused by name."""
    import torch
    import lets_core
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    from graphed_generation import GenerationOutputs, graphed_generation
    torch.manual_seed(0)
    aux = lets_core.AuxNet(lets_core.presets.tiny())
    eager = aux.generate()
    module = GenerationOutputs(aux)
    outputs = module()
    assert len(outputs) == len({id(t) for t in eager.values()}) < len(eager)  # the tiny preset ties layers
    state = module.as_state(outputs)
    assert list(state) == list(eager)
    for key in eager:
        torch.testing.assert_close(state[key], eager[key], rtol=0, atol=0)
        for other in eager:  # tied in the rebuilt state exactly where tied in the eager one
            assert (state[key] is state[other]) == (eager[key] is eager[other])
    with pytest.raises(ValueError, match="needs the Aux-Net on a CUDA device, got cpu"):
        graphed_generation(aux)


def test_bench_elastic_step_tiny_reports_every_variant(tmp_path):
    out = tmp_path / "elastic.json"
    done = run("bench_elastic_step.py", "--config", "tiny", "--batch", "4", "--min-time", "0.05", "--rounds", "1",
               "--json", str(out), tmp_path=tmp_path)
    records = {r["variant"]: r for r in json.loads(out.read_text())}
    assert set(records) == {"paper", "elastic-k1", "elastic-k2", "bound-k1", "bound-k2"}
    for r in records.values():
        assert r["median_ms"] > 0 and r["rounds"] == 1
    # The Des-Nets add their gathered weights and activations to what backward keeps; the bound's
    # plain sub-networks keep the same kind of tensors.
    paper = records["paper"]["saved_for_backward_mb"]
    for k in ("k1", "k2"):
        assert paper < records[f"elastic-{k}"]["saved_for_backward_mb"]
        assert paper < records[f"bound-{k}"]["saved_for_backward_mb"]
    assert "x paper" in done.stdout


def _compare_json(folder: Path, seed: int, lets: float, rival: float, stage1_epochs: int = 5) -> None:
    folder.mkdir()
    top1 = lambda v: {"top1_by_epochs": {"0": v / 2, "1": v}}
    report = {"config": {"seed": seed, "out": str(folder), "stage1_epochs": stage1_epochs},
              "teacher": {"test_top1": 0.8},
              "dataset": {"dataset": "fashion-mnist", "train": 100, "val": 10, "test": 20, "image_size": 28,
                          "in_chans": 1, "num_classes": 10},
              "methods": {"lets": {}, "imwlm": {}, "scratch": {}},
              "results": {"2x4": {"lets": top1(lets), "imwlm": top1(rival), "scratch": top1(0.5)}}}
    (folder / "compare.json").write_text(json.dumps(report))


def test_compare_seeds_averages_and_counts_the_seeds_lets_is_ahead(tmp_path):
    _compare_json(tmp_path / "s0", 0, 0.72, 0.70)
    _compare_json(tmp_path / "s1", 1, 0.70, 0.71)
    done = run("compare_seeds.py", str(tmp_path / "s0"), str(tmp_path / "s1"), tmp_path=tmp_path)
    assert "| H2-L4 | lets | 35.50 [35.00, 36.00] | 71.00 [70.00, 72.00] |" in done.stdout
    assert "| lets | imwlm | +0.50 (1/2) |" in done.stdout
    assert "| lets | scratch | +21.00 (2/2) |" in done.stdout  # scratch is a rival too (it was left out)
    # A run on other data is not averaged (a digits fallback has the same settings).
    _compare_json(tmp_path / "s3", 3, 0.7, 0.7)
    other = json.loads((tmp_path / "s3" / "compare.json").read_text())
    other["dataset"]["dataset"] = "digits"
    (tmp_path / "s3" / "compare.json").write_text(json.dumps(other))
    refused = subprocess.run([sys.executable, str(BENCHMARKS / "compare_seeds.py"), str(tmp_path / "s0"),
                              str(tmp_path / "s3")], capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "was run on other data" in refused.stderr
    # Runs with other settings than the seed are not averaged.
    _compare_json(tmp_path / "s2", 2, 0.7, 0.7)
    changed = json.loads((tmp_path / "s2" / "compare.json").read_text())
    changed["config"]["stage1_epochs"] = 6
    (tmp_path / "s2" / "compare.json").write_text(json.dumps(changed))
    refused = subprocess.run([sys.executable, str(BENCHMARKS / "compare_seeds.py"), str(tmp_path / "s0"),
                              str(tmp_path / "s2")], capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "not run with the same settings" in refused.stderr


def test_compare_seeds_against_runs_of_another_setting_pairs_them_by_seed(tmp_path):
    """--against: every method and size of both sets, these minus those, seed by seed; runs of other
    seeds or other data are refused, and a report file may stand for its folder."""
    _compare_json(tmp_path / "s0", 0, 0.72, 0.70)
    _compare_json(tmp_path / "s1", 1, 0.70, 0.71)
    _compare_json(tmp_path / "o1", 1, 0.70, 0.70, stage1_epochs=6)  # listed first: pairing is by seed
    _compare_json(tmp_path / "o0", 0, 0.70, 0.70, stage1_epochs=6)
    done = run("compare_seeds.py", str(tmp_path / "s0"), str(tmp_path / "s1"), "--against",
               str(tmp_path / "o1" / "compare.json"), str(tmp_path / "o0"), tmp_path=tmp_path)
    assert "Settings that differ (these, those): stage1_epochs 5 vs 6." in done.stdout
    assert "Teacher test top-1, these minus those, per seed: +0.00, +0.00 points." in done.stdout
    assert "| H2-L4 | lets | +0.50 (1/2) | +1.00 (1/2) |" in done.stdout
    assert "| H2-L4 | imwlm | +0.25 (1/2) | +0.50 (1/2) |" in done.stdout
    assert "| H2-L4 | scratch | +0.00 (0/2) | +0.00 (0/2) |" in done.stdout
    _compare_json(tmp_path / "o2", 2, 0.7, 0.7, stage1_epochs=6)
    refused = subprocess.run([sys.executable, str(BENCHMARKS / "compare_seeds.py"), str(tmp_path / "s0"),
                              str(tmp_path / "s1"), "--against", str(tmp_path / "o0"), str(tmp_path / "o2")],
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "--against runs are seeds [0, 2], these are seeds [0, 1]" in refused.stderr
    other = json.loads((tmp_path / "o0" / "compare.json").read_text())
    other["dataset"]["train"] = 99
    (tmp_path / "o0" / "compare.json").write_text(json.dumps(other))
    refused = subprocess.run([sys.executable, str(BENCHMARKS / "compare_seeds.py"), str(tmp_path / "s0"),
                              "--against", str(tmp_path / "o0")], capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "seed 0: the --against run was on other data" in refused.stderr


def _demo_json(folder: Path, seed: int, elastic_ft1: float, scratch4: float) -> None:
    folder.mkdir()
    report = {"demo_config": {"seed": seed, "out": str(folder), "stage1": ["elastic"], "scratch_epochs": [1, 4]},
              "dataset": {"dataset": "fashion-mnist", "train": 100, "val": 10, "test": 20, "image_size": 28,
                          "in_chans": 1, "num_classes": 10},
              "teacher": {"test_top1": 0.8}, "stage1": {"elastic": {"test_top1": 0.75}},
              "rows": [{"heads": 2, "depth": 4, "params": 36682,
                        "lets": {"elastic": {"direct_top1": 0.7, "ft1_top1": elastic_ft1}},
                        "scratch_top1_by_epoch": {"1": 0.5, "4": scratch4}}]}
    (folder / "report.json").write_text(json.dumps(report))


def test_demo_seeds_averages_and_counts_the_seeds_lets_beats_each_scratch_budget(tmp_path):
    _demo_json(tmp_path / "s0", 0, 0.78, 0.76)
    _demo_json(tmp_path / "s1", 1, 0.76, 0.77)
    done = run("demo_seeds.py", str(tmp_path / "s0"), str(tmp_path / "s1"), tmp_path=tmp_path)
    assert "Aux-Net, elastic stage 1: 75.00 [75.00, 75.00]." in done.stdout
    assert ("| H2-L4 | 36,682 | 70.00 [70.00, 70.00] | 77.00 [76.00, 78.00] | 50.00 [50.00, 50.00] "
            "| 76.50 [76.00, 77.00] |") in done.stdout
    assert "| elastic | 4 ep | +0.50 (1/2) |" in done.stdout
    assert "| elastic | 1 ep | +27.00 (2/2) |" in done.stdout
    # Runs with other settings than the seed, or two runs of one seed, are not averaged.
    changed = json.loads((tmp_path / "s1" / "report.json").read_text())
    changed["demo_config"]["scratch_epochs"] = [1, 2]
    (tmp_path / "s1" / "report.json").write_text(json.dumps(changed))
    refused = subprocess.run([sys.executable, str(BENCHMARKS / "demo_seeds.py"), str(tmp_path / "s0"),
                              str(tmp_path / "s1")], capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "not run with the same settings" in refused.stderr
    twice = subprocess.run([sys.executable, str(BENCHMARKS / "demo_seeds.py"), str(tmp_path / "s0"),
                            str(tmp_path / "s0")], capture_output=True, text=True, timeout=60)
    assert twice.returncode != 0 and "are both seed 0; give one run per seed" in twice.stderr


def test_compare_seeds_refuses_a_seed_twice_and_labels_the_lengths_it_has(tmp_path):
    _compare_json(tmp_path / "s0", 0, 0.72, 0.70)
    twice = subprocess.run([sys.executable, str(BENCHMARKS / "compare_seeds.py"), str(tmp_path / "s0"),
                            str(tmp_path / "s0")], capture_output=True, text=True, timeout=60)
    assert twice.returncode != 0 and "are both seed 0; give one run per seed" in twice.stderr
    _compare_json(tmp_path / "s1", 1, 0.70, 0.71)
    done = run("compare_seeds.py", str(tmp_path / "s0"), str(tmp_path / "s1"), tmp_path=tmp_path)
    assert "| Des-Net | method | direct | + 1 ep |\n|---|---|---|---|" in done.stdout
    for folder in ("s0", "s1"):  # runs without a 1-epoch tuning: the table, and no gap table
        path = tmp_path / folder / "compare.json"
        report = json.loads(path.read_text())
        for methods in report["results"].values():
            for result in methods.values():
                result["top1_by_epochs"] = {"0": result["top1_by_epochs"]["0"], "2": 0.5}
        path.write_text(json.dumps(report))
    done = run("compare_seeds.py", str(tmp_path / "s0"), str(tmp_path / "s1"), tmp_path=tmp_path)
    assert "| direct | + 2 ep |" in done.stdout and "No run tuned for 1 epoch" in done.stdout


def test_bench_stage1_screens_a_wider_learngene_with_its_own_size_grid(tmp_path):
    """``lg_`` options change the learngene's shape; the elastic objective must sample the sizes of
    that model (with the preset's 2-head grid a 3-head learngene failed to emit its smallest size)."""
    out = tmp_path / "runs.jsonl"
    run("bench_stage1.py", "--dataset", "digits", "--epochs", "1", "--train-limit", "300", "--val-size", "100",
        "--teacher-epochs", "1", "--teacher", str(tmp_path / "teacher"), "--des-sizes", "3x4",
        "--variants", "aux:lg_embed_dim=48;elastic:lg_embed_dim=48,num_random=1", "--json", str(out),
        tmp_path=tmp_path)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["variant"] for r in records] == ["aux:lg_embed_dim=48", "elastic:lg_embed_dim=48,num_random=1"]
    assert all(set(r["direct_des"]) == {"H3-L4"} and len(r["val_top1_by_epoch"]) == 1 for r in records)
