"""Stage 2: building Des-Nets from a trained Aux-Net and saving them as plain timm models."""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path
from typing import Sequence

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from timm.models.vision_transformer import VisionTransformer

from .artifacts import (digest_record, interrupted_save_hint, read_json_object, save_folder_atomically,
                        verify_digest, write_json)
from .auxnet import AuxNet, as_aux_net
from .config import LetsConfig, require_config
from .depth_plan import auto_depth_plan, check_plan
from .errors import BundleError, StrategyWarning
from .generation import generate_state
from .input_norm import InputNorm, record_input_norm, recorded_input_norm
from .ops._registry import autocast_enabled
from .selection import check_strategy, check_width, select_width, selected_factors
from .state_files import check_finite, unwrapped
from .vit import check_drop_path_rate, vit_kwargs

# A registered timm architecture name; every argument is overridden by model_args.
TIMM_ARCHITECTURE = "vit_base_patch16_224"
# Attribute where an emitted Des-Net keeps the exact VisionTransformer arguments it was built with.
MODEL_ARGS_ATTR = "lets_model_args"
# A Des-Net folder: timm's two files, plus lets_core's digest of them (beside, so timm loads unchanged).
DES_CONFIG, DES_WEIGHTS, DES_DIGEST = "config.json", "model.safetensors", "lets_digest.json"
DES_DIGEST_VERSION = 1


def emit_des(aux: AuxNet, heads: int, depth: int | None = None, strategy: str = "continuous",
             plan: Sequence[int] | None = None, drop_path_rate: float = 0.0) -> VisionTransformer:
    """Build the Des-Net with ``heads`` heads and ``depth`` blocks from ``aux``.

    Args:
        aux: the (trained) Aux-Net (or the DataParallel, DDP or torch.compile wrapper around it).
        heads: number of heads; width = heads x head_dim, between the learngene's and the Aux-Net's.
        depth: number of blocks. Defaults to ``len(plan)``; required when ``plan`` is None.
        strategy: which new neurons to keep: "continuous", "top-l2", "bottom-l2", "top-l1",
            "bottom-l1".
        plan: Aux layer index of each Des layer, an ordered sequence of ints (repeats allowed);
            default ``auto_depth_plan``.
        drop_path_rate: stochastic depth of the Des-Net, for its fine-tuning.

    Returns:
        A timm ``VisionTransformer`` in eval mode, on the Aux-Net's device and dtype, owning
        independent copies of its weights (fine-tune it like any timm model).

    Example:
        >>> import lets_core
        >>> aux = lets_core.AuxNet(lets_core.presets.tiny())
        >>> des = lets_core.emit_des(aux, heads=3, depth=6, strategy="top-l1")
        >>> des.embed_dim, len(des.blocks)
        (48, 6)
    """
    aux = as_aux_net(aux, "emit_des")
    cfg = aux.cfg
    new = check_width(cfg, heads)
    plan = resolve_plan(cfg, depth, plan)
    check_strategy(strategy)
    warn_other_strategy(aux, strategy, "emit_des")
    d = cfg.learngene.embed_dim
    # inference_mode(False): emitted under a caller's inference_mode, the weights were inference
    # tensors, and the Des-Net failed at its first fine-tuning step.
    with torch.inference_mode(False), torch.no_grad(), full_precision(aux):
        sel = select_width(cfg, aux.width, new, strategy)
        pos_cols = torch.cat([torch.arange(d, device=sel.residual.device), d + sel.residual])
        state = generate_state(cfg, aux.learngene, selected_factors(cfg, aux.width, sel), aux.depth,
                               aux.pos_embed.index_select(2, pos_cols), plan)
        # Repeated plan entries share tensors; a Des-Net is fine-tuned layer by layer, so copy.
        state = {k: v.detach().clone().contiguous() for k, v in state.items()}
    return build_des(cfg, d + new, len(plan), state, drop_path_rate, recorded_input_norm(aux))


def warn_other_strategy(aux: AuxNet, strategy: str, caller: str) -> None:
    """A StrategyWarning when ``aux`` was trained elastically with another strategy than
    ``strategy``: the default "continuous" on a "top-l2" bundle silently kept other neurons than
    the ones its Des-Nets were trained with."""
    trained = aux.trained_strategy
    if trained is not None and strategy != trained:
        warnings.warn(f"{caller}: this Aux-Net's elastic stage 1 trained its Des-Nets with strategy {trained!r}; "
                      f"emitting with {strategy!r} keeps neurons never trained together as a set (pass "
                      f"strategy={trained!r} for the Des-Nets it trained)", StrategyWarning, stacklevel=3)


def full_precision(aux: AuxNet) -> contextlib.AbstractContextManager:
    """Autocast off on ``aux``'s device, for emission: a Des-Net keeps the weights it is emitted
    with, and generated under a caller's autocast region they were bf16-rounded for good (every
    weight of a float32 model, up to 0.6% off)."""
    device = next(aux.parameters()).device.type
    return torch.autocast(device, enabled=False) if autocast_enabled(device) else contextlib.nullcontext()


def resolve_plan(cfg: LetsConfig, depth: int | None, plan: Sequence[int] | None) -> list[int]:
    """The depth plan of a request: the automatic one for ``depth``, or a checked explicit one."""
    if plan is None:
        if depth is None:
            raise ValueError("emit_des needs depth (or an explicit plan)")
        return auto_depth_plan(cfg, depth)
    plan = check_plan(cfg, plan)
    if depth is not None and depth != len(plan):
        raise ValueError(f"depth={depth} disagrees with the plan's length {len(plan)}")
    return plan


def build_des(cfg: LetsConfig, width: int, depth: int, state: dict[str, torch.Tensor],
              drop_path_rate: float, input_norm: InputNorm | None = None) -> VisionTransformer:
    """A timm ViT that takes ownership of ``state`` (tensors it may keep as its parameters).

    ``input_norm``: the normalization of the model the weights come from (an Aux-Net's, a source
    ViT's), which the Des-Net inherits, since it takes the same inputs."""
    check_finite(state, "the emitted Des-Net")  # from an Aux-Net with NaN or inf somewhere
    kwargs = vit_kwargs(cfg.learngene, width, depth, drop_path_rate)
    # Weights come from ``state``: skip timm's random init (slow even on meta tensors).
    model = VisionTransformer(**kwargs, weight_init="skip", device="meta")
    model.load_state_dict(state, strict=True, assign=True)
    return _described(model, kwargs, input_norm).eval()


def _described(model: VisionTransformer, kwargs: dict, input_norm: InputNorm | None) -> VisionTransformer:
    """``model`` with what lets_core and timm read about it: its timm arguments, timm's
    ``pretrained_cfg`` (input size, for ``resolve_data_config``) and its input normalization."""
    setattr(model, MODEL_ARGS_ATTR, kwargs)
    model.pretrained_cfg = _pretrained_cfg(kwargs, None)
    return record_input_norm(model, input_norm)


def _pretrained_cfg(kwargs: dict, input_norm: InputNorm | None) -> dict:
    """timm's description of a Des-Net's input and classifier; with its mean and std when recorded
    (without them timm assumes ImageNet's).

    ``crop_pct`` 1 and bilinear resizing: lets_core trains and evaluates on the whole image, resized
    bilinearly; timm's defaults (0.875, bicubic) enlarge each image by 8/7 and cut its border,
    which cost a Des-Net 10 points of top-1 through ``timm.data.create_transform``.
    """
    in_chans, img = kwargs["in_chans"], kwargs["img_size"]
    # Tuples, as in timm's own configs (JSON writes them as lists).
    cfg = {"input_size": (in_chans, img, img), "fixed_input_size": True, "crop_pct": 1.0, "crop_mode": "center",
           "interpolation": "bilinear", "num_classes": kwargs["num_classes"], "classifier": "head",
           "first_conv": "patch_embed.proj"}
    if input_norm is not None:
        cfg.update(mean=input_norm.mean, std=input_norm.std)
    return cfg


def scratch_des(cfg: LetsConfig, heads: int, depth: int, *, drop_path_rate: float = 0.0,
                seed: int = 0) -> VisionTransformer:
    """The baseline: a Des-Net's architecture with timm's random initialization (seeded by ``seed``).

    Same sizes, errors and timm arguments as :func:`emit_des`, so it fine-tunes and saves like one.
    """
    width = cfg.learngene.embed_dim + check_width(cfg, heads)
    depth = len(auto_depth_plan(cfg, depth))  # validates depth
    kwargs = vit_kwargs(cfg.learngene, width, depth, drop_path_rate)
    torch.manual_seed(seed)
    return _described(VisionTransformer(**kwargs), kwargs, None)


def des_param_count(cfg: LetsConfig, heads: int, depth: int) -> int:
    """Parameter count of a Des-Net, without building its weights (a meta-device skeleton)."""
    require_config(cfg, LetsConfig, "des_param_count")
    width = cfg.learngene.embed_dim + check_width(cfg, heads)
    depth = len(auto_depth_plan(cfg, depth))  # validates depth; a plain int even for numpy input
    kwargs = vit_kwargs(cfg.learngene, width, depth)
    skeleton = VisionTransformer(**kwargs, weight_init="skip", device="meta")
    return sum(p.numel() for p in skeleton.parameters())


def save_des(model: VisionTransformer, directory: str | Path) -> Path:
    """Write ``model.safetensors`` and a timm ``config.json`` that rebuild ``model`` without lets_core.

    The saved folder loads with ``timm.create_model("local-dir:<directory>", pretrained=True)``,
    or by ``VisionTransformer(**config["model_args"])`` plus a strict ``load_state_dict``. Beside
    them, ``lets_digest.json`` holds the SHA-256 of both files, which :func:`load_des` checks
    (timm ignores it). The folder is replaced as a whole (atomically); :class:`BundleError` when
    ``directory`` is an existing file, a folder holding other files, or not writable.
    """
    model = unwrapped(model)  # torch.compile's wrapper prefixes every key with "_orig_mod."
    kwargs = getattr(model, MODEL_ARGS_ATTR, None)
    if kwargs is None:
        raise ValueError(
            f"save_des needs a Des-Net made by lets_core.emit_des (it records its timm arguments in "
            f"`{MODEL_ARGS_ATTR}`); got a {type(model).__name__} without them. A Des-Net loaded by timm: load its "
            f"folder with lets_core.load_des instead, or copy the weights into one (des = lets_core.load_des(folder); "
            f"des.load_state_dict(model.state_dict()))"
        )
    kwargs = _args_of_current_head(model, kwargs)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    _check_state_matches_args(state, kwargs)
    check_finite(state, "save_des: the Des-Net")
    input_norm = recorded_input_norm(model)
    if input_norm is not None:
        input_norm.check_fits(model, "save_des")  # a record set around record_input_norm's check
    else:
        # Saved anyway (an untrained Des-Net has none), but timm would then assume ImageNet's mean and
        # std: 3 channels, which fail on a grey model and mis-scale a colour one.
        warnings.warn("save_des: the Des-Net records no input normalization, so its config.json has no mean "
                      "and std and timm will assume ImageNet's; record the ones it was trained with by "
                      "lets_core.record_input_norm(model, lets_core.InputNorm(mean, std)) (lets_core's training "
                      "records them)", stacklevel=2)
    config = {
        "architecture": TIMM_ARCHITECTURE,
        "num_classes": kwargs["num_classes"],
        "num_features": kwargs["embed_dim"],
        "global_pool": "avg",
        "model_args": kwargs,
        "pretrained_cfg": _pretrained_cfg(kwargs, input_norm),
    }

    def write(folder: Path) -> None:
        save_file(state, str(folder / DES_WEIGHTS))
        write_json(folder / DES_CONFIG, config)
        files = {name: folder / name for name in (DES_CONFIG, DES_WEIGHTS)}
        write_json(folder / DES_DIGEST, {"format_version": DES_DIGEST_VERSION, "digest": digest_record(files, {})})

    return save_folder_atomically(directory, write, owned=(DES_CONFIG, DES_WEIGHTS, DES_DIGEST), what="Des-Net")


def _args_of_current_head(model: VisionTransformer, kwargs: dict) -> dict:
    """The timm arguments with the classifier the model has now: timm's ``reset_classifier`` (the
    usual step before fine-tuning on another task) changes the head's classes and pooling after
    emission, and the saved config must rebuild the model as it is."""
    kwargs = dict(kwargs)
    kwargs["num_classes"] = int(model.num_classes)
    if isinstance(getattr(model, "global_pool", None), str):
        kwargs["global_pool"] = model.global_pool
    return kwargs


def _check_state_matches_args(state: dict[str, torch.Tensor], kwargs: dict) -> None:
    """Refuse to write a folder that load_des and timm could not load: every tensor of the model
    must be one that ``VisionTransformer(**kwargs)`` has, at the same shape."""
    skeleton = VisionTransformer(**kwargs, weight_init="skip", device="meta")
    expected = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in state.items()}
    if got == expected:
        return
    problems = [f"{k}: {got.get(k, 'missing')} in the model, {expected.get(k, 'absent')} in its arguments"
                for k in sorted(set(got) | set(expected)) if got.get(k) != expected.get(k)]
    raise ValueError(
        f"save_des: the model no longer matches the timm arguments it was emitted with, so the saved "
        f"folder could not be loaded ({len(problems)} tensors differ; {'; '.join(problems[:4])}). Save a "
        f"model whose layers are still those of a timm VisionTransformer (a new classifier from "
        f"reset_classifier is fine)")


def load_des(directory: str | Path, drop_path_rate: float | None = None) -> VisionTransformer:
    """Rebuild the Des-Net that :func:`save_des` wrote into ``directory``, in eval mode.

    Checks ``lets_digest.json`` first: a damaged or edited ``config.json`` or ``model.safetensors``
    raises :class:`BundleError` naming the file instead of loading different weights.
    ``drop_path_rate``: the stochastic depth to fine-tune it with; None keeps the saved one.
    """
    directory = Path(directory)
    if drop_path_rate is not None:
        drop_path_rate = check_drop_path_rate(drop_path_rate)
    for name in (DES_CONFIG, DES_WEIGHTS, DES_DIGEST):
        if not (directory / name).is_file():
            raise BundleError(f"Des-Net file {str(directory / name)!r} is missing; a Des-Net folder holds "
                              f"{DES_CONFIG}, {DES_WEIGHTS} and {DES_DIGEST} as written by lets_core.save_des"
                              f"{interrupted_save_hint(directory)}")
    digest_path = directory / DES_DIGEST
    meta = read_json_object(digest_path, "it is an object written by lets_core.save_des")
    if meta.get("format_version") != DES_DIGEST_VERSION:
        raise BundleError(f"{str(digest_path)!r} has format_version {meta.get('format_version')!r}; this "
                          f"lets_core reads version {DES_DIGEST_VERSION}")
    verify_digest(directory, meta.get("digest"), {}, source=digest_path, required=(DES_CONFIG, DES_WEIGHTS))
    config = read_json_object(directory / DES_CONFIG, "it is timm's config of a Des-Net")
    kwargs = config.get("model_args")
    if not isinstance(kwargs, dict):
        raise BundleError(f"{str(directory / DES_CONFIG)!r} has no 'model_args' object; it is not a Des-Net config")
    input_norm = _saved_input_norm(config, directory / DES_CONFIG)
    if drop_path_rate is not None:  # a training-time setting: the weights are the same
        kwargs = dict(kwargs, drop_path_rate=drop_path_rate)
    try:
        # Weights come from the file: skip timm's random init, as emit_des does.
        model = VisionTransformer(**kwargs, weight_init="skip", device="meta")
        model.load_state_dict(load_file(str(directory / DES_WEIGHTS)), strict=True, assign=True)
    except (TypeError, ValueError, RuntimeError, SafetensorError) as exc:
        raise BundleError(f"{str(directory / DES_WEIGHTS)!r} does not match its {DES_CONFIG}: "
                          f"{str(exc)[:300]}") from exc
    return _described(model, kwargs, input_norm).eval()


def _saved_input_norm(config: dict, path: Path) -> InputNorm | None:
    """The mean and std in a Des-Net config's ``pretrained_cfg``; None in a folder saved before
    lets_core recorded them."""
    pretrained = config.get("pretrained_cfg")
    if not isinstance(pretrained, dict) or "mean" not in pretrained and "std" not in pretrained:
        return None
    return InputNorm.from_dict(pretrained, f"{str(path)!r} pretrained_cfg", BundleError)
