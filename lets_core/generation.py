"""Weight generation shared by the Aux-Net and every Des-Net.

One function turns (learngene, width factors, G, pos_embed, depth plan) into a timm state dict.
The Aux-Net calls it with all F rows and the identity plan; a Des-Net with selected rows and its
own plan. Sharing it is what makes "select everything" give back the Aux-Net exactly.

Work per call: one ``ops.widen_mix_linear`` per module type produces every distinct Aux layer (G
row); it applies each per-block factor once per learngene block and each shared factor once per
distinct layer, in the cheapest order (``ops/widen_mix_order.py``). Tied or repeated layers reuse the
same tensors.

The "ligo" layout (the ablation LeTs(LiGO), :class:`lets_core.TransformConfig`) reverses the
order: one ``ops.group_mix`` per module type mixes the learngene blocks into every distinct Aux
layer, then one ``ops.widen_linear`` widens each mixed layer with its own F set. Everything
after that (stem, head, plan, Des-Net selection) is the same code for both layouts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import torch
from torch import Tensor
from torch.autograd import forward_ad

from . import ops
from .block_layout import BLOCK_MODULES, BlockModule
from .config import LetsConfig
from .learngene import Learngene
from .width_depth import BIAS, WEIGHT, DepthTransform


@dataclass
class WidthFactors:
    """F matrices restricted to the new neurons a network keeps (all of them for the Aux-Net).

    Shapes with n kept residual neurons and K = ``cfg.num_f_sets``: f_e, f_cls (n, d);
    f_qkv (K, 3, n, d); f_ffn (K, r n, r d).
    """

    f_e: Tensor
    f_qkv: Tensor
    f_ffn: Tensor
    f_cls: Tensor


def refuse_unsupported_ad(inputs: Iterable[Tensor]) -> None:
    """The generation's ops have reverse-mode derivatives for torch.autograd only. Under forward-mode
    AD their tangents came out zero without an error (a jvp of the generated weights with respect to
    F was 0 where finite differences give 0.42): refused for torch.autograd.forward_ad and for
    torch.func's jvp and jacfwd at any depth of the transform stack. torch.func's grad, vjp and
    jacrev (also under vmap) failed inside an op with torch's internal "autograd.Function ... must
    override the setup_context" message when they differentiate the generation: refused when one of
    its ``inputs`` is tracked by them. A forward-only vmap, or a torch.func.grad that runs the
    Aux-Net without differentiating its parameters (a frozen teacher, under no_grad), works."""
    if torch.compiler.is_compiling():  # dynamo cannot trace the interpreter stack; compiled graphs run no jvp
        return
    functorch = torch._C._functorch
    jvp = any(layer.key() == functorch.TransformType.Jvp for layer in functorch.get_interpreter_stack() or ())
    if jvp or forward_ad._current_level >= 0:
        raise NotImplementedError(
            "forward-mode AD (torch.func.jvp, torch.func.jacfwd, torch.autograd.forward_ad) is not supported "
            "through lets_core's weight generation: its ops define reverse-mode derivatives for torch.autograd "
            "only; use backward() or torch.autograd.grad")
    if torch.is_grad_enabled() and any(_tracked_by_func_grad(t) for t in inputs):
        raise NotImplementedError(
            "torch.func's gradient transforms (grad, grad_and_value, vjp, jacrev, also under vmap) are not "
            "supported through lets_core's weight generation: its ops define their derivatives for torch.autograd "
            "only; use loss.backward() or torch.autograd.grad; or emit a Des-Net, a plain timm ViT, which torch.func "
            "supports")


def _tracked_by_func_grad(t: Tensor) -> bool:
    """Whether torch.func's grad, vjp or jacrev differentiates ``t``, under any vmap wrapping."""
    functorch = torch._C._functorch
    while functorch.is_functorch_wrapped_tensor(t):
        if functorch.is_gradtrackingtensor(t):
            return True
        t = functorch.get_unwrapped(t)
    return False


def check_one_dtype(parts: dict[str, Iterable[Tensor]], fix: str) -> None:
    """Refuse parts of an Aux-Net of different dtypes, naming them and ``fix``: the generation's ops
    take one dtype for all their operands, and a part converted on its own (``aux.width.double()``,
    a float64 learngene) failed inside an op with a message naming neither the part nor the fix."""
    found: dict[torch.dtype, list[str]] = {}
    for part, tensors in parts.items():
        for dtype in {t.dtype for t in tensors}:
            found.setdefault(dtype, []).append(part)
    if len(found) > 1:
        listed = "; ".join(f"{', '.join(names)}: {dtype}" for dtype, names in found.items())
        raise ValueError(f"the Aux-Net's parts have mixed dtypes ({listed}); its weight generation needs one "
                         f"dtype for all of them: {fix}")


def generate_state(cfg: LetsConfig, lg: Learngene, fac: WidthFactors, depth: DepthTransform,
                   pos_embed: Tensor, plan: Sequence[int]) -> dict[str, Tensor]:
    """The timm state dict of the network whose block ``i`` is Aux layer ``plan[i]``.

    ``pos_embed`` is the (1, N, width) position embedding already restricted to the kept columns.
    """
    inputs = {"learngene": list(lg.parameters()), "width (F)": list(vars(fac).values()),
              "depth (G)": list(depth.parameters()), "pos_embed": [pos_embed]}
    refuse_unsupported_ad([t for part in inputs.values() for t in part])
    check_one_dtype(inputs, "convert the whole Aux-Net with aux.to(dtype), not one of its parts")
    blocks = lg.blocks
    f_e_out = fac.f_e[None, None]  # shared by all blocks, one chunk
    # The F that widens each neuron set of the block layout, on the output side (rows: one chunk,
    # or q|k|v chunks) and on the input side (columns). proj reads the attention output, whose
    # new neurons are those of v.
    f_rows = {"res": f_e_out, "qkv": fac.f_qkv, "mlp": fac.f_ffn[:, None]}
    f_cols = {"res": fac.f_e[None], "attn": fac.f_qkv[:, 2], "mlp": fac.f_ffn}
    mix_first = cfg.transform.layout == "ligo"

    def layer(m: BlockModule) -> tuple[Tensor, Tensor]:
        """Every distinct Aux layer of one module type (lets: one widen_mix call per kind)."""
        weight, bias = blocks[f"{m.name}_w"], blocks[f"{m.name}_b"]
        if m.name == "qkv":  # one coefficient per q|k|v chunk
            coeff, bias_coeff = depth.qkv_coeff(WEIGHT), depth.qkv_coeff(BIAS)
        else:
            coeff, bias_coeff = depth.coeff(m.name, WEIGHT), depth.coeff(m.name, BIAS)
        if mix_first:  # "ligo": row r of the mix is widened by F set r (the stacks line up)
            weight, bias = ops.group_mix(weight, coeff), ops.group_mix(bias, bias_coeff)
            if m.is_norm:
                return ops.widen_vector(weight, f_rows[m.rows]), ops.widen_vector(bias, f_rows[m.rows])
            return ops.widen_linear(weight, bias, f_rows[m.rows], f_cols[m.cols])
        if m.is_norm:  # LayerNorm gamma and beta
            f_out = f_rows[m.rows]
            return ops.widen_mix_vector(weight, f_out, coeff), ops.widen_mix_vector(bias, f_out, bias_coeff)
        return ops.widen_mix_linear(weight, bias, f_rows[m.rows], f_cols[m.cols], coeff, bias_coeff)

    layers = {m.timm: layer(m) for m in BLOCK_MODULES}

    d, width = cfg.learngene.embed_dim, pos_embed.shape[-1]
    patch_w, patch_b = ops.widen_linear(lg.patch_w.reshape(1, d, -1), lg.patch_b[None], f_e_out, None)
    head_w, _ = ops.widen_linear(lg.head_w[None], None, None, fac.f_cls[None])
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
