"""What a baseline's stage 1 produces: a :class:`Source` of tensors every Des-Net is built from,
saved as ``source.safetensors`` + ``source.json`` so that a comparison trains each stage 1 once.

A source is plain data (method name, model configuration, JSON settings, named tensors), never
a live module: emission reads tensors by name, so a loaded source emits exactly what the trained
one did, and saving needs no knowledge of the method.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor

from ..artifacts import (digest_record, interrupted_save_hint, read_json_object, save_folder_atomically,
                         verify_digest, write_json)
from ..config import LetsConfig
from ..errors import BundleError, LetsConfigError
from ..input_norm import InputNorm

SOURCE_WEIGHTS, SOURCE_JSON = "source.safetensors", "source.json"
SOURCE_FORMAT_VERSION = 1


@dataclass
class Source:
    """The trained result of one method's stage 1.

    method: the registry name (:data:`lets_core.baselines.METHODS`).
    cfg: the model configuration (Aux-Net shape, head_dim, image size, classes).
    state: named tensors the method's ``emit`` reads (empty for scratch).
    settings: JSON values the method needs besides the tensors (e.g. SWS's stage split).
    history: the stage-1 per-epoch log of :func:`lets_core.train.fit` (empty when nothing trained).
    input_norm: the input normalization stage 1 trained with (:mod:`lets_core.input_norm`), which
        the emitted Des-Nets inherit; None when nothing trained, or in a source saved before it
        was recorded.
    """

    method: str
    cfg: LetsConfig
    state: dict[str, Tensor]
    settings: dict[str, Any] = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)
    input_norm: InputNorm | None = None

    @property
    def stored_parameters(self) -> int:
        """Number of values that must be kept to initialize every size (the paper's Table 2)."""
        return sum(t.numel() for t in self.state.values())


def save_source(source: Source, directory: str | Path) -> Path:
    """Write ``source`` into ``directory`` (replaced atomically): tensors as safetensors, the rest as
    JSON, with a SHA-256 digest of both that :func:`load_source` checks."""
    state = {k: v.detach().cpu().contiguous() for k, v in source.state.items()}
    fields = {"method": source.method, "config": source.cfg.to_dict(), "settings": source.settings,
              "history": source.history}
    if source.input_norm is not None:  # absent, not null, when unknown: older sources' digests stay valid
        fields["input_norm"] = source.input_norm.to_dict()

    def write(folder: Path) -> None:
        save_file(state, str(folder / SOURCE_WEIGHTS), metadata={"method": source.method})
        digest = digest_record({SOURCE_WEIGHTS: folder / SOURCE_WEIGHTS}, fields)
        write_json(folder / SOURCE_JSON, {"format_version": SOURCE_FORMAT_VERSION, **fields, "digest": digest})

    return save_folder_atomically(directory, write, owned=(SOURCE_WEIGHTS, SOURCE_JSON),
                                  what=f"{source.method} stage-1 source")


def load_source(directory: str | Path) -> Source:
    """The :class:`Source` that :func:`save_source` wrote; :class:`BundleError` when a file is
    missing, damaged or edited."""
    directory = Path(directory)
    for name in (SOURCE_WEIGHTS, SOURCE_JSON):
        if not (directory / name).is_file():
            raise BundleError(f"stage-1 source file {str(directory / name)!r} is missing; a source folder holds "
                              f"{SOURCE_WEIGHTS} and {SOURCE_JSON} as written by lets_core.baselines.save_source"
                              f"{interrupted_save_hint(directory)}")
    meta = read_json_object(directory / SOURCE_JSON, "it is the description of a stage-1 source")
    if meta.get("format_version") != SOURCE_FORMAT_VERSION:
        raise BundleError(f"{str(directory / SOURCE_JSON)!r} has format_version {meta.get('format_version')!r}; "
                          f"this lets_core reads version {SOURCE_FORMAT_VERSION}")
    fields = {k: meta.get(k) for k in ("method", "config", "settings", "history")}
    if "input_norm" in meta:
        fields["input_norm"] = meta["input_norm"]
    verify_digest(directory, meta.get("digest"), fields, source=directory / SOURCE_JSON, required=(SOURCE_WEIGHTS,))
    try:
        cfg = LetsConfig.from_dict(fields["config"])
    except (LetsConfigError, TypeError) as exc:
        raise BundleError(f"{str(directory / SOURCE_JSON)!r} holds an invalid model configuration: {exc}") from exc
    try:
        state = load_file(str(directory / SOURCE_WEIGHTS))
    except (SafetensorError, OSError) as exc:
        raise BundleError(f"{str(directory / SOURCE_WEIGHTS)!r} cannot be read: {str(exc)[:300]}") from exc
    input_norm = (InputNorm.from_dict(fields["input_norm"], repr(str(directory / SOURCE_JSON)), BundleError)
                  if "input_norm" in fields else None)
    return Source(fields["method"], cfg, state, dict(fields["settings"] or {}), list(fields["history"] or []),
                  input_norm)


def detached(state: dict[str, Tensor], prefix: str = "") -> dict[str, Tensor]:
    """``state``'s tensors whose names start with ``prefix``, renamed without it and detached."""
    return {k[len(prefix):]: v.detach() for k, v in state.items() if k.startswith(prefix)}


def clone_state(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Independent contiguous copies: an emitted Des-Net is fine-tuned tensor by tensor, so two of
    its layers (or two Des-Nets) must never share storage."""
    with torch.no_grad():
        return {k: v.detach().clone().contiguous() for k, v in state.items()}
