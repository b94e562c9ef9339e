"""Named stage-1 recipes: what `lets train-aux` trains with when the recipe flags are not given.

The paper's recipe (lr 5e-4 per 512 images, 5 warm-up epochs, its F and G initializations) was
made for 300 ImageNet epochs; on a small dataset it leaves the Aux-Net far from converged (issue
9: 36.7% top-1 after 8 epochs on a few thousand images, where a validated recipe gave 68.2%).
``small-data`` is the recipe chosen on validation splits for datasets of thousands to tens of
thousands of images (benchmarks/results/stage1/NOTES.md has the measurements). ``auto`` picks
``small-data`` below :data:`LARGE_DATASET` training images and ``paper`` from there on.

Example:
    >>> r = resolve_recipe("auto", train_images=4000, batch_size=128)
    >>> r.name, r.epochs
    ('small-data', 65)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

RECIPE_NAMES = ("auto", "small-data", "paper")
# From this many training images on, ``auto`` takes the paper's ImageNet recipe.
LARGE_DATASET = 200_000


# The batch a recipe's lr is quoted for (TrainConfig.lr_base_batch's default): a run with another
# --lr-base-batch takes the recipe's lr rescaled to it.
RECIPE_LR_BASE_BATCH = 512


@dataclass(frozen=True)
class Stage1Recipe:
    """Stage-1 settings: the TrainConfig values (lr per ``lr_base_batch`` = 512 images) and the F and
    G initializations. ``epochs`` is filled by :func:`resolve_recipe` from the dataset's size: at
    least ``min_epochs``, and enough epochs for ``min_steps`` optimizer steps; ``warmup_epochs`` is
    raised so that warm-up lasts at least ``min_warmup_steps`` steps."""

    name: str
    lr: float
    warmup_epochs: float
    f_init: str
    g_init: str
    f_lr_scale: float
    g_lr_scale: float
    min_epochs: int
    min_steps: int
    min_warmup_steps: int = 0
    epochs: int = 0

    def describe(self) -> str:
        return (f"stage-1 recipe {self.name!r}: {self.epochs} epochs, lr {self.lr:g} per {RECIPE_LR_BASE_BATCH} "
                f"images, {self.warmup_epochs:g} warm-up epochs, F init {self.f_init}, G init {self.g_init}, "
                f"F/G lr scales {self.f_lr_scale:g}/{self.g_lr_scale:g}")


RECIPES = {
    # The paper's F and G initializations at a higher lr: on 3,000 Fashion-MNIST images (8 epochs,
    # 3 seeds) the F init 'normal' diverged at this lr in some seeds and 'net2net' + 'spread' was
    # lower, while the paper's inits at lr 2.4e-2 matched a plain ViT's best lr within seed noise.
    # A warm-up of 46 steps instead of 12 there raised the Aux-Net from 64.7 to 66.9 (and its worst
    # seed from 59.0 to 65.6), hence at least 50 warm-up steps on small data.
    "small-data": Stage1Recipe("small-data", lr=2.4e-2, warmup_epochs=0.5, f_init="normalized-uniform",
                               g_init="paper", f_lr_scale=1.0, g_lr_scale=1.0, min_epochs=10, min_steps=2000,
                               min_warmup_steps=50),
    # The paper's ImageNet recipe (lets-method.md, "Loss"); 300 epochs there.
    "paper": Stage1Recipe("paper", lr=5e-4, warmup_epochs=5.0, f_init="normalized-uniform", g_init="paper",
                          f_lr_scale=1.0, g_lr_scale=1.0, min_epochs=300, min_steps=0),
}


def resolve_recipe(name: str, train_images: int, batch_size: int) -> Stage1Recipe:
    """The recipe ``name`` ("auto" chooses by dataset size) with its epochs for this dataset."""
    if name not in RECIPE_NAMES:
        raise ValueError(f"unknown stage-1 recipe {name!r}; allowed: {list(RECIPE_NAMES)}")
    if name == "auto":
        name = "paper" if train_images >= LARGE_DATASET else "small-data"
    recipe = RECIPES[name]
    # The loader drops the last partial batch (train_loader's drop_last), so an epoch has floor(n / b)
    # steps; counting with ceil gave runs fewer steps than min_steps (1,820 of 2,000 at 1,294 / 128).
    steps_per_epoch = max(1, train_images // batch_size)
    epochs = max(recipe.min_epochs, math.ceil(recipe.min_steps / steps_per_epoch))
    # Rounded up to 1/100 epoch, so the printed value gives at least the minimum number of steps.
    warmup = max(recipe.warmup_epochs, math.ceil(100 * recipe.min_warmup_steps / steps_per_epoch) / 100)
    return replace(recipe, epochs=epochs, warmup_epochs=warmup)
