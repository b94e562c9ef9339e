"""The block layout table (lets_core.block_layout) against timm's own ViT block."""

from __future__ import annotations

import pytest
from timm.models.vision_transformer import VisionTransformer

from lets_core.block_layout import BLOCK_MODULES, block_shapes
from lets_core.learngene import BLOCK_KEYS


@pytest.mark.parametrize("width, heads, mlp_ratio", [(32, 2, 4.0), (48, 3, 2.0), (64, 4, 3.0)])
def test_block_shapes_are_those_of_a_timm_block(width, heads, mlp_ratio):
    vit = VisionTransformer(img_size=8, patch_size=4, in_chans=1, num_classes=3, embed_dim=width, depth=1,
                            num_heads=heads, mlp_ratio=mlp_ratio, qkv_bias=True, class_token=False,
                            global_pool="avg", fc_norm=True, device="meta")
    timm_block = {k.removeprefix("blocks.0."): tuple(v.shape) for k, v in vit.state_dict().items()
                  if k.startswith("blocks.0.")}
    assert block_shapes(width, int(width * mlp_ratio)) == timm_block


def test_the_learngene_stacks_every_block_parameter_once_in_timm_order():
    keys = [k for m in BLOCK_MODULES for k in (m.weight_key(), m.bias_key())]
    assert list(BLOCK_KEYS.values()) == keys
    assert len(set(BLOCK_KEYS)) == len(keys)


def test_layer_norms_are_exactly_the_modules_without_input_columns():
    assert [m.name for m in BLOCK_MODULES if m.is_norm] == ["norm1", "norm2"]
