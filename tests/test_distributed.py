"""Two CPU processes with gloo: parameters stay identical across ranks and match a single-process
run with the same global batch; only rank 0 writes checkpoints; metrics are reduced across ranks."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from train_helpers import quick_recipe, small_splits

import lets_core
from lets_core.train import (CHECKPOINT_FILE, ElasticConfig, ElasticObjective, fit, init_distributed, load_checkpoint,
                             shutdown)

# Elastic stage 1 through DDP: the Des-Nets run inside the wrapped module's forward.
ELASTIC = ElasticConfig(num_random=2, target="aux", strategy="top-l2")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, tmp: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    env = init_distributed("cpu")
    try:
        splits = small_splits(Path(tmp) / f"data{rank}")
        torch.manual_seed(100 + rank)  # different inits: DDP must broadcast rank 0's
        aux = lets_core.AuxNet(lets_core.presets.tiny())
        result = fit(aux, splits, quick_recipe(epochs=2, clip_grad=1.0), kind="aux", env=env,
                     out_dir=os.path.join(tmp, "ddp"))
        torch.save({"state": result.model.state_dict(), "history": result.history},
                   os.path.join(tmp, f"rank{rank}.pt"))
    finally:
        shutdown(env)


def test_two_gloo_processes_match_one_process(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    for key, value in ranks[0]["state"].items():
        assert torch.equal(value, ranks[1]["state"][key]), f"ranks disagree on {key}"

    torch.manual_seed(100)  # rank 0's initialization
    splits = small_splits(tmp_path / "data_single")
    single = fit(lets_core.AuxNet(lets_core.presets.tiny()), splits, quick_recipe(epochs=2, clip_grad=1.0),
                 kind="aux")
    for key, value in single.model.state_dict().items():
        torch.testing.assert_close(ranks[0]["state"][key], value, rtol=1e-4, atol=1e-5, msg=key)

    strip = lambda rows: [{k: v for k, v in r.items() if k not in ("epoch_seconds", "images_per_second")}
                          for r in rows]
    assert strip(ranks[0]["history"]) == strip(ranks[1]["history"])
    # Metrics are summed over both ranks' shards, so they equal the single process's.
    for dist_rec, single_rec in zip(ranks[0]["history"], single.history):
        assert dist_rec["val_top1"] == single_rec["val_top1"]
        assert abs(dist_rec["train_loss"] - single_rec["train_loss"]) < 1e-4
    assert load_checkpoint(tmp_path / "ddp" / CHECKPOINT_FILE, "aux")["epoch"] == 2
    assert not list((tmp_path / "ddp").glob("*.tmp"))


def _elastic_fit(splits, env=None):
    cfg, recipe = lets_core.presets.tiny(), quick_recipe(epochs=1, clip_grad=1.0)
    return fit(lets_core.AuxNet(cfg), splits, recipe, kind="aux", env=env,
               objective=ElasticObjective(ELASTIC, cfg, recipe))


def _elastic_worker(rank: int, world: int, port: int, tmp: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    env = init_distributed("cpu")
    try:
        torch.manual_seed(100 + rank)
        result = _elastic_fit(small_splits(Path(tmp) / f"data{rank}"), env)
        torch.save(result.model.state_dict(), os.path.join(tmp, f"rank{rank}.pt"))
    finally:
        shutdown(env)


def test_elastic_stage1_under_two_gloo_processes_matches_one_process(tmp_path):
    mp.spawn(_elastic_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    torch.manual_seed(100)
    single = _elastic_fit(small_splits(tmp_path / "data_single")).model.state_dict()
    for key, value in single.items():
        assert torch.equal(ranks[0][key], ranks[1][key]), f"ranks disagree on {key}"
        torch.testing.assert_close(ranks[0][key], value, rtol=1e-4, atol=1e-5, msg=key)



@pytest.mark.parametrize("env, message", [
    ({"RANK": "3"}, "RANK=3 must be below WORLD_SIZE=1"),
    ({"RANK": "-1"}, "RANK='-1' must be an integer >= 0"),
    ({"WORLD_SIZE": "0"}, "WORLD_SIZE='0' must be an integer >= 1"),
    ({"WORLD_SIZE": "1.0"}, "WORLD_SIZE='1.0' must be an integer >= 1"),
    ({"LOCAL_RANK": "abc"}, "LOCAL_RANK='abc' must be an integer >= 0"),
])
def test_stray_launch_variables_are_refused_by_name(monkeypatch, env, message):
    """A left-over RANK=3 made one process act as rank 3 of 1: `lets evaluate` printed nothing, exit 0."""
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=message):
        init_distributed("cpu")
