"""What a bundle stores against what the Des-Nets it can emit would store separately (the
paper's storage argument)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from .auxnet import AuxNet, as_aux_net
from .des import des_param_count
from .selection import integer_size_pair


@dataclass(frozen=True)
class StorageReport:
    """Parameters stored by a bundle next to those of the Des-Nets it can emit. ``bundle_params``
    counts what the method stores (:meth:`AuxNet.stored_parameter_count`: learngene, F, G,
    pos_embed); the bundle file also holds the learngene's own frozen position embedding, which no
    Des-Net uses."""

    bundle_params: int
    des_sizes: tuple[tuple[int, int], ...]
    des_params: tuple[int, ...]

    @property
    def des_total(self) -> int:
        return sum(self.des_params)

    def __str__(self) -> str:
        lines = [f"bundle (stored once): {_count(self.bundle_params)} parameters"]
        lines += [f"  Des-H{h}-L{l}: {_count(n)}" for (h, l), n in zip(self.des_sizes, self.des_params)]
        lines.append(f"{len(self.des_sizes)} Des-Nets stored separately: {_count(self.des_total)} parameters "
                     f"({self.des_total / max(self.bundle_params, 1):.1f}x the bundle)")
        return "\n".join(lines)


def storage_report(aux: AuxNet, sizes: Sequence[tuple[int, int]]) -> StorageReport:
    """Compare the bundle's stored parameters with ``sizes`` = [(heads, depth), ...] Des-Nets, each
    size once (one listed twice would count its model twice)."""
    aux = as_aux_net(aux, "storage_report")
    sizes = tuple(integer_size_pair(entry) for entry in sizes)
    repeated = sorted({s for s in sizes if sizes.count(s) > 1})
    if repeated:
        raise ValueError(f"sizes lists {', '.join(f'(heads={h}, depth={d})' for h, d in repeated)} more than once; "
                         "give each Des-Net size once")
    return StorageReport(
        bundle_params=aux.stored_parameter_count(),
        des_sizes=sizes,
        des_params=tuple(des_param_count(aux.cfg, h, l) for h, l in sizes),
    )


def _count(n: int) -> str:
    # Millions with one decimal hide the tiny preset's Des-Nets (36,682 printed as "0.0 M").
    return f"{n / 1e6:.1f} M" if n >= 1e6 else f"{n / 1e3:.1f} K"
