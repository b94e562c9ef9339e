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


@pytest.mark.parametrize("override, message", [
    ({"act_layer": "relu"}, r"MLP activation \(blocks.0.mlp.act\) is ReLU\(\); the learngene's ViT uses exact GELU"),
    ({"act_layer": "gelu_tanh"}, r"MLP activation .* the learngene's ViT uses exact GELU"),
    ({"global_pool": "max"}, r"global_pool='max'; the learngene's ViT uses global_pool='avg'"),
    ({"global_pool": "avgmax"}, r"global_pool='avgmax'; the learngene's ViT uses global_pool='avg'"),
    ({"norm_layer": torch.nn.LayerNorm}, r"fc_norm is a LayerNorm with eps 1e-05; the learngene's ViT uses "
                                         r"LayerNorm with eps 1e-06"),
])
def test_from_timm_refuses_what_the_shapes_do_not_show(override, message):
    """A ReLU or max-pooling ViT has the learngene's very tensors and was accepted; its to_timm()
    then computed another network (0.25 logit difference for max pooling)."""
    from timm.models.vision_transformer import VisionTransformer
    from lets_core.vit import vit_kwargs
    lg = lets_core.presets.tiny().learngene
    model = VisionTransformer(**{**vit_kwargs(lg, lg.embed_dim, lg.depth), **override})
    with pytest.raises(lets_core.BundleError, match=message):
        lets_core.Learngene.from_timm(lg, model)


def test_from_timm_refuses_a_post_norm_block_and_a_non_vit_module():
    from timm.models.vision_transformer import ResPostBlock, VisionTransformer
    from lets_core.vit import vit_kwargs
    lg = lets_core.presets.tiny().learngene
    post_norm = VisionTransformer(**vit_kwargs(lg, lg.embed_dim, lg.depth), block_fn=ResPostBlock)
    with pytest.raises(lets_core.BundleError, match="blocks.0 is a ResPostBlock; the learngene's ViT uses timm's Block"):
        lets_core.Learngene.from_timm(lg, post_norm)

    class Holder(torch.nn.Module):  # a module holding a ViT's very tensors, not a ViT
        def __init__(self, vit):
            super().__init__()
            for name, value in vit.named_children():
                self.add_module(name, value)
            self.pos_embed = vit.pos_embed

    with pytest.raises(lets_core.BundleError, match="takes a timm VisionTransformer .*got Holder"):
        lets_core.Learngene.from_timm(lg, Holder(build_vit(lg, lg.embed_dim, lg.depth)))
    # timm's own exact GELU class is the learngene's activation too; a compiled ViT is unwrapped.
    vit = VisionTransformer(**{**vit_kwargs(lg, lg.embed_dim, lg.depth), "act_layer": "gelu"}).eval()
    x = torch.randn(2, 1, 28, 28)
    torch.testing.assert_close(lets_core.Learngene.from_timm(lg, vit).to_timm().eval()(x), vit(x), rtol=0, atol=0)
    assert lets_core.Learngene.from_timm(lg, torch.compile(vit)).cfg == lg


def test_learngene_needs_a_learngene_config():
    cfg = lets_core.presets.tiny()
    with pytest.raises(TypeError, match="Learngene needs a LearngeneConfig, got LetsConfig; pass its .learngene"):
        lets_core.Learngene(cfg)
    with pytest.raises(TypeError, match="Learngene needs a LearngeneConfig, got LetsConfig"):
        lets_core.Learngene.from_timm(cfg, build_vit(cfg.learngene, cfg.learngene.embed_dim, cfg.learngene.depth))


def test_aux_net_builds_in_a_float64_default_dtype():
    """Learngene.__init__ hard-coded float32 while F, G and pos_embed followed torch's default dtype:
    AuxNet(cfg) under a float64 default failed with "mixed dtypes ... pass a learngene"."""
    cfg = lets_core.presets.tiny()
    torch.set_default_dtype(torch.float64)
    try:
        aux = lets_core.AuxNet(cfg)
        assert {p.dtype for p in aux.parameters()} == {torch.float64}
        assert aux(torch.randn(2, 1, 28, 28)).dtype == torch.float64
    finally:
        torch.set_default_dtype(torch.float32)
    assert {p.dtype for p in lets_core.AuxNet(cfg).parameters()} == {torch.float32}


def test_learngene_keeps_its_sources_dtype_and_to_timm_keeps_the_learngenes(lg_cfg, tmp_path):
    """from_timm and from_checkpoint converted float64 and bfloat16 weights to float32, and to_timm()
    returned a float32 ViT on the default device whatever the learngene's dtype and device."""
    torch.manual_seed(0)
    vit = build_vit(lg_cfg, lg_cfg.embed_dim, lg_cfg.depth).double().eval()
    with torch.no_grad():
        for p in vit.parameters():
            p.add_(1e-9 * torch.randn_like(p))  # below float32's resolution
    lg = lets_core.Learngene.from_timm(lg_cfg, vit)
    assert {p.dtype for p in lg.parameters()} == {torch.float64}
    back = lg.to_timm().eval()
    for key, value in vit.state_dict().items():
        assert back.state_dict()[key].dtype == torch.float64 and torch.equal(back.state_dict()[key], value), key
    x = torch.randn(2, 1, 28, 28, dtype=torch.float64)
    torch.testing.assert_close(back(x), vit(x), rtol=0, atol=0)
    assert back.pos_embed.data_ptr() != lg.pos_embed.data_ptr()  # copies, not the learngene's tensors
    path = tmp_path / "vit.safetensors"
    save_file({k: v.to(torch.bfloat16).contiguous() for k, v in vit.state_dict().items()}, str(path))
    assert {p.dtype for p in lets_core.Learngene.from_checkpoint(lg_cfg, path).parameters()} == {torch.bfloat16}
    with torch.device("meta"):
        on_meta = lets_core.Learngene(lg_cfg)
    assert {p.device.type for p in on_meta.to_timm().parameters()} == {"meta"}


def test_a_state_of_mixed_or_integer_dtypes_is_refused(lg_cfg):
    state = build_vit(lg_cfg, lg_cfg.embed_dim, lg_cfg.depth).state_dict()
    mixed = dict(state, **{"head.bias": state["head.bias"].double()})
    with pytest.raises(lets_core.BundleError, match=r"mixes dtypes \(torch.float32: 'patch_embed.proj.weight' and "
                                                    r"\d+ more; torch.float64: 'head.bias'\).*convert the model or "
                                                    r"state to one dtype"):
        lets_core.Learngene.from_timm(lg_cfg, mixed)
    integer = dict(state, **{"head.bias": state["head.bias"].long()})
    with pytest.raises(lets_core.BundleError, match="key 'head.bias' is torch.int64; a learngene's tensors are "
                                                    "floating point"):
        lets_core.Learngene(lg_cfg, integer)
