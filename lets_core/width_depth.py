"""The learnable width (F) and depth (G) transformations of LeTs and their initializations.

:class:`WidthTransform` holds the F matrices (new neurons as combinations of the learngene's),
:class:`DepthTransform` the G coefficients (each Aux layer as a weighted sum of a group of
learngene blocks). ``generation.py`` applies both to the learngene through ``lets_core.ops``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .config import F_INIT_SCHEMES, G_INIT_SCHEMES, G_MODULE_TYPES, LetsConfig

# G tensor layout: G[type, kind, row, m] with kind 0 for weights / LayerNorm gamma, 1 for biases / beta.
WEIGHT, BIAS = 0, 1


class WidthTransform(nn.Module):
    """The F matrices. Row i of a matrix defines new neuron i as a combination of the old ones.

    - ``f_e`` (D-d, d): the residual stream, shared by every layer.
    - ``f_qkv`` (K, 3, D-d, d): F_q, F_k, F_v of each F set.
    - ``f_ffn`` (K, r(D-d), r d): the MLP hidden neurons of each F set.
    - ``f_cls`` (D-d, d): the classifier head's input columns.

    K = ``cfg.num_f_sets``: one F set per learngene block (layout "lets", K = L_g) or per
    distinct Aux layer (layout "ligo", K = number of G rows).
    """

    def __init__(self, cfg: LetsConfig) -> None:
        super().__init__()
        lg, delta = cfg.learngene, cfg.delta
        d, sets = lg.embed_dim, cfg.num_f_sets
        hidden, hidden_delta = lg.mlp_hidden(d), lg.mlp_hidden(delta)
        self.f_e = nn.Parameter(torch.empty(delta, d))
        self.f_qkv = nn.Parameter(torch.empty(sets, 3, delta, d))
        self.f_ffn = nn.Parameter(torch.empty(sets, hidden_delta, hidden))
        self.f_cls = nn.Parameter(torch.empty(delta, d))
        tf = cfg.transform
        with torch.no_grad():
            for p in self.parameters():
                init_f_(p, tf.f_init, tf.f_noise)

    def no_weight_decay(self) -> set[str]:
        """All of F. A new neuron's weights are F·W; W (the learngene) is already decayed, so decaying
        F as well would pull every new neuron toward zero a second time, and F's rows are mixing
        coefficients (initialized to sum to 1) whose scale has no reason to shrink, like G's."""
        return {name for name, _ in self.named_parameters()}


class DepthTransform(nn.Module):
    """The G coefficients: ``g`` (8 module types, 2 kinds, rows, s).

    Aux layer i uses row i // tie_length; the row's group is fixed by the layout (see LetsConfig).
    In the "ligo" layout s is the learngene depth: each row mixes every learngene block.
    """

    def __init__(self, cfg: LetsConfig) -> None:
        super().__init__()
        tf = cfg.transform
        self.g = nn.Parameter(torch.empty(len(G_MODULE_TYPES), 2, cfg.num_rows, tf.group_size))
        with torch.no_grad():
            init_g_(self.g, tf.g_init, tf.g_noise, tf.tie_length, cfg.num_rows // cfg.num_groups)

    def no_weight_decay(self) -> set[str]:
        """G: mixing coefficients of learngene blocks, spared as the LeTs recipe says."""
        return {"g"}

    def coeff(self, module_type: str, kind: int) -> Tensor:
        """(rows, s) coefficients of one module type; kind is WEIGHT or BIAS."""
        return self.g[G_MODULE_TYPES.index(module_type), kind]

    def qkv_coeff(self, kind: int) -> Tensor:
        """(rows, 3, s) coefficients of q, k, v together, for timm's fused qkv layout."""
        first = G_MODULE_TYPES.index("q")
        return self.g[first:first + 3, kind].transpose(0, 1)


def init_f_(f: Tensor, scheme: str, noise: float) -> None:
    """Initialize every row (last dim) of an F tensor in place.

    ``normalized-uniform`` (paper): uniform [0, 1) divided by the row sum, so a new neuron starts
    as a convex combination of old ones; with many old neurons every such row is close to the
    plain mean, so the new neurons start nearly identical. ``net2net``: a copy of one random old
    neuron plus Gaussian noise of std ``noise``. ``normal``: the mean 1/n plus Gaussian noise of
    std 1/sqrt(n) (n old neurons) shifted to sum to zero along the row: a new neuron is the mean
    of the old ones plus a random combination as large as one old neuron (for uncorrelated
    old neurons), so new neurons start distinct from each other; the rows still sum to 1, which
    keeps every widened LayerNorm gain (F_e gamma) at 1 and bias at its mean. (Zero-mean
    N(0, 1/n) rows gave random LayerNorm gains around 0 and trained worse on small data:
    benchmarks/results/stage1/NOTES.md.)
    """
    if f.numel() == 0:
        return
    if scheme == "normalized-uniform":
        f.uniform_(0.0, 1.0)
        f.div_(f.sum(dim=-1, keepdim=True).clamp_min(torch.finfo(f.dtype).tiny))
    elif scheme == "net2net":
        pick = torch.randint(f.shape[-1], f.shape[:-1], device=f.device)
        f.zero_().scatter_(-1, pick.unsqueeze(-1), 1.0)
        f.add_(torch.randn_like(f) * noise)
    elif scheme == "normal":
        n = f.shape[-1]
        f.normal_(0.0, n ** -0.5)
        f.sub_(f.mean(dim=-1, keepdim=True)).add_(1.0 / n)
    else:
        raise ValueError(f"unknown F init {scheme!r}; allowed: {list(F_INIT_SCHEMES)}")


def init_g_(g: Tensor, scheme: str, noise: float, tie_length: int, rows_per_group: int = 1) -> None:
    """Initialize G (..., rows, s) in place; rows are laid out group after group.

    ``paper``: uniform [0, noise), then entry (i mod s) set to 1 where i is the first Aux layer of
    the row, then divided by the sum: each Aux layer starts close to one learngene block. When
    tie_length is a multiple of s (the paper's s = t = 2), i mod s is 0 for every row, so every
    Aux layer starts near the first block of its group and the other blocks of the group get
    only the noise's share of the gradient at first.
    ``spread``: the same noise and normalization, but row k of a group of R rows starts near
    block floor(k s / R) of the group, so the Aux-Net starts as the learngene with each block
    repeated in order (every learngene block used from the first step).
    ``uniform``: every entry 1/s, the plain average of the group.
    """
    s = g.shape[-1]
    if scheme in ("paper", "spread"):
        g.uniform_(0.0, noise) if noise > 0 else g.zero_()
        for row in range(g.shape[-2]):
            if scheme == "paper":
                block = (row * tie_length) % s
            else:
                block = (row % rows_per_group) * s // rows_per_group
            g[..., row, block] = 1.0
        g.div_(g.sum(dim=-1, keepdim=True))
    elif scheme == "uniform":
        g.fill_(1.0 / s)
    else:
        raise ValueError(f"unknown G init {scheme!r}; allowed: {list(G_INIT_SCHEMES)}")
