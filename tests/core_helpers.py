"""Shared builders for the core tests: small random configurations and a spec-literal generator."""

from __future__ import annotations

import torch
from hypothesis import strategies as st

import lets_core
from lets_core.config import F_INIT_SCHEMES, G_INIT_SCHEMES, G_MODULE_TYPES, LearngeneConfig, LetsConfig, TransformConfig


@st.composite
def small_configs(draw, allow_zero_delta: bool = True) -> LetsConfig:
    """Random small but complete LeTs layouts: widths, depths, group sizes, tie lengths."""
    head_dim = draw(st.sampled_from([4, 8]))
    heads = draw(st.integers(1, 2))
    extra_heads = draw(st.integers(0 if allow_zero_delta else 1, 2))
    group_size = draw(st.integers(1, 2))
    groups = draw(st.integers(1, 2))
    tie = draw(st.integers(1, 2))
    runs_per_group = draw(st.integers(1, 2))
    return LetsConfig(
        learngene=LearngeneConfig(
            img_size=8, patch_size=4, in_chans=draw(st.integers(1, 2)), num_classes=3,
            embed_dim=heads * head_dim, depth=group_size * groups, head_dim=head_dim,
            mlp_ratio=float(draw(st.sampled_from([1, 2]))),
        ),
        aux_embed_dim=(heads + extra_heads) * head_dim,
        aux_depth=groups * tie * runs_per_group,
        transform=TransformConfig(group_size=group_size, tie_length=tie,
                                  f_init=draw(st.sampled_from(list(F_INIT_SCHEMES))),
                                  g_init=draw(st.sampled_from(list(G_INIT_SCHEMES)))),
    )


def expand(f: torch.Tensor) -> torch.Tensor:
    """E(F) = [I; F] of the specification, for F of shape (m, n)."""
    return torch.cat([torch.eye(f.shape[1], dtype=f.dtype), f], dim=0)


def spec_layer(aux: lets_core.AuxNet, aux_layer: int, keep_e: torch.Tensor, keep_heads: list[torch.Tensor],
               keep_mlp: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    """One generated layer, computed literally from the spec's formulas, module by module.

    keep_e: residual rows of F_e kept; keep_heads / keep_mlp: per group, new head indices and
    new MLP neuron indices kept. Independent of lets_core.generation and lets_core.ops.
    """
    cfg, lg, w, g = aux.cfg, aux.learngene, aux.width, aux.depth.g.detach()
    s, hd = cfg.transform.group_size, cfg.learngene.head_dim
    row = aux_layer // cfg.transform.tie_length
    group = cfg.group_of_row(row)
    heads = keep_heads[group]
    head_rows = (heads[:, None] * hd + torch.arange(hd)).reshape(-1)
    f_e = w.f_e.detach()[keep_e]
    out: dict[str, torch.Tensor] = {}

    def coeff(module: str, kind: int, m: int) -> float:
        return g[G_MODULE_TYPES.index(module), kind, row, m]

    for m in range(s):
        j = s * group + m
        b = {k: v[j].detach() for k, v in lg.blocks.items()}
        f_q, f_k, f_v = (w.f_qkv.detach()[j, c][head_rows] for c in range(3))
        f_ffn = w.f_ffn.detach()[j][keep_mlp[group]]
        d = cfg.learngene.embed_dim
        q_w, k_w, v_w = b["qkv_w"].split(d)
        q_b, k_b, v_b = b["qkv_b"].split(d)
        terms = {
            "norm1.weight": coeff("norm1", 0, m) * (expand(f_e) @ b["norm1_w"]),
            "norm1.bias": coeff("norm1", 1, m) * (expand(f_e) @ b["norm1_b"]),
            "attn.qkv.weight": torch.cat([
                coeff(t, 0, m) * (expand(f) @ wt @ expand(f_e).T)
                for t, f, wt in (("q", f_q, q_w), ("k", f_k, k_w), ("v", f_v, v_w))]),
            "attn.qkv.bias": torch.cat([
                coeff(t, 1, m) * (expand(f) @ bt) for t, f, bt in (("q", f_q, q_b), ("k", f_k, k_b), ("v", f_v, v_b))]),
            "attn.proj.weight": coeff("proj", 0, m) * (expand(f_e) @ b["proj_w"] @ expand(f_v).T),
            "attn.proj.bias": coeff("proj", 1, m) * (expand(f_e) @ b["proj_b"]),
            "norm2.weight": coeff("norm2", 0, m) * (expand(f_e) @ b["norm2_w"]),
            "norm2.bias": coeff("norm2", 1, m) * (expand(f_e) @ b["norm2_b"]),
            "mlp.fc1.weight": coeff("fc1", 0, m) * (expand(f_ffn) @ b["fc1_w"] @ expand(f_e).T),
            "mlp.fc1.bias": coeff("fc1", 1, m) * (expand(f_ffn) @ b["fc1_b"]),
            "mlp.fc2.weight": coeff("fc2", 0, m) * (expand(f_e) @ b["fc2_w"] @ expand(f_ffn).T),
            "mlp.fc2.bias": coeff("fc2", 1, m) * (expand(f_e) @ b["fc2_b"]),
        }
        for key, value in terms.items():
            out[key] = out[key] + value if key in out else value
    return out


def continuous_keep(cfg: LetsConfig, heads: int) -> tuple[torch.Tensor, list, list]:
    """Index sets of the `continuous` strategy for a Des-Net with ``heads`` heads."""
    lg = cfg.learngene
    new = heads * lg.head_dim - lg.embed_dim
    return (torch.arange(new), [torch.arange(new // lg.head_dim)] * cfg.num_groups,
            [torch.arange(lg.mlp_hidden(new))] * cfg.num_groups)
