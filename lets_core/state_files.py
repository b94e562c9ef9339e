"""Reading a model's weights from a checkpoint file someone else wrote: one reader for every place
that accepts one (a learngene from a timm ViT checkpoint, a teacher checkpoint file).

Accepted: ``.safetensors``, or a torch file holding a state dict, possibly wrapped under
``state_dict`` / ``model`` / ``model_ema`` (timm's and most training scripts' layouts) and with the
``module.`` / ``_orig_mod.`` prefixes that DDP and torch.compile add. torch files are read with
``weights_only=True``: a checkpoint is data, never code.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

WRAPPERS = ("state_dict", "model", "model_ema")


def read_state_dict(path: str | Path, what: str, error: type[ValueError]) -> dict[str, Tensor]:
    """The state dict in ``path``; ``what`` names the file in errors ("teacher checkpoint"), raised as ``error``."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{what} {str(path)!r} does not exist")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # safetensors and torch raise several unrelated types for a bad file
        raise error(f"{what} {str(path)!r} cannot be read ({exc})") from exc
    for wrapper in WRAPPERS:
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise error(f"{what} {str(path)!r} holds no state dict of tensors")
    return {strip_wrapper_prefixes(k): v for k, v in state.items()}


# Prefixes wrappers add to every key: DDP's module and torch.compile's _orig_mod (either order).
WRAPPER_PREFIXES = ("module.", "_orig_mod.")


def strip_wrapper_prefixes(key: str) -> str:
    while key.startswith(WRAPPER_PREFIXES):
        key = key.removeprefix("module.").removeprefix("_orig_mod.")
    return key


def unwrapped(module: torch.nn.Module) -> torch.nn.Module:
    """The module inside torch.compile's, DDP's and DataParallel's wrappers, whose state dict has
    the plain keys."""
    while True:
        inner = getattr(module, "_orig_mod", None)
        if inner is None and isinstance(module, (torch.nn.parallel.DistributedDataParallel, torch.nn.DataParallel)):
            inner = module.module
        if inner is None:
            return module
        module = inner


def check_finite(state: dict[str, Tensor], what: str, error: type[ValueError] = ValueError) -> None:
    """Refuse a state with NaN or infinite values, naming the tensors: one NaN in F made every
    emitted Des-Net NaN (the "top" strategies even pick the NaN rows first) while emission,
    saving and evaluation all reported success."""
    bad = [f"{k} ({int((~torch.isfinite(v)).sum())} of {v.numel()})" for k, v in state.items()
           if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise error(f"{what} holds non-finite values (NaN or inf) in {', '.join(bad[:5])}"
                    f"{f' and {len(bad) - 5} more tensors' if len(bad) > 5 else ''}; it cannot make a working network")
