"""The authors' released way of generating the Aux-Net, transcribed as a benchmark baseline.

Written from the algorithm's description (issue 13), not from lets_core's code:

- every widened matrix takes two products, by concatenation: first the input side,
  ``W_t = [W, W F_in^T]``, then the output side, ``[W_t ; F_out W_t]`` (one product for a vector,
  ``[v ; F v]``, and for a layer widened on one side only);
- every Aux layer is built on its own: for each of the L_a layers, each learngene block of its
  group is widened again (nothing is shared between tied layers or layers of one group);
- the depth mix stacks the group's widened tensors on a new last axis, multiplies by the layer's
  G coefficients and sums that axis.

q, k and v are widened separately (each with its own F and G coefficients) and concatenated into
timm's fused qkv. The result is the same network as :meth:`lets_core.AuxNet.generate`
(:func:`check_same`); :func:`generation_matmul_flops` counts the work of both.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.func import functional_call
from torch.utils.flop_counter import FlopCounterMode

import lets_core
from lets_core.config import G_MODULE_TYPES

WEIGHT, BIAS = 0, 1


def widen(w: Tensor, f_out: Tensor | None, f_in: Tensor | None) -> Tensor:
    """``[W, W F_in^T]`` first, then ``[W_t ; F_out W_t]``: two products for a matrix widened on both sides."""
    if f_in is not None:
        w = torch.cat([w, w @ f_in.T], dim=1)
    if f_out is not None:
        w = torch.cat([w, f_out @ w], dim=0)
    return w


def widen_vector(v: Tensor, f: Tensor) -> Tensor:
    return torch.cat([v, f @ v])


def mix(tensors: list[Tensor], coeff: Tensor) -> Tensor:
    """The depth mix: stack on a new last axis, multiply by the coefficients, sum that axis."""
    return (torch.stack(tensors, dim=-1) * coeff).sum(dim=-1)


def released_code_state(aux: lets_core.AuxNet) -> dict[str, Tensor]:
    cfg, lg, w = aux.cfg, aux.learngene, aux.width
    blocks, g = lg.blocks, aux.depth.g
    s, d = cfg.transform.group_size, cfg.learngene.embed_dim
    state = {
        "pos_embed": aux.pos_embed,
        "patch_embed.proj.weight": widen(lg.patch_w.reshape(d, -1), w.f_e, None).reshape(-1, *lg.patch_w.shape[1:]),
        "patch_embed.proj.bias": widen_vector(lg.patch_b, w.f_e),
        "fc_norm.weight": widen_vector(lg.fc_norm_w, w.f_e),
        "fc_norm.bias": widen_vector(lg.fc_norm_b, w.f_e),
        "head.weight": widen(lg.head_w, None, w.f_cls),
        "head.bias": lg.head_b,
    }
    for i in range(cfg.aux_depth):
        row = cfg.row_of(i)
        first = s * cfg.group_of_row(row)
        wide: dict[tuple[str, int], list[Tensor]] = {}  # (G module type, weight|bias) -> one tensor per block

        def put(module: str, kind: int, value: Tensor) -> None:
            wide.setdefault((module, kind), []).append(value)

        for j in range(first, first + s):  # re-widen every block of the group, for this layer alone
            f_q, f_k, f_v = w.f_qkv[j]
            q, k, v = blocks["qkv_w"][j].chunk(3)
            qb, kb, vb = blocks["qkv_b"][j].chunk(3)
            for name, f, wt, bt in (("q", f_q, q, qb), ("k", f_k, k, kb), ("v", f_v, v, vb)):
                put(name, WEIGHT, widen(wt, f, w.f_e))
                put(name, BIAS, widen_vector(bt, f))
            for norm in ("norm1", "norm2"):
                put(norm, WEIGHT, widen_vector(blocks[f"{norm}_w"][j], w.f_e))
                put(norm, BIAS, widen_vector(blocks[f"{norm}_b"][j], w.f_e))
            put("proj", WEIGHT, widen(blocks["proj_w"][j], w.f_e, f_v))
            put("proj", BIAS, widen_vector(blocks["proj_b"][j], w.f_e))
            put("fc1", WEIGHT, widen(blocks["fc1_w"][j], w.f_ffn[j], w.f_e))
            put("fc1", BIAS, widen_vector(blocks["fc1_b"][j], w.f_ffn[j]))
            put("fc2", WEIGHT, widen(blocks["fc2_w"][j], w.f_e, w.f_ffn[j]))
            put("fc2", BIAS, widen_vector(blocks["fc2_b"][j], w.f_e))
        layer = {key: mix(tensors, g[G_MODULE_TYPES.index(key[0]), key[1], row]) for key, tensors in wide.items()}
        prefix = f"blocks.{i}."
        for kind, suffix in ((WEIGHT, "weight"), (BIAS, "bias")):
            state[prefix + f"attn.qkv.{suffix}"] = torch.cat([layer[(n, kind)] for n in "qkv"])
            state[prefix + f"attn.proj.{suffix}"] = layer[("proj", kind)]
            state[prefix + f"norm1.{suffix}"] = layer[("norm1", kind)]
            state[prefix + f"norm2.{suffix}"] = layer[("norm2", kind)]
            state[prefix + f"mlp.fc1.{suffix}"] = layer[("fc1", kind)]
            state[prefix + f"mlp.fc2.{suffix}"] = layer[("fc2", kind)]
    return state


class ReleasedCodeAuxNet(nn.Module):
    """The same parameters as ``aux``, generated the released way at every forward."""

    def __init__(self, aux: lets_core.AuxNet) -> None:
        super().__init__()
        self.aux = aux

    def forward(self, x: Tensor) -> Tensor:
        return functional_call(self.aux._skeleton, released_code_state(self.aux), (x,))


def check_same(aux: lets_core.AuxNet) -> float:
    """Largest difference between the released-way weights and lets_core's; ~1e-6 in float32."""
    with torch.no_grad():
        ours, theirs = aux.generate(), released_code_state(aux)
        assert ours.keys() == theirs.keys()
        return max((ours[k].float() - theirs[k].float()).abs().max().item() for k in ours)


def matmul_flops(fn) -> int:
    """FLOPs (2 per multiply-add) of the matrix products ``fn()`` runs, counted by torch's FlopCounterMode."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def generation_matmul_flops(aux: lets_core.AuxNet, lets_reference_ops) -> dict[str, int]:
    """Forward generation work of both ways, in matmul FLOPs.

    ``lets_reference_ops``: a context manager running lets_core's ops on their pure-PyTorch
    reference, which follows the same product order (cost model) as the compiled kernels, so that
    the counter sees the products. lets_core's count includes its depth mixes (done as batched
    products); the released way's mixes are elementwise and not counted, so the ratio understates
    the difference in work.
    """
    with lets_reference_ops():
        ours = matmul_flops(aux.generate)
    return {"released": matmul_flops(lambda: released_code_state(aux)), "lets": ours}
