"""Reading a model's weights from a checkpoint file someone else wrote: one reader for every place
that accepts one (a learngene from a timm ViT checkpoint, a teacher checkpoint file).

Accepted: ``.safetensors``, or a torch file holding a state dict, possibly wrapped under
``state_dict`` / ``model`` / ``model_ema`` (timm's and most training scripts' layouts) and with the
``module.`` prefix that DDP adds. torch files are read with ``weights_only=True``: a checkpoint is
data, never code.
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
    return {k.removeprefix("module."): v for k, v in state.items()}
