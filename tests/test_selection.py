"""Width selection (lets_core/selection.py): how each strategy ranks the residual rows, heads and
MLP neurons, and which widths a Des-Net may have."""

from __future__ import annotations

import pytest
import torch

import lets_core
from lets_core.selection import select_width


@pytest.fixture(scope="module")
def aux():
    torch.manual_seed(0)
    return lets_core.AuxNet(lets_core.presets.tiny()).eval()


def test_norm_strategies_rank_residual_rows_by_their_norm(aux):
    cfg = aux.cfg
    with torch.no_grad():
        # Rows 0..3 of [F_e | F_cls]: L1 and L2 disagree between rows 1 and 2.
        f = torch.zeros(cfg.delta, 2 * cfg.learngene.embed_dim)
        f[:, 0] = 0.01 * torch.arange(cfg.delta)       # a strict order for the other rows
        f[1, :4] = 1.0                                   # L1 = 4, L2 = 2
        f[2, 0] = 3.0                                    # L1 = 3, L2 = 3
        d = cfg.learngene.embed_dim
        saved = aux.width.f_e.clone(), aux.width.f_cls.clone()
        aux.width.f_e.copy_(f[:, :d])
        aux.width.f_cls.copy_(f[:, d:])
    try:
        new = 16
        assert select_width(cfg, aux.width, new, "top-l1").residual.tolist() == sorted([1, 2] + list(range(31, 17, -1)))
        top_l2 = select_width(cfg, aux.width, 1, "top-l2").residual.tolist()
        top_l1 = select_width(cfg, aux.width, 1, "top-l1").residual.tolist()
        assert top_l2 == [2] and top_l1 == [1]
        assert select_width(cfg, aux.width, 2, "bottom-l2").residual.tolist() == [0, 3]
        assert select_width(cfg, aux.width, new, "continuous").residual.tolist() == list(range(new))
    finally:
        with torch.no_grad():
            aux.width.f_e.copy_(saved[0])
            aux.width.f_cls.copy_(saved[1])


def test_heads_are_ranked_per_group_over_all_blocks_and_qkv(aux):
    cfg = aux.cfg  # tiny: 2 groups of 2 blocks, 2 new heads of 16
    with torch.no_grad():
        saved = aux.width.f_qkv.clone()
        aux.width.f_qkv.fill_(0.01)
        aux.width.f_qkv[1, 1, 16:32] = 5.0   # group 0: head 1 large, only in block 1's F_k
        aux.width.f_qkv[2, 2, 0:16] = 5.0    # group 1: head 0 large, only in block 2's F_v
    try:
        assert [h.tolist() for h in select_width(cfg, aux.width, 16, "top-l2").heads] == [[1], [0]]
        assert [h.tolist() for h in select_width(cfg, aux.width, 16, "bottom-l1").heads] == [[0], [1]]
    finally:
        with torch.no_grad():
            aux.width.f_qkv.copy_(saved)


def test_mlp_neurons_are_ranked_per_group(aux):
    cfg = aux.cfg
    with torch.no_grad():
        saved = aux.width.f_ffn.clone()
        aux.width.f_ffn.fill_(0.01)
        aux.width.f_ffn[0, 50] = 1.0  # group 0 (blocks 0, 1)
        aux.width.f_ffn[3, 60] = 1.0  # group 1 (blocks 2, 3)
    try:
        mlp = select_width(cfg, aux.width, 16, "top-l2").mlp  # 32 of 64 new MLP neurons
        # Ties keep lower indices, so a high index is chosen only for its own large norm.
        assert 50 in mlp[0].tolist() and 60 not in mlp[0].tolist()
        assert 60 in mlp[1].tolist() and 50 not in mlp[1].tolist()
        assert all(m.tolist() == sorted(m.tolist()) and len(m) == 32 for m in mlp)
    finally:
        with torch.no_grad():
            aux.width.f_ffn.copy_(saved)


@pytest.mark.parametrize("heads, message", [
    (1, r"heads=1 .*\[2, 4\]"), (5, r"heads=5 .*\[2, 4\]"), (2.5, r"heads=2.5"), (None, r"heads=None"),
])
def test_bad_width_is_clear(aux, heads, message):
    with pytest.raises(lets_core.DesSizeError, match=message):
        lets_core.emit_des(aux, heads=heads, depth=4)
