"""Saving and loading a trained LeTs bundle (learngene + F + G + Aux pos_embed), and its storage cost.

A bundle folder holds ``bundle.safetensors`` and ``bundle.json`` (configuration, format version,
the SHA-256 of the tensor file, so a truncated or corrupted file fails on load instead of
yielding wrong weights, and optionally a ``training`` record of how stage 1 was run, which
loading ignores).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .auxnet import AuxNet
from .config import LetsConfig
from .des import des_param_count
from .errors import BundleError, LetsConfigError

FORMAT_VERSION = 1
TENSORS_FILE = "bundle.safetensors"
CONFIG_FILE = "bundle.json"


def save_bundle(aux: AuxNet, directory: str | Path, *, training: dict[str, Any] | None = None) -> Path:
    """Write the bundle of ``aux`` into ``directory`` (created if needed); files are replaced atomically.

    ``training``: JSON-serializable notes on how the bundle was trained (e.g. the elastic stage-1
    settings, whose selection strategy emission should reuse), kept in ``bundle.json``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in aux.state_dict().items()}
    tmp = directory / (TENSORS_FILE + ".tmp")
    save_file(state, str(tmp))
    meta = {"format_version": FORMAT_VERSION, "sha256": _sha256(tmp), "config": aux.cfg.to_dict()}
    if training is not None:
        meta["training"] = training
    os.replace(tmp, directory / TENSORS_FILE)
    _write_atomic(directory / CONFIG_FILE, json.dumps(meta, indent=2))
    return directory


def load_bundle(directory: str | Path, map_location: str | torch.device = "cpu") -> AuxNet:
    """Rebuild the Aux-Net saved by :func:`save_bundle`, checking integrity and shapes."""
    directory = Path(directory)
    cfg_path, tensors_path = directory / CONFIG_FILE, directory / TENSORS_FILE
    for path in (cfg_path, tensors_path):
        if not path.is_file():
            raise BundleError(f"bundle file {str(path)!r} is missing; a bundle folder holds {CONFIG_FILE} "
                              f"and {TENSORS_FILE} as written by lets_core.save_bundle")
    try:
        meta = json.loads(cfg_path.read_text())
    except json.JSONDecodeError as exc:
        raise BundleError(f"{str(cfg_path)!r} is not valid JSON ({exc})") from exc
    if meta.get("format_version") != FORMAT_VERSION:
        raise BundleError(f"{str(cfg_path)!r} has format_version {meta.get('format_version')!r}; "
                          f"this lets_core reads version {FORMAT_VERSION}")
    digest = _sha256(tensors_path)
    if digest != meta.get("sha256"):
        raise BundleError(f"{str(tensors_path)!r} is corrupted or truncated: its SHA-256 {digest[:16]}... "
                          f"differs from the recorded {str(meta.get('sha256'))[:16]}...")
    try:
        cfg = LetsConfig.from_dict(meta["config"])
    except (KeyError, TypeError, LetsConfigError) as exc:
        raise BundleError(f"{str(cfg_path)!r} holds no valid configuration: {exc}") from exc
    try:
        state = load_file(str(tensors_path), device=str(map_location))
    except SafetensorError as exc:
        raise BundleError(f"{str(tensors_path)!r} is not a readable safetensors file: {exc}") from exc
    aux = AuxNet(cfg).to(map_location)
    expected = aux.state_dict()
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or unexpected:
        raise BundleError(f"bundle tensors do not match its configuration: missing {missing[:5]}, "
                          f"unexpected {unexpected[:5]}")
    for key, value in expected.items():
        if value.shape != state[key].shape:
            raise BundleError(f"bundle tensor {key!r} has shape {tuple(state[key].shape)} but the "
                              f"configuration needs {tuple(value.shape)}")
    aux.load_state_dict(state, strict=True)
    return aux


@dataclass(frozen=True)
class StorageReport:
    """Parameters stored by a bundle next to those of the Des-Nets it can emit."""

    bundle_params: int
    des_sizes: tuple[tuple[int, int], ...]
    des_params: tuple[int, ...]

    @property
    def des_total(self) -> int:
        return sum(self.des_params)

    def __str__(self) -> str:
        lines = [f"bundle (stored once): {self.bundle_params / 1e6:.1f} M parameters"]
        lines += [f"  Des-H{h}-L{l}: {n / 1e6:.1f} M" for (h, l), n in zip(self.des_sizes, self.des_params)]
        lines.append(f"{len(self.des_sizes)} Des-Nets stored separately: {self.des_total / 1e6:.1f} M parameters "
                     f"({self.des_total / max(self.bundle_params, 1):.1f}x the bundle)")
        return "\n".join(lines)


def storage_report(aux: AuxNet, sizes: Sequence[tuple[int, int]]) -> StorageReport:
    """Compare the bundle's stored parameters with ``sizes`` = [(heads, depth), ...] Des-Nets."""
    sizes = tuple((int(h), int(l)) for h, l in sizes)
    return StorageReport(
        bundle_params=aux.trainable_parameter_count(),
        des_sizes=sizes,
        des_params=tuple(des_param_count(aux.cfg, h, l) for h, l in sizes),
    )


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
