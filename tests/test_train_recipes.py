"""Stage-1 recipes: the choice by dataset size, epochs from the number of steps, and the CLI's use."""

from __future__ import annotations

import argparse
import dataclasses
import math

import pytest

import lets_core
from lets_core.cli.commands.train_aux import _apply_stage1_recipe
from lets_core.train.recipes import LARGE_DATASET, RECIPES, resolve_recipe


def test_auto_picks_by_dataset_size_and_sizes_epochs_by_steps():
    small = resolve_recipe("auto", train_images=4000, batch_size=128)
    assert small.name == "small-data"
    # 31 steps per epoch (4000 / 128 rounded down, as the loader drops the last partial batch): 2000
    # steps need 65 whole epochs (with 32 it said 63, which trains 1953 steps).
    assert small.epochs == -(-2000 // 31) and small.epochs * 31 >= RECIPES["small-data"].min_steps
    assert resolve_recipe("auto", train_images=58000, batch_size=128).epochs == RECIPES["small-data"].min_epochs
    big = resolve_recipe("auto", train_images=LARGE_DATASET, batch_size=512)
    assert big.name == "paper" and big.lr == 5e-4 and big.warmup_epochs == 5 and big.epochs == 300
    assert big.f_init == "normalized-uniform" and big.g_init == "paper"
    with pytest.raises(ValueError, match=r"unknown stage-1 recipe 'fast'; allowed: \['auto', 'small-data', 'paper'\]"):
        resolve_recipe("fast", 10, 1)


def _args(**given) -> argparse.Namespace:
    values = dict(recipe="auto", batch_size=128, epochs=None, lr=None, warmup_epochs=None, f_lr_scale=None,
                  g_lr_scale=None, f_init=None, g_init=None, model_config=None, lr_base_batch=512)
    values.update(given)
    return argparse.Namespace(**values)


def _tiny_with(**transform) -> lets_core.LetsConfig:
    cfg = lets_core.presets.tiny()
    return dataclasses.replace(cfg, transform=dataclasses.replace(cfg.transform, **transform))


def test_cli_fills_unset_flags_from_the_recipe_and_keeps_given_ones(capsys):
    cfg = _tiny_with(f_init="net2net", g_init="spread")  # a preset's inits give way to the recipe's
    args = _args(lr=1e-3, g_init="uniform")
    out = _apply_stage1_recipe(args, cfg, train_images=30000, say=True)
    small = RECIPES["small-data"]
    assert args.lr == 1e-3 and args.warmup_epochs == small.warmup_epochs and args.epochs == small.min_epochs
    assert out.transform.f_init == small.f_init and out.transform.g_init == "uniform"
    printed = capsys.readouterr().out
    assert "stage-1 recipe 'small-data'" in printed and "30,000 training images" in printed
    assert "given on the command line: g_init, lr" in printed
    assert "lr 0.001 per 512 images" in printed and "G init uniform" in printed  # what runs, not the recipe's


def test_the_recipes_lr_follows_lr_base_batch(capsys):
    """The recipe quotes its lr per 512 images but was used as the lr per --lr-base-batch images:
    --lr-base-batch 64 trained at 8 times the recipe's lr while the printed line said the recipe's."""
    small = RECIPES["small-data"]
    args = _args(lr_base_batch=64)
    _apply_stage1_recipe(args, _tiny_with(), train_images=30000, say=True)
    assert args.lr == pytest.approx(small.lr * 64 / 512)
    assert f"lr {small.lr:g} per 512 images" in capsys.readouterr().out
    args = _args(lr_base_batch=64, lr=0.01)  # a given --lr is per --lr-base-batch, as the flag says
    _apply_stage1_recipe(args, _tiny_with(), train_images=30000, say=True)
    assert args.lr == 0.01 and "lr 0.08 per 512 images" in capsys.readouterr().out


def test_a_model_config_file_keeps_its_own_initializations():
    cfg = _tiny_with(f_init="net2net", g_init="spread")
    out = _apply_stage1_recipe(_args(model_config="given.json"), cfg, train_images=1000, say=False)
    assert out.transform == cfg.transform


@pytest.mark.parametrize("images", [500, 1294, 3000, 4000, 24000, 58000])
def test_small_data_warm_up_lasts_at_least_its_minimum_number_of_steps(images):
    recipe = resolve_recipe("small-data", train_images=images, batch_size=128)
    steps_per_epoch = math.ceil(images / 128)
    warmup_steps = int(round(recipe.warmup_epochs * steps_per_epoch))  # as the training loop counts them
    assert warmup_steps >= RECIPES["small-data"].min_warmup_steps == 50
    assert recipe.warmup_epochs >= RECIPES["small-data"].warmup_epochs  # never shorter than 0.5 epochs
    assert recipe.warmup_epochs < recipe.epochs


def test_a_warm_up_as_long_as_the_run_is_reported(tmp_path):
    """The learning rate only ramped and never decayed, without a word."""
    import lets_core
    from lets_core.train import fit
    from train_helpers import quick_recipe, small_splits

    splits = small_splits(tmp_path)
    with pytest.warns(UserWarning, match=r"warm-up \(3 epochs\) is as long as the run \(2 epochs\)"):
        fit(lets_core.AuxNet(lets_core.presets.tiny()), splits, quick_recipe(epochs=2, warmup_epochs=3.0, alpha=0.0),
            kind="aux")
