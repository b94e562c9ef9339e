"""The learngene: a compact ViT whose blocks are stored stacked, one tensor per parameter kind.

Stacking (blocks first) is what lets the generation ops widen all learngene blocks in one batched
call. The learngene converts to and from timm's per-block layout, so it can start from any timm
ViT checkpoint of the right shape and be exported as a plain timm model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import torch
from timm.layers.activations import GELU as TimmGELU
from timm.models.vision_transformer import VisionTransformer
from torch import Tensor, nn

from .config import LearngeneConfig, require_config
from .block_layout import BLOCK_MODULES, block_shapes
from .errors import BundleError
from .state_files import read_state_dict, unwrapped
from .vit import build_vit, vit_kwargs

# Stacked parameter name -> timm key suffix inside ``blocks.{j}.`` ("norm1_w" -> "norm1.weight", ...).
BLOCK_KEYS: dict[str, str] = {
    f"{m.name}_{part}": key
    for m in BLOCK_MODULES for part, key in (("w", m.weight_key()), ("b", m.bias_key()))
}

# Parameters outside the blocks: our name -> timm key.
STEM_KEYS: dict[str, str] = {
    "patch_w": "patch_embed.proj.weight", "patch_b": "patch_embed.proj.bias",
    "pos_embed": "pos_embed",
    "fc_norm_w": "fc_norm.weight", "fc_norm_b": "fc_norm.bias",
    "head_w": "head.weight", "head_b": "head.bias",
}


class Learngene(nn.Module):
    """Learngene parameters: ``blocks[name]`` is (depth, ...) for each kind in :data:`BLOCK_KEYS`,
    plus the stem and head tensors of :data:`STEM_KEYS` as attributes.

    A new learngene gets timm's ordinary random ViT initialization (the paper's choice), in torch's
    default dtype; one from a state keeps the state's dtype (converting float64 or bfloat16 weights
    to float32 made another network).
    """

    def __init__(self, cfg: LearngeneConfig, state: Mapping[str, Tensor] | None = None) -> None:
        super().__init__()
        self.cfg = require_config(cfg, LearngeneConfig, "Learngene")
        if state is None:
            state = build_vit(cfg, cfg.embed_dim, cfg.depth).state_dict()
        expected = timm_shapes(cfg)
        _check_state(state, expected)
        for name, key in STEM_KEYS.items():
            setattr(self, name, nn.Parameter(state[key].detach().clone()))
        self.blocks = nn.ParameterDict({
            name: nn.Parameter(torch.stack([state[f"blocks.{j}.{key}"].detach()
                                            for j in range(cfg.depth)]))
            for name, key in BLOCK_KEYS.items()
        })

    @classmethod
    def from_timm(cls, cfg: LearngeneConfig, model_or_state: nn.Module | Mapping[str, Tensor]) -> "Learngene":
        """Start from an existing timm ViT (module or state dict) whose shape matches ``cfg``.

        A module is also checked for what its tensors do not show (:func:`_check_architecture`):
        its head count (4 heads of 8 have the very shapes of 2 heads of 16, and compute another
        network), class token, pooling, MLP activation, block and norm kinds."""
        if isinstance(model_or_state, nn.Module):
            model = unwrapped(model_or_state)  # torch.compile's and DDP's wrappers prefix every key
            learngene = cls(cfg, model.state_dict())  # the shapes first: their message is the precise one
            _check_architecture(cfg, model)
            return learngene
        if not isinstance(model_or_state, Mapping):  # None is the constructor's "new random learngene"
            raise BundleError(f"Learngene.from_timm takes a timm ViT or its state dict, got "
                              f"{type(model_or_state).__name__}")
        return cls(cfg, model_or_state)

    @classmethod
    def from_checkpoint(cls, cfg: LearngeneConfig, path: str | Path) -> "Learngene":
        """Load a timm ViT checkpoint file (.safetensors, or a torch file holding a state dict)."""
        state = read_state_dict(path, "learngene checkpoint", BundleError)
        return cls(cfg, state)

    def no_weight_decay(self) -> set[str]:
        """Parameters spared from weight decay: those timm spares in the same ViT in its own
        per-block layout, 1-D tensors (biases, LayerNorms) and the position embedding. Stacked, the
        blocks' norms and biases are 2-D, so timm's 1-D rule alone would decay them."""
        shapes = timm_shapes(self.cfg)
        stem = {name for name, key in STEM_KEYS.items() if len(shapes[key]) <= 1 or key == "pos_embed"}
        blocks = {f"blocks.{name}" for name, key in BLOCK_KEYS.items() if len(shapes[f"blocks.0.{key}"]) <= 1}
        return stem | blocks

    def timm_state_dict(self) -> dict[str, Tensor]:
        """The learngene in timm's per-block key layout."""
        state = {key: getattr(self, name).detach() for name, key in STEM_KEYS.items()}
        for name, key in BLOCK_KEYS.items():
            for j in range(self.cfg.depth):
                state[f"blocks.{j}.{key}"] = self.blocks[name][j].detach()
        return state

    def to_timm(self) -> nn.Module:
        """A standalone timm ViT with copies of the learngene's weights, in their dtype and on their
        device (the learngene as a network of its own).

        Inside an Aux-Net the learngene's own pos_embed is never used nor trained (the Aux-Net owns
        its pos_embed), so after stage 1 this ViT keeps its initial one: use the smallest Des-Net
        (``emit_des(aux, cfg.learngene.num_heads, depth)``), which takes the Aux-Net's first d
        pos_embed columns, or copy ``aux.pos_embed[..., :d]`` into this ViT's.
        """
        # Built on meta, without timm's unused init, and given the copies (assign): loading into a
        # new ViT converted them to its float32 parameters on the default device.
        model = VisionTransformer(**vit_kwargs(self.cfg, self.cfg.embed_dim, self.cfg.depth), weight_init="skip",
                                  device="meta")
        model.load_state_dict({k: v.clone() for k, v in self.timm_state_dict().items()}, strict=True, assign=True)
        return model


def _check_architecture(cfg: LearngeneConfig, model: nn.Module) -> None:
    """Refuse a timm ViT whose tensors have the learngene's shapes but which computes another network
    than the one the learngene stands for (:meth:`Learngene.to_timm`, the spec's: exact GELU, average
    pooling + fc_norm, no class token, LayerNorm eps 1e-6), naming the value and what is allowed.
    What changes keys or shapes (qkv bias off, LayerScale, register tokens, qk-norm, another MLP or
    a norm without bias) was already refused by the state check; what only acts in training
    (dropout, drop-path) is not checked."""
    if not isinstance(model, VisionTransformer):
        raise BundleError(f"Learngene.from_timm takes a timm VisionTransformer (or its state dict, whose architecture "
                          f"is then yours to vouch for), got {type(model).__name__}")
    ref = build_vit(cfg, cfg.embed_dim, cfg.depth, device="meta")  # the network to_timm builds
    if model.global_pool != ref.global_pool:
        raise BundleError(f"the timm ViT pools with global_pool={model.global_pool!r}; the learngene's ViT uses "
                          f"global_pool={ref.global_pool!r} (average pooling + fc_norm): same tensor shapes, another "
                          f"network")
    if getattr(model, "cls_token", None) is not None:
        raise BundleError("the timm ViT has a class token; the learngene's ViT has none (class_token=False, average "
                          "pooling)")
    parts = [("fc_norm", model.fc_norm, ref.fc_norm)]
    for j, (block, ref_block) in enumerate(zip(model.blocks, ref.blocks)):
        for name, part, ref_part in (("", block, ref_block), ("attn", block.attn, ref_block.attn),
                                     ("mlp", block.mlp, ref_block.mlp)):
            if not isinstance(part, type(ref_part)):  # e.g. timm's ResPostBlock: the keys of a Block, post-norm
                where = ".".join(filter(None, (f"blocks.{j}", name)))
                raise BundleError(f"the timm ViT's {where} is a {type(part).__name__}; the learngene's ViT uses "
                                  f"timm's {type(ref_part).__name__}: same tensor shapes, another network")
        if block.attn.num_heads != cfg.num_heads:
            raise BundleError(f"the timm ViT has {block.attn.num_heads} heads per block; the learngene configuration "
                              f"has {cfg.num_heads} (embed_dim {cfg.embed_dim} / head_dim {cfg.head_dim}): same tensor "
                              f"shapes, another network")
        act = block.mlp.act
        # Exact GELU: torch's (approximate="none"), or timm's own, which calls the same function.
        if not (type(act) is TimmGELU or isinstance(act, nn.GELU) and act.approximate == "none"):
            raise BundleError(f"the timm ViT's MLP activation (blocks.{j}.mlp.act) is {act!r}; the learngene's ViT "
                              f"uses exact GELU (act_layer='gelu', nn.GELU(approximate='none')): same tensor shapes, "
                              f"another network")
        parts += [(f"blocks.{j}.norm1", block.norm1, ref_block.norm1),
                  (f"blocks.{j}.norm2", block.norm2, ref_block.norm2)]
    for where, norm, ref_norm in parts:
        if not isinstance(norm, nn.LayerNorm) or norm.eps != ref_norm.eps:
            got = f"LayerNorm with eps {norm.eps:g}" if isinstance(norm, nn.LayerNorm) else type(norm).__name__
            raise BundleError(f"the timm ViT's {where} is a {got}; the learngene's ViT uses LayerNorm with eps "
                              f"{ref_norm.eps:g}: same tensor shapes, another network")


def timm_shapes(cfg: LearngeneConfig) -> dict[str, tuple[int, ...]]:
    """Shape of every timm key of the learngene, computed from the configuration alone."""
    d = cfg.embed_dim
    per_block = block_shapes(d, cfg.mlp_hidden(d))
    shapes = {
        "patch_embed.proj.weight": (d, cfg.in_chans, cfg.patch_size, cfg.patch_size),
        "patch_embed.proj.bias": (d,),
        "pos_embed": (1, cfg.num_patches, d),
        "fc_norm.weight": (d,), "fc_norm.bias": (d,),
        "head.weight": (cfg.num_classes, d), "head.bias": (cfg.num_classes,),
    }
    for j in range(cfg.depth):
        shapes.update({f"blocks.{j}.{k}": s for k, s in per_block.items()})
    return shapes


def _check_state(state: Mapping[str, Tensor], expected: dict[str, tuple[int, ...]]) -> None:
    missing = sorted(set(expected) - set(state))
    if missing:
        raise BundleError(
            f"learngene checkpoint lacks {len(missing)} expected keys, e.g. {missing[:3]}; "
            "it must be a timm VisionTransformer state dict with class_token=False and fc_norm"
        )
    unexpected = sorted(set(state) - set(expected))
    if unexpected:
        raise BundleError(
            f"learngene checkpoint has {len(unexpected)} keys the learngene configuration does not "
            f"have, e.g. {unexpected[:3]}; its depth or layout differs from the configuration"
        )
    for key, shape in expected.items():
        if tuple(state[key].shape) != shape:
            raise BundleError(
                f"learngene checkpoint key {key!r} has shape {tuple(state[key].shape)}, but the "
                f"learngene configuration needs {shape}"
            )
    # The learngene keeps the state's dtype, and the generation's ops take one dtype for all of it.
    dtypes: dict[torch.dtype, list[str]] = {}
    for key in expected:
        dtypes.setdefault(state[key].dtype, []).append(key)
    for dtype, keys in dtypes.items():
        if not dtype.is_floating_point:
            raise BundleError(f"learngene checkpoint key {keys[0]!r} is {dtype}; a learngene's tensors are "
                              f"floating point (float32, float64, bfloat16 or float16)")
    if len(dtypes) > 1:
        listed = "; ".join(f"{dtype}: {keys[0]!r}{f' and {len(keys) - 1} more' if len(keys) > 1 else ''}"
                           for dtype, keys in dtypes.items())
        raise BundleError(f"learngene checkpoint mixes dtypes ({listed}); a learngene keeps its checkpoint's "
                          f"dtype, one for all its tensors: convert the model or state to one dtype first (e.g. "
                          f"model.float())")
