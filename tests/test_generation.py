"""Weight generation (lets_core/generation.py) against a literal reading of the specification's
formulas, module by module (core_helpers.spec_layer)."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import lets_core

from core_helpers import continuous_keep, small_configs, spec_layer

SETTINGS = settings(max_examples=15, deadline=None)


@SETTINGS
@given(cfg=small_configs(allow_zero_delta=False), seed=st.integers(0, 2**16), data=st.data())
def test_generation_matches_spec_formulas(cfg, seed, data):
    torch.manual_seed(seed)
    aux = lets_core.AuxNet(cfg)
    heads = data.draw(st.integers(cfg.learngene.num_heads, cfg.aux_heads))
    plan = data.draw(st.lists(st.integers(0, cfg.aux_depth - 1), min_size=1, max_size=4))
    des = lets_core.emit_des(aux, heads=heads, plan=plan, strategy="continuous")
    state = des.state_dict()
    keep = continuous_keep(cfg, heads)
    for i, aux_layer in enumerate(plan):
        for key, value in spec_layer(aux, aux_layer, *keep).items():
            torch.testing.assert_close(state[f"blocks.{i}.{key}"], value, rtol=1e-5, atol=1e-6)
