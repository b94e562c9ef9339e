"""The learngene: timm layout, loading from a timm ViT or checkpoint, and shape errors."""

from __future__ import annotations


import pytest
import torch
from safetensors.torch import save_file

import lets_core
from lets_core.vit import build_vit


@pytest.fixture(scope="module")
def lg_cfg():
    return lets_core.presets.tiny().learngene


def test_from_timm_round_trip(lg_cfg):
    torch.manual_seed(0)
    vit = build_vit(lg_cfg, lg_cfg.embed_dim, lg_cfg.depth).eval()
    lg = lets_core.Learngene.from_timm(lg_cfg, vit)
    x = torch.randn(2, 1, 28, 28)
    torch.testing.assert_close(lg.to_timm().eval()(x), vit(x), rtol=0, atol=0)
    assert lg.blocks["qkv_w"].shape == (lg_cfg.depth, 3 * lg_cfg.embed_dim, lg_cfg.embed_dim)


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_from_checkpoint_file(lg_cfg, tmp_path, suffix):
    vit = build_vit(lg_cfg, lg_cfg.embed_dim, lg_cfg.depth)
    path = tmp_path / f"vit{suffix}"
    state = {k: v.contiguous() for k, v in vit.state_dict().items()}
    save_file(state, str(path)) if suffix == ".safetensors" else torch.save({"state_dict": state}, path)
    lg = lets_core.Learngene.from_checkpoint(lg_cfg, path)
    assert torch.equal(lg.blocks["fc2_w"][1], state["blocks.1.mlp.fc2.weight"])
    aux = lets_core.AuxNet(lets_core.presets.tiny(), learngene=lg)
    assert aux.learngene is lg


def test_wrong_width_checkpoint_is_named(lg_cfg):
    wrong = build_vit(lg_cfg, 48, lg_cfg.depth)
    with pytest.raises(lets_core.BundleError, match=r"'patch_embed.proj.weight' has shape \(48, 1, 7, 7\).*needs \(32, 1, 7, 7\)"):
        lets_core.Learngene.from_timm(lg_cfg, wrong)


def test_wrong_depth_checkpoint_is_named(lg_cfg):
    with pytest.raises(lets_core.BundleError, match=r"keys the learngene configuration does not have.*blocks\.4\."):
        lets_core.Learngene.from_timm(lg_cfg, build_vit(lg_cfg, lg_cfg.embed_dim, lg_cfg.depth + 1))
    with pytest.raises(lets_core.BundleError, match=r"lacks .* expected keys"):
        lets_core.Learngene.from_timm(lg_cfg, build_vit(lg_cfg, lg_cfg.embed_dim, lg_cfg.depth - 1))


def test_missing_checkpoint_file(lg_cfg, tmp_path):
    with pytest.raises(lets_core.BundleError, match="does not exist"):
        lets_core.Learngene.from_checkpoint(lg_cfg, tmp_path / "none.pth")


def test_from_timm_refuses_another_head_count_and_none():
    """4 heads of 8 have the shapes of 2 heads of 16 and were accepted; None gave a random learngene."""
    from timm.models.vision_transformer import VisionTransformer
    from lets_core.vit import vit_kwargs
    lg = lets_core.presets.tiny().learngene
    kwargs = dict(vit_kwargs(lg, lg.embed_dim, lg.depth), num_heads=4)
    with pytest.raises(lets_core.BundleError, match="has 4 heads per block; the learngene configuration has 2"):
        lets_core.Learngene.from_timm(lg, VisionTransformer(**kwargs))
    with pytest.raises(lets_core.BundleError, match="takes a timm ViT or its state dict, got NoneType"):
        lets_core.Learngene.from_timm(lg, None)
