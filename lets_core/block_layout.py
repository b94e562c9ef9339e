"""The layout of one ViT block, written once: its modules, their timm names, and which neurons
index each module's output rows and input columns.

Every part of lets_core that walks a block reads this table: the learngene (stacked parameter
names, timm keys and shapes), the generation (which F widens which side), the Des-Net gather
(which kept neurons to take) and the optimizer (which parameters are spared from weight decay).

Neuron sets, for a network of width ``w`` whose learngene has width ``d`` and MLP hidden size ``h``:
- ``"res"``: the residual stream (``w`` neurons; F_e widens it);
- ``"qkv"``: the attention neurons of q, k and v stacked (3 x ``w``; F_q, F_k, F_v);
- ``"attn"``: the attention output that proj reads, i.e. v's neurons (``w``; F_v);
- ``"mlp"``: the MLP's hidden neurons (``h`` in the learngene; F_ffn);
- ``None``: not indexed (a LayerNorm has only rows).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BlockModule:
    """One module of a block: ``name`` is lets_core's (also the G module name where it is one),
    ``timm`` the module path inside timm's ``blocks.{j}``, ``rows`` / ``cols`` the neuron sets of
    its output rows and input columns (``cols`` None: a LayerNorm, whose weight is a vector)."""

    name: str
    timm: str
    rows: str
    cols: str | None

    @property
    def is_norm(self) -> bool:
        return self.cols is None

    def weight_key(self) -> str:
        return f"{self.timm}.weight"

    def bias_key(self) -> str:
        return f"{self.timm}.bias"


# In timm's order within a block (the order of the learngene's stacked parameters).
BLOCK_MODULES: tuple[BlockModule, ...] = (
    BlockModule("norm1", "norm1", rows="res", cols=None),
    BlockModule("qkv", "attn.qkv", rows="qkv", cols="res"),
    BlockModule("proj", "attn.proj", rows="res", cols="attn"),
    BlockModule("norm2", "norm2", rows="res", cols=None),
    BlockModule("fc1", "mlp.fc1", rows="mlp", cols="res"),
    BlockModule("fc2", "mlp.fc2", rows="res", cols="mlp"),
)


def neuron_count(neurons: str, width: int, hidden: int) -> int:
    """Size of a neuron set in a network of ``width`` with MLP hidden size ``hidden``."""
    return {"res": width, "attn": width, "qkv": 3 * width, "mlp": hidden}[neurons]


def block_shapes(width: int, hidden: int) -> dict[str, tuple[int, ...]]:
    """timm key suffix (inside ``blocks.{j}.``) -> shape, for a block of ``width`` and ``hidden``."""
    shapes: dict[str, tuple[int, ...]] = {}
    for m in BLOCK_MODULES:
        rows = neuron_count(m.rows, width, hidden)
        cols = () if m.cols is None else (neuron_count(m.cols, width, hidden),)
        shapes[m.weight_key()] = (rows, *cols)
        shapes[m.bias_key()] = (rows,)
    return shapes
