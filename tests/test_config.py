"""Configuration validation, JSON round-trip and presets."""

from __future__ import annotations

import pytest
import lets_core
from lets_core.config import LearngeneConfig, LetsConfig, TransformConfig


@pytest.mark.parametrize("preset", [lets_core.presets.paper, lets_core.presets.tiny])
def test_json_round_trip(preset):
    cfg = preset()
    assert LetsConfig.from_json(cfg.to_json()) == cfg


def test_paper_preset_is_the_spec():
    cfg = lets_core.presets.paper()
    lg = cfg.learngene
    assert (lg.img_size, lg.patch_size, lg.in_chans, lg.num_classes) == (224, 16, 3, 1000)
    assert (lg.embed_dim, lg.depth, lg.num_heads, lg.head_dim, lg.mlp_ratio) == (384, 8, 6, 64, 4.0)
    assert (cfg.aux_embed_dim, cfg.aux_depth, cfg.aux_heads) == (768, 16, 12)
    assert (cfg.transform.group_size, cfg.transform.tie_length) == (2, 2)
    assert (cfg.num_groups, cfg.layers_per_group, cfg.num_rows) == (4, 4, 8)


@pytest.mark.parametrize("kwargs, message", [
    (dict(embed_dim=40, head_dim=16), "embed_dim 40 must be a multiple of head_dim 16"),
    (dict(img_size=30, patch_size=7), "img_size 30 must be a multiple of patch_size 7"),
    (dict(depth=0), r"depth must be a positive integer, got 0"),
    (dict(mlp_ratio=0.3, head_dim=16, embed_dim=32), r"mlp_ratio 0.3 .* not an integer"),
    (dict(num_classes=-2), r"num_classes must be a positive integer, got -2"),
])
def test_bad_learngene_values_are_named(kwargs, message):
    with pytest.raises(lets_core.LetsConfigError, match=message):
        LearngeneConfig(**kwargs)


@pytest.mark.parametrize("kwargs, message", [
    (dict(f_init="zeros"), r"f_init must be one of \['normalized-uniform', 'net2net', 'normal'\], got 'zeros'"),
    (dict(g_init="x"), r"g_init must be one of \['paper', 'uniform', 'spread'\]"),
    (dict(group_size=0), "group_size must be a positive integer, got 0"),
    (dict(f_noise=-1.0), "f_noise must be a finite number >= 0, got -1.0"),
    (dict(f_noise=float("inf")), "f_noise must be a finite number >= 0, got inf"),
    (dict(g_noise=1e308 * 10), "g_noise must be a finite number >= 0, got inf"),
])
def test_bad_transform_values_are_named(kwargs, message):
    with pytest.raises(lets_core.LetsConfigError, match=message):
        TransformConfig(**kwargs)


def test_bad_aux_layouts_are_named():
    lg = LearngeneConfig()
    with pytest.raises(lets_core.LetsConfigError, match=r"aux_embed_dim 700 must be a multiple of head_dim 64"):
        LetsConfig(learngene=lg, aux_embed_dim=700)
    with pytest.raises(lets_core.LetsConfigError, match=r"aux_embed_dim 320 .* at least the learngene width 384"):
        LetsConfig(learngene=lg, aux_embed_dim=320)
    with pytest.raises(lets_core.LetsConfigError, match=r"group_size 3 must divide the learngene depth 8; allowed: \[1, 2, 4, 8\]"):
        LetsConfig(learngene=lg, transform=TransformConfig(group_size=3))
    with pytest.raises(lets_core.LetsConfigError, match=r"aux_depth 12 cannot be laid out: .* = 8"):
        LetsConfig(learngene=lg, aux_depth=12)
    with pytest.raises(lets_core.LetsConfigError, match=r"drop_path_rate must be in \[0, 1\), got 1.5"):
        LetsConfig(drop_path_rate=1.5)


def test_unknown_json_keys_are_named():
    data = lets_core.presets.tiny().to_dict()
    data["learngene"]["heads"] = 3
    with pytest.raises(lets_core.LetsConfigError, match=r"unknown keys \['heads'\] in learngene"):
        LetsConfig.from_dict(data)


@pytest.mark.parametrize("build, message", [
    (lambda: LetsConfig(learngene={"depth": 4}), "LetsConfig.learngene must be a LearngeneConfig"),
    (lambda: LetsConfig(transform=None), "LetsConfig.transform must be a TransformConfig"),
    (lambda: lets_core.presets.ligo(None), "ligo takes a LetsConfig"),
])
def test_nested_configs_of_the_wrong_type_are_named(build, message):
    """They failed later as AttributeError: 'dict' object has no attribute 'head_dim'."""
    with pytest.raises(lets_core.LetsConfigError, match=message):
        build()


def test_storage_report_takes_integer_size_pairs_only():
    aux = lets_core.AuxNet(lets_core.presets.tiny())
    for sizes in ([(3.9, 5.7)], [("3", "5")], [(3,)], [3]):  # 3.9 was truncated to 3, strings accepted
        with pytest.raises(lets_core.DesSizeError, match="each Des size must be a"):
            lets_core.storage_report(aux, sizes)
