"""Weight generation shared by the Aux-Net and every Des-Net.

One function turns (learngene, width factors, G, pos_embed, depth plan) into a timm state dict.
The Aux-Net calls it with all F rows and the identity plan; a Des-Net with selected rows and its
own plan. Sharing it is what makes "select everything" give back the Aux-Net exactly.

Work per call: each learngene block is widened once (batched over blocks), each G row (distinct
Aux layer) is mixed once, and tied or repeated layers reuse the same tensors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from torch import Tensor

from . import ops
from .config import LetsConfig
from .learngene import Learngene
from .transforms import BIAS, WEIGHT, DepthTransform


@dataclass
class WidthFactors:
    """F matrices restricted to the new neurons a network keeps (all of them for the Aux-Net).

    Shapes with n kept residual neurons: f_e, f_cls (n, d); f_qkv (L_g, 3, n, d);
    f_ffn (L_g, r n, r d).
    """

    f_e: Tensor
    f_qkv: Tensor
    f_ffn: Tensor
    f_cls: Tensor


def generate_state(cfg: LetsConfig, lg: Learngene, fac: WidthFactors, depth: DepthTransform,
                   pos_embed: Tensor, plan: Sequence[int]) -> dict[str, Tensor]:
    """The timm state dict of the network whose block ``i`` is Aux layer ``plan[i]``.

    ``pos_embed`` is the (1, N, width) position embedding already restricted to the kept columns.
    """
    blocks = lg.blocks
    f_e_out = fac.f_e[None, None]  # shared by all blocks, one chunk
    f_e_in = fac.f_e[None]

    def mix(name: str, weight: Tensor, bias: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        w = ops.group_mix(weight, depth.coeff(name, WEIGHT))
        b = None if bias is None else ops.group_mix(bias, depth.coeff(name, BIAS))
        return w, b

    layers = {}
    layers["norm1"] = mix("norm1", ops.widen_vector(blocks["norm1_w"], f_e_out),
                          ops.widen_vector(blocks["norm1_b"], f_e_out))
    qkv_w, qkv_b = ops.widen(blocks["qkv_w"], blocks["qkv_b"], fac.f_qkv, f_e_in)
    layers["attn.qkv"] = (ops.group_mix(qkv_w, depth.qkv_coeff(WEIGHT)),
                          ops.group_mix(qkv_b, depth.qkv_coeff(BIAS)))
    # proj consumes the attention output, whose new neurons are those of v.
    layers["attn.proj"] = mix("proj", *ops.widen(blocks["proj_w"], blocks["proj_b"], f_e_out, fac.f_qkv[:, 2]))
    layers["norm2"] = mix("norm2", ops.widen_vector(blocks["norm2_w"], f_e_out),
                          ops.widen_vector(blocks["norm2_b"], f_e_out))
    layers["mlp.fc1"] = mix("fc1", *ops.widen(blocks["fc1_w"], blocks["fc1_b"], fac.f_ffn[:, None], f_e_in))
    layers["mlp.fc2"] = mix("fc2", *ops.widen(blocks["fc2_w"], blocks["fc2_b"], f_e_out, fac.f_ffn))

    d, width = cfg.learngene.embed_dim, pos_embed.shape[-1]
    patch_w, patch_b = ops.widen(lg.patch_w.reshape(1, d, -1), lg.patch_b[None], f_e_out, None)
    head_w, _ = ops.widen(lg.head_w[None], None, None, fac.f_cls[None])
    state = {
        "pos_embed": pos_embed,
        "patch_embed.proj.weight": patch_w.reshape(width, *lg.patch_w.shape[1:]),
        "patch_embed.proj.bias": patch_b[0],
        "fc_norm.weight": ops.widen_vector(lg.fc_norm_w[None], f_e_out)[0],
        "fc_norm.bias": ops.widen_vector(lg.fc_norm_b[None], f_e_out)[0],
        "head.weight": head_w[0],
        "head.bias": lg.head_b,  # classes are not widened
    }
    # unbind, not w[row]: the backward of one unbind is a single stack of the row gradients,
    # while each w[row] would backpropagate through a zero-filled tensor the size of all rows
    # (measured: 30% of a paper-size generation step went to those fills).
    rows = {module: (w.unbind(0), b.unbind(0)) for module, (w, b) in layers.items()}
    tie = cfg.transform.tie_length
    for i, aux_layer in enumerate(plan):
        row = aux_layer // tie
        for module, (w, b) in rows.items():
            state[f"blocks.{i}.{module}.weight"] = w[row]
            state[f"blocks.{i}.{module}.bias"] = b[row]
    return state
