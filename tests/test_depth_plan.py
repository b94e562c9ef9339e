"""Automatic and explicit depth plans."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lets_core
from lets_core.depth_plan import check_plan

from core_helpers import small_configs


def test_paper_plan_matches_published_example():
    assert lets_core.auto_depth_plan(lets_core.presets.paper(), 12) == [0, 2, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14]


def test_paper_plan_at_aux_depth_is_identity():
    assert lets_core.auto_depth_plan(lets_core.presets.paper(), 16) == list(range(16))


def test_paper_shallow_plans_keep_first_and_last():
    cfg = lets_core.presets.paper()
    assert lets_core.auto_depth_plan(cfg, 2) == [0, 14]
    assert lets_core.auto_depth_plan(cfg, 4) == [0, 4, 10, 14]
    assert lets_core.auto_depth_plan(cfg, 8) == [0, 2, 4, 6, 8, 10, 12, 14]
    assert lets_core.auto_depth_plan(cfg, 1) == [0]


def test_deep_plan_repeats_last_layer_of_run():
    # 24 layers over 8 runs of 2: three copies each, the third copy reuses the run's last layer.
    plan = lets_core.auto_depth_plan(lets_core.presets.paper(), 24)
    assert plan[:3] == [0, 1, 1] and plan[-3:] == [14, 15, 15]


@settings(max_examples=40, deadline=None)
@given(cfg=small_configs(), depth=st.integers(1, 20))
def test_plan_properties(cfg, depth):
    plan = lets_core.auto_depth_plan(cfg, depth)
    tie, runs = cfg.transform.tie_length, cfg.num_rows
    assert len(plan) == depth
    assert plan == sorted(plan)                      # configurations keep their order
    assert all(0 <= a < cfg.aux_depth for a in plan)
    used_runs = [a // tie for a in plan]
    if depth >= runs:
        counts = [used_runs.count(r) for r in range(runs)]
        assert max(counts) - min(counts) <= 1        # copies as even as possible
        center = (runs - 1) / 2
        extra = sorted((r for r in range(runs) if counts[r] > min(counts)), key=lambda r: abs(r - center))
        rest = [r for r in range(runs) if counts[r] == min(counts)]
        if extra and rest:                           # extra copies sit nearer the middle
            assert max(abs(r - center) for r in extra) <= min(abs(r - center) for r in rest)
    else:
        assert len(set(used_runs)) == depth          # distinct configurations
        assert used_runs[0] == 0
        if depth > 1:
            assert used_runs[-1] == runs - 1


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "3"])
def test_bad_depth_is_clear(bad):
    with pytest.raises(lets_core.DesSizeError, match="depth must be an integer >= 1"):
        lets_core.auto_depth_plan(lets_core.presets.tiny(), bad)


@pytest.mark.parametrize("plan, shown", [([0, 8], "8"), ([-1], "-1"), ([0, 1.5], "1.5"), ([], "empty")])
def test_bad_explicit_plan_is_clear(plan, shown):
    with pytest.raises(lets_core.DesSizeError, match=shown):
        check_plan(lets_core.presets.tiny(), plan)


def test_plans_need_order_and_auto_plans_need_a_config():
    cfg = lets_core.presets.tiny()
    with pytest.raises(lets_core.DesSizeError, match="a depth plan must be an ordered sequence.*; got set"):
        check_plan(cfg, {0, 6})
    assert check_plan(cfg, [6, 0]) == [6, 0]
    with pytest.raises(TypeError, match="auto_depth_plan needs a LetsConfig, got AuxNet; pass its .cfg"):
        lets_core.auto_depth_plan(lets_core.AuxNet(cfg), 6)
