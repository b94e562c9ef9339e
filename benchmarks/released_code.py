"""The "released-code way" of generating the Aux-Net, kept only as a benchmark baseline.

The authors' released code builds every Aux layer on its own: for each of the L_a layers it widens
each learngene block of its group again, assembling E(F_out) W E(F_in)^T from four products with
concatenations, then mixes with G. Nothing is shared between tied layers or between layers of one
group, so each block is widened L_a / (L_g / s) times per step instead of once. The result is the
same network as :meth:`lets_core.AuxNet.generate` (checked by ``check_same``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.func import functional_call

import lets_core
from lets_core.config import G_MODULE_TYPES


def _grow(w: Tensor, f_out: Tensor | None, f_in: Tensor | None) -> Tensor:
    """[[W, W F_in^T], [F_out W, F_out W F_in^T]] with each product computed separately."""
    if f_in is not None and f_out is not None:
        top = torch.cat([w, w @ f_in.T], dim=1)
        bottom = torch.cat([f_out @ w, f_out @ w @ f_in.T], dim=1)
        return torch.cat([top, bottom], dim=0)
    if f_in is not None:
        return torch.cat([w, w @ f_in.T], dim=1)
    if f_out is not None:
        return torch.cat([w, f_out @ w], dim=0)
    return w


def _grow_vec(v: Tensor, f: Tensor) -> Tensor:
    return torch.cat([v, f @ v])


def released_code_state(aux: lets_core.AuxNet) -> dict[str, Tensor]:
    cfg, lg, w = aux.cfg, aux.learngene, aux.width
    blocks, g = lg.blocks, aux.depth.g
    s, d = cfg.transform.group_size, cfg.learngene.embed_dim
    state = {
        "pos_embed": aux.pos_embed,
        "patch_embed.proj.weight": _grow(lg.patch_w.reshape(d, -1), w.f_e, None).reshape(-1, *lg.patch_w.shape[1:]),
        "patch_embed.proj.bias": _grow_vec(lg.patch_b, w.f_e),
        "fc_norm.weight": _grow_vec(lg.fc_norm_w, w.f_e),
        "fc_norm.bias": _grow_vec(lg.fc_norm_b, w.f_e),
        "head.weight": _grow(lg.head_w, None, w.f_cls),
        "head.bias": lg.head_b,
    }
    for i in range(cfg.aux_depth):
        row = cfg.row_of(i)
        group = cfg.group_of_row(row)
        acc: dict[str, Tensor] = {}

        def add(key: str, module: str, kind: int, m: int, value: Tensor) -> None:
            term = g[G_MODULE_TYPES.index(module), kind, row, m] * value
            acc[key] = acc[key] + term if key in acc else term

        for m in range(s):
            j = s * group + m
            f_q, f_k, f_v = w.f_qkv[j]
            q, k, v = blocks["qkv_w"][j].chunk(3)
            qb, kb, vb = blocks["qkv_b"][j].chunk(3)
            for name, f, wt, bt in (("q", f_q, q, qb), ("k", f_k, k, kb), ("v", f_v, v, vb)):
                add(f"{name}.weight", name, 0, m, _grow(wt, f, w.f_e))
                add(f"{name}.bias", name, 1, m, _grow_vec(bt, f))
            for norm in ("norm1", "norm2"):
                add(f"{norm}.weight", norm, 0, m, _grow_vec(blocks[f"{norm}_w"][j], w.f_e))
                add(f"{norm}.bias", norm, 1, m, _grow_vec(blocks[f"{norm}_b"][j], w.f_e))
            add("attn.proj.weight", "proj", 0, m, _grow(blocks["proj_w"][j], w.f_e, f_v))
            add("attn.proj.bias", "proj", 1, m, _grow_vec(blocks["proj_b"][j], w.f_e))
            add("mlp.fc1.weight", "fc1", 0, m, _grow(blocks["fc1_w"][j], w.f_ffn[j], w.f_e))
            add("mlp.fc1.bias", "fc1", 1, m, _grow_vec(blocks["fc1_b"][j], w.f_ffn[j]))
            add("mlp.fc2.weight", "fc2", 0, m, _grow(blocks["fc2_w"][j], w.f_e, w.f_ffn[j]))
            add("mlp.fc2.bias", "fc2", 1, m, _grow_vec(blocks["fc2_b"][j], w.f_e))
        acc["attn.qkv.weight"] = torch.cat([acc.pop(f"{n}.weight") for n in "qkv"])
        acc["attn.qkv.bias"] = torch.cat([acc.pop(f"{n}.bias") for n in "qkv"])
        state.update({f"blocks.{i}.{key}": value for key, value in acc.items()})
    return state


class ReleasedCodeAuxNet(nn.Module):
    """The same parameters as ``aux``, generated the released-code way at every forward."""

    def __init__(self, aux: lets_core.AuxNet) -> None:
        super().__init__()
        self.aux = aux

    def forward(self, x: Tensor) -> Tensor:
        return functional_call(self.aux._skeleton, released_code_state(self.aux), (x,))


def check_same(aux: lets_core.AuxNet) -> float:
    """Largest difference between the released-code weights and lets_core's; should be ~1e-6."""
    with torch.no_grad():
        ours, theirs = aux.generate(), released_code_state(aux)
        return max((ours[k].float() - theirs[k].float()).abs().max().item() for k in ours)
