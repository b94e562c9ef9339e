"""The demo's cost accounting: forward FLOPs of a ViT by hand, and the family totals built from them."""

from __future__ import annotations

import pytest

import lets_core
from lets_core.demo_cost import des_flops, family_costs, stage1_flops_per_image
from lets_core.elastic import ElasticConfig


def _vit_flops_by_hand(cfg, heads: int, depth: int) -> int:
    lg = cfg.learngene
    width, tokens = heads * lg.head_dim, lg.num_patches
    hidden = lg.mlp_hidden(width)
    linear = 2 * tokens * (4 * width * width + 2 * width * hidden)  # qkv, proj, fc1, fc2
    attention = 2 * 2 * tokens * tokens * width  # q k^T and (attn) v
    stem = 2 * tokens * width * lg.in_chans * lg.patch_size ** 2
    return depth * (linear + attention) + stem + 2 * width * lg.num_classes


@pytest.mark.parametrize("heads, depth", [(2, 4), (3, 6), (4, 8), (2, 1)])
def test_des_flops_match_the_hand_count(heads, depth):
    cfg = lets_core.presets.tiny()
    assert des_flops(cfg, heads, depth) == _vit_flops_by_hand(cfg, heads, depth)


def test_stage1_and_family_costs():
    cfg = lets_core.presets.tiny()
    teacher = 1e6
    aux = des_flops(cfg, 4, 8)
    assert stage1_flops_per_image(cfg, teacher, None) == 3 * aux + teacher
    grid = [(h, l) for h in (2, 3, 4) for l in range(4, 9)]
    mean = sum(des_flops(cfg, h, l) for h, l in grid) / len(grid)
    elastic = ElasticConfig(num_random=2)
    expected = 3 * (aux + des_flops(cfg, 2, 4) + 2 * mean) + teacher
    assert stage1_flops_per_image(cfg, teacher, elastic) == pytest.approx(expected)
    sizes = [(2, 4), (4, 8)]
    costs = family_costs(cfg, sizes, images=100, teacher_flops=teacher, teacher_epochs=2, aux_epochs=3,
                         stage1={"paper": None, "elastic": elastic}, tune_epochs=1, scratch_epochs=[1, 4], alpha=1.0)
    tune = 100 * 3 * (des_flops(cfg, 2, 4) + des_flops(cfg, 4, 8))
    assert costs["scratch-4ep"] == pytest.approx(4 * tune) and costs["scratch-1ep"] == pytest.approx(tune)
    assert costs["lets-paper"] == pytest.approx(2 * 100 * 3 * teacher + 3 * 100 * (3 * aux + teacher) + tune)
    assert costs["lets-elastic"] == pytest.approx(2 * 100 * 3 * teacher + 3 * 100 * expected + tune)


def test_a_stage1_that_does_not_distill_is_not_charged_for_the_teacher():
    """At alpha 0 the teacher never runs in the paper's stage 1, yet its forward on every image
    and its training were counted (9.39x scratch reported where 4.16x was spent)."""
    cfg = lets_core.presets.tiny()
    teacher, aux = 1e6, des_flops(cfg, 4, 8)
    aux_only = ElasticConfig(target="aux")
    costs = family_costs(cfg, [(2, 4)], images=100, teacher_flops=teacher, teacher_epochs=2, aux_epochs=3,
                         stage1={"paper": None, "elastic": ElasticConfig(), "elastic-own": aux_only}, tune_epochs=1,
                         scratch_epochs=[1], alpha=0.0)
    tune = 100 * 3 * des_flops(cfg, 2, 4)
    assert costs["lets-paper"] == pytest.approx(3 * 100 * 3 * aux + tune)
    # The elastic Des-Nets learn from the teacher (its default target) whatever alpha is.
    assert costs["lets-elastic"] == pytest.approx(2 * 100 * 3 * teacher + 3 * 100 * stage1_flops_per_image(
        cfg, teacher, ElasticConfig()) + tune)
    assert costs["lets-elastic-own"] == pytest.approx(3 * 100 * stage1_flops_per_image(cfg, 0.0, aux_only) + tune)


def test_an_epoch_counts_the_images_the_loader_yields():
    """Costs counted every training image, but the loader drops the last incomplete batch (896 of
    1,000 at batch 128: every FLOP figure was 10% high)."""
    from lets_core.data import images_per_epoch, load_splits, train_loader

    assert images_per_epoch(1000, 128) == 896 and images_per_epoch(1024, 128) == 1024
    splits = load_splits("digits", val_size=0.1, seed=0)
    for world_size in (1, 2):
        yielded = sum(len(x) for rank in range(world_size)
                      for x, _ in train_loader(splits, 64, rank=rank, world_size=world_size, num_workers=0))
        assert images_per_epoch(len(splits.train), 64, world_size) == yielded
