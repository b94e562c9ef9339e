"""What each way of getting the demo's family of Des-Nets spends, in training FLOPs.

A training epoch over N images costs N x (3 x the student's forward FLOPs), the usual count of a
forward and a backward pass, plus N x the teacher's forward FLOPs when the student distills (N:
the images the loader yields, without the last incomplete batch). The teacher's training counts
for a stage 1 only when that stage 1 distills: at alpha 0 without an elastic teacher target, no
loss reads the teacher's logits and fit never runs it. An
elastic stage-1 step also runs its sampled Des-Nets; their cost is the expectation under the
sandwich rule (the smallest size every step, ``num_random`` sizes uniform over the grid).
Forward FLOPs come from ``torch.utils.flop_counter`` on meta tensors (matmuls and convolutions;
the weight generation of the Aux-Net, once per step and under 1% of a batch-128 step at the
demo's size, is not counted). Evaluation passes are not counted for any way.
"""

from __future__ import annotations

from functools import lru_cache

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .config import LetsConfig
from .elastic import ElasticConfig
from .vit import build_vit


def forward_flops(model: nn.Module, in_chans: int, image_size: int) -> float:
    """Forward FLOPs per image of ``model`` (any device; the input is built on the model's)."""
    device = next(model.parameters(), torch.empty(0)).device
    x = torch.zeros(2, in_chans, image_size, image_size, device=device)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops() / 2


@lru_cache(maxsize=None)
def _vit_flops(cfg: LetsConfig, heads: int, depth: int) -> float:
    lg = cfg.learngene
    skeleton = build_vit(lg, heads * lg.head_dim, depth, device="meta")
    x = torch.empty(2, lg.in_chans, lg.img_size, lg.img_size, device="meta")
    with FlopCounterMode(display=False) as counter:
        skeleton(x)
    return counter.get_total_flops() / 2


def des_flops(cfg: LetsConfig, heads: int, depth: int) -> float:
    """Forward FLOPs per image of a Des-Net (or, at the Aux size, of the Aux-Net's forward)."""
    return _vit_flops(cfg, heads, depth)


def stage1_distills(alpha: float, elastic: ElasticConfig | None) -> bool:
    """Whether a LeTs stage 1 runs the teacher: its loss weighs the teacher's logits (alpha > 0), or
    its elastic Des-Nets learn from them (a target other than the Aux-Net's own logits)."""
    return alpha > 0 or (elastic is not None and elastic.target != "aux")


def stage1_flops_per_image(cfg: LetsConfig, teacher_flops: float, elastic: ElasticConfig | None) -> float:
    """Training FLOPs of one stage-1 image: the Aux-Net, the teacher, and the sampled Des-Nets."""
    student = des_flops(cfg, cfg.aux_heads, cfg.aux_depth)
    if elastic is not None:
        grid = elastic.sampler(cfg)
        sizes = [(h, l) for h in range(grid.min_heads, grid.max_heads + 1)
                 for l in range(grid.min_depth, grid.max_depth + 1)]
        mean_random = sum(des_flops(cfg, h, l) for h, l in sizes) / len(sizes)
        student += des_flops(cfg, *grid.smallest) + grid.num_random * mean_random
    return 3 * student + teacher_flops


def family_costs(cfg: LetsConfig, sizes: list[tuple[int, int]], images: int, teacher_flops: float,
                 teacher_epochs: int, aux_epochs: int, stage1: dict[str, ElasticConfig | None],
                 tune_epochs: int, scratch_epochs: list[int], alpha: float) -> dict[str, float]:
    """Training FLOPs of the whole family of ``sizes`` for every way the demo compares.

    ``images``: the images one training epoch yields (:func:`lets_core.data.images_per_epoch`).
    Keys: ``lets-<variant>`` (teacher + that stage 1 + ``tune_epochs`` per size) for each stage-1
    variant, the teacher only where the variant distills (:func:`stage1_distills` with ``alpha``),
    and ``scratch-<e>ep`` (every size trained from scratch for e epochs).
    """
    tune = sum(3 * des_flops(cfg, h, l) for h, l in sizes) * images
    teacher = teacher_epochs * images * 3 * teacher_flops
    costs = {}
    for name, elastic in stage1.items():
        used = stage1_distills(alpha, elastic)
        costs[f"lets-{name}"] = ((teacher if used else 0.0) + tune_epochs * tune
                                 + aux_epochs * images * stage1_flops_per_image(cfg, teacher_flops if used else 0.0,
                                                                               elastic))
    for e in scratch_epochs:
        costs[f"scratch-{e}ep"] = e * tune
    return costs
