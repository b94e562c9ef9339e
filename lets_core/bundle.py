"""Saving and loading a trained LeTs bundle (learngene + F + G + Aux pos_embed).

A bundle folder holds ``bundle.safetensors`` and ``bundle.json``: the format version, the
configuration, optionally a ``training`` record of how stage 1 was run (loading ignores it), and a
``digest`` with the SHA-256 of the tensor file and of every other field of ``bundle.json``. A
truncated or corrupted file, or an edited value that keeps tensor shapes (``learngene.head_dim``
16 -> 8), fails on load instead of yielding a different network. The folder is written into a
temporary sibling and swapped into place, so a kill never leaves half of a bundle.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch.nn.utils import parametrize

from .artifacts import (digest_record, interrupted_save_hint, read_json_object, save_folder_atomically,
                        verify_fields, verify_files, write_json)
from .auxnet import AuxNet, as_aux_net
from .config import LetsConfig
from .errors import BundleError, LetsConfigError
from .input_norm import InputNorm, record_input_norm, recorded_input_norm
from .state_files import check_finite

# 2: bundle.json's digest covers the configuration and every field, not only the tensor file.
FORMAT_VERSION = 2
TENSORS_FILE = "bundle.safetensors"
CONFIG_FILE = "bundle.json"
# What a bundle folder may hold when it is replaced (the .tmp names: leftovers of version-1 saves).
_OWNED = (TENSORS_FILE, CONFIG_FILE, TENSORS_FILE + ".tmp", CONFIG_FILE + ".tmp")
_WHAT_IT_IS = f"a bundle's {CONFIG_FILE} is an object written by lets_core.save_bundle"


def save_bundle(aux: AuxNet, directory: str | Path, *, training: dict[str, Any] | None = None) -> Path:
    """Write the bundle of ``aux`` into the folder ``directory``, replacing it as a whole (atomically).

    ``training``: JSON-serializable notes on how the bundle was trained (e.g. the elastic stage-1
    settings, whose selection strategy emission should reuse), kept in ``bundle.json`` and
    covered by its digest. The input normalization ``aux`` records
    (:func:`lets_core.input_norm.record_input_norm`; stage 1 records its data's) is kept there
    too, and the Des-Nets emitted after loading inherit it.

    Raises :class:`BundleError` when ``directory`` is an existing file, a folder holding other
    files, or in a folder that cannot be written; ValueError, before writing anything, when the
    Aux-Net's tensors are not those of its configuration (e.g. a parametrized F), which no load would take.
    """
    # Unwrapped: a torch.compile'd Aux-Net's keys carry "_orig_mod.", which no load would match.
    aux = as_aux_net(aux, "save_bundle")
    state = {k: v.detach().cpu().contiguous() for k, v in aux.state_dict().items()}
    _check_savable(aux, state)
    check_finite(state, "save_bundle: the Aux-Net")
    meta: dict[str, Any] = {"format_version": FORMAT_VERSION, "config": aux.cfg.to_dict()}
    if training is not None:
        meta["training"] = training
    input_norm = recorded_input_norm(aux)
    if input_norm is not None:
        input_norm.check_fits(aux, "save_bundle")  # a record set around record_input_norm's check
        meta["input_norm"] = input_norm.to_dict()

    def write(folder: Path) -> None:
        save_file(state, str(folder / TENSORS_FILE))
        digest = digest_record({TENSORS_FILE: folder / TENSORS_FILE}, meta)
        write_json(folder / CONFIG_FILE, dict(meta, digest=digest))

    return save_folder_atomically(directory, write, owned=_OWNED, what="bundle")


def load_bundle(directory: str | Path, map_location: str | torch.device = "cpu") -> AuxNet:
    """Rebuild the Aux-Net saved by :func:`save_bundle` on ``map_location``, checking its digest and
    shapes; its tensors keep the dtype they were saved in."""
    directory = Path(directory)
    try:
        device = torch.device(map_location)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"map_location {map_location!r} is not a device (e.g. 'cpu', 'cuda', 'cuda:1'): {exc}") from None
    cfg_path, tensors_path = directory / CONFIG_FILE, directory / TENSORS_FILE
    for path in (cfg_path, tensors_path):
        if not path.is_file():
            raise BundleError(f"bundle file {str(path)!r} is missing; a bundle folder holds {CONFIG_FILE} "
                              f"and {TENSORS_FILE} as written by lets_core.save_bundle"
                              f"{interrupted_save_hint(directory)}")
    meta = read_json_object(cfg_path, _WHAT_IT_IS)
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        older = (" (version 1, from an older lets_core, kept its configuration outside the integrity digest; "
                 "train stage 1 again to re-create it)") if version == 1 else ""
        raise BundleError(f"{str(cfg_path)!r} has format_version {version!r}; this lets_core reads version "
                          f"{FORMAT_VERSION}{older}")
    record = meta.pop("digest", None)
    # Files first, then the specific diagnostics (invalid values, shapes), then the fields, which
    # catches edits that keep every shape; the real Aux-Net is built only from a verified config.
    verify_files(directory, record, source=cfg_path, required=[TENSORS_FILE])
    cfg = _config(meta, cfg_path)
    try:
        state = load_file(str(tensors_path), device=str(device))
    except SafetensorError as exc:
        raise BundleError(f"{str(tensors_path)!r} is not a readable safetensors file: {exc}") from exc
    _check_shapes(cfg, state)
    verify_fields(record, meta, source=cfg_path)
    check_finite(state, f"bundle {str(tensors_path)!r}", BundleError)
    input_norm = _input_norm(meta, cfg_path)
    # The tensors are taken as stored (assign=True): copying them into a float32 Aux-Net would turn
    # a float64 or bfloat16 bundle into another network. The skeleton is built on meta (no init).
    with torch.device("meta"):
        aux = AuxNet(cfg)
    aux.load_state_dict(state, strict=True, assign=True)
    aux.trained_strategy = _trained_strategy(meta)
    return record_input_norm(aux, input_norm)


def bundle_strategy(directory: str | Path) -> str | None:
    """The selection strategy a bundle's elastic stage 1 trained its Des-Nets with (its
    ``bundle.json`` ``training`` record), which emission should reuse; None for the paper's stage 1.
    Read after :func:`load_bundle` has verified the folder."""
    return _trained_strategy(read_json_object(Path(directory) / CONFIG_FILE, _WHAT_IT_IS))


def _trained_strategy(meta: dict[str, Any]) -> str | None:
    training = meta.get("training")
    elastic = training.get("elastic") if isinstance(training, dict) else None
    return elastic.get("strategy") if isinstance(elastic, dict) else None


def _config(meta: dict[str, Any], cfg_path: Path) -> LetsConfig:
    try:
        return LetsConfig.from_dict(meta["config"])
    except (KeyError, TypeError, AttributeError, LetsConfigError) as exc:
        raise BundleError(f"{str(cfg_path)!r} holds no valid configuration: {exc}") from exc


def _input_norm(meta: dict[str, Any], cfg_path: Path) -> InputNorm | None:
    # Absent in a bundle saved before lets_core recorded it (or by a caller that recorded none).
    if "input_norm" not in meta:
        return None
    return InputNorm.from_dict(meta["input_norm"], repr(str(cfg_path)), BundleError)


def _check_savable(aux: AuxNet, state: dict[str, torch.Tensor]) -> None:
    """Refuse to write a bundle that load_bundle would refuse: a torch parametrization
    (torch.nn.utils.parametrize) stores ``<name>.parametrizations.<tensor>.original``, the raw value
    and not the one the network computes, and the bundle was written, signed, and unloadable."""
    parametrized = [f"{prefix}.{name}" if prefix else name for prefix, module in aux.named_modules()
                    if parametrize.is_parametrized(module) for name in module.parametrizations]
    if parametrized:
        raise ValueError(f"save_bundle: the Aux-Net's {', '.join(parametrized)} "
                         f"{'is' if len(parametrized) == 1 else 'are'} parametrized (torch.nn.utils.parametrize); a "
                         f"bundle holds the plain tensors of its configuration. Remove the parametrization first: "
                         f"torch.nn.utils.parametrize.remove_parametrizations(module, name) keeps the values the "
                         f"network computes")
    _check_shapes(aux.cfg, state, "save_bundle: the Aux-Net's", ValueError)


def _check_shapes(cfg: LetsConfig, state: dict[str, torch.Tensor], what: str = "bundle",
                  error: type[ValueError] = BundleError) -> None:
    # A meta-device skeleton: the shapes the configuration needs, without allocating its weights.
    with torch.device("meta"):
        expected = AuxNet(cfg).state_dict()
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or unexpected:
        raise error(f"{what} tensors do not match its configuration: missing {missing[:5]}, "
                    f"unexpected {unexpected[:5]}")
    for key, value in expected.items():
        if value.shape != state[key].shape:
            raise error(f"{what} tensor {key!r} has shape {tuple(state[key].shape)} but the "
                        f"configuration needs {tuple(value.shape)}")
