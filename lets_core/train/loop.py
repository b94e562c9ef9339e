"""The one training loop every stage uses (teacher, Aux-Net, Des-Net fine-tuning, scratch baseline).

Per epoch: set the epoch of the loader (order and augmentation depend on it), train with a
progress bar, evaluate on the validation split, then on rank 0 write the checkpoint atomically
and append the epoch's JSON line. ``resume=True`` restores the last checkpoint, RNG states
included, so the continued run takes exactly the steps an uninterrupted one would have.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn
from tqdm.auto import tqdm

from ..data import Splits, eval_loader, set_epoch, train_loader
from ..input_norm import InputNorm, fed_as, normalized_for, record_input_norm
from .checkpoint import CHECKPOINT_FILE, CheckpointError, load_checkpoint, save_checkpoint, set_rng_state
from .config import TrainConfig
from .distributed import DistEnv, all_reduce_sum, barrier, unwrap, wrap_ddp
from .losses import DistillationLoss
from .data_record import data_change
from .data_record import data_record as compute_data_record  # fit's argument data_record is its value
from .objectives import DistillationObjective, Objective, settings_change, train_config_conflict
from .optim import build_optimizer, scaled_lr, warmup_cosine
from .origin import origin_change, origin_record

LOG_FILE = "log.jsonl"
StepHook = Callable[[int, int], None]


def history_seconds(history: list[dict]) -> float | None:
    """The training time a fit history records (the sum of its epochs' ``epoch_seconds``; it is
    kept in checkpoints, so a resumed or reused training still tells what it cost), or None when
    the history records none."""
    times = [h["epoch_seconds"] for h in history if "epoch_seconds" in h]
    return float(sum(times)) if times else None


@dataclass
class FitResult:
    """Per-epoch history (what log.jsonl holds) and the trained model (unwrapped from DDP)."""

    model: nn.Module
    history: list[dict]

    @property
    def last(self) -> dict:
        return self.history[-1] if self.history else {}


def fit(model: nn.Module, splits: Splits, cfg: TrainConfig, *, kind: str, teacher: nn.Module | None = None,
        out_dir: str | Path | None = None, resume: bool = False, env: DistEnv | None = None,
        on_step: StepHook | None = None, desc: str | None = None, objective: Objective | None = None,
        data_record: dict[str, Any] | None = None, origin: dict[str, Any] | None = None) -> FitResult:
    """Train ``model`` on ``splits.train`` for ``cfg.epochs`` epochs, validating on ``splits.val``.

    Args:
        kind: what is trained ("teacher", "aux", "des", ...); recorded in the checkpoint so that
            resuming into the wrong kind of model fails clearly.
        teacher: needed when the objective distills (``cfg.alpha > 0`` for the default one); run
            in eval mode on the same augmented batch.
        out_dir: where ``checkpoint.pt`` and ``log.jsonl`` go (rank 0 writes); None keeps nothing.
        resume: continue from ``out_dir/checkpoint.pt`` if it exists.
        env: the distributed environment (default: one process on CPU).
        on_step: called as ``on_step(epoch, step)`` after every optimizer step.
        objective: the loss of one batch (:mod:`lets_core.train.objectives`); default
            ``DistillationObjective`` with ``cfg``'s alpha, tau and label smoothing. Its settings are
            saved in the checkpoint and a resume with other settings is refused.
        data_record: ``splits``' record (:func:`lets_core.train.data_record.data_record`), which the
            checkpoint keeps and a resume must match, when the caller has it already: computing it
            hashes the training and validation images (train_teacher's cache key holds it).
        origin: what the model's starting weights are, as JSON values (e.g. the bundle and the size
            a Des-Net was emitted at, or "scratch" and a seed). The checkpoint keeps it with the
            teacher's fingerprint, and a resume from another starting model or with another teacher
            is refused (:mod:`lets_core.train.origin`). None: the model is not described, only the
            teacher is checked.

    Input normalization (:mod:`lets_core.input_norm`): a model that records one (an emitted or
    saved Des-Net) is trained on inputs normalized as it records, whatever the data's own
    statistics; any other with the statistics of ``splits``' training split. The trained model
    records the one it was trained with. A teacher that records another normalization is fed
    the batches converted to its own.
    """
    env = env or DistEnv()
    if objective is None:
        objective = DistillationObjective(DistillationLoss(cfg.alpha, cfg.tau, cfg.label_smoothing))
    conflict = train_config_conflict(objective, cfg)
    if conflict is not None:
        # Otherwise the run would record fit's values while its loss used the objective's.
        raise ValueError(f"the objective was built from another TrainConfig than the one given to fit ({conflict}); "
                         f"build it from the same TrainConfig")
    if objective.teacher_reason is not None and teacher is None:
        raise ValueError(f"{objective.teacher_reason} distills from a teacher, but none was given; pass one or "
                         f"change that setting")
    model = model.to(env.device)
    splits = normalized_for(model, splits)
    if teacher is not None:
        # Converted when it was trained with other statistics; before origin_record, so that the
        # checkpoint's teacher fingerprint covers the conversion.
        teacher = fed_as(teacher.to(env.device).eval(), splits).to(env.device)
    loader = train_loader(splits, cfg.batch_size, seed=cfg.seed, augment=cfg.augment, rank=env.rank,
                          world_size=env.world_size, num_workers=cfg.num_workers)
    val = eval_loader(splits, "val", cfg.eval_batch_size, rank=env.rank, world_size=env.world_size,
                      num_workers=cfg.num_workers) if len(splits.val) else None
    steps = len(loader)
    optimizer = build_optimizer(model, scaled_lr(cfg.lr, cfg.batch_size, cfg.lr_base_batch), cfg.weight_decay,
                                cfg.lr_scales())
    scheduler = warmup_cosine(optimizer, cfg.epochs * steps, int(round(cfg.warmup_epochs * steps)), cfg.min_lr_ratio)
    if cfg.warmup_epochs >= cfg.epochs > 0 and env.is_main:
        warnings.warn(f"the warm-up ({cfg.warmup_epochs:g} epochs) is as long as the run ({cfg.epochs} epochs): the "
                      f"learning rate only ramps up and never follows the cosine decay; shorten --warmup-epochs or "
                      f"train longer", stacklevel=2)
    amp_dtype = _amp_dtype(cfg.amp, env.device)
    scaler = torch.amp.GradScaler(env.device.type, enabled=amp_dtype == torch.float16)

    out = Path(out_dir) if out_dir is not None else None
    start, history = 0, []
    data = None if out is None else data_record if data_record is not None else compute_data_record(splits)
    started_from = None if out is None else origin_record(origin, teacher)
    if out is not None and (out / CHECKPOINT_FILE).exists() and not (out / CHECKPOINT_FILE).is_file():
        # Checked before training: the first save would fail only after a whole epoch.
        raise CheckpointError(f"{str(out / CHECKPOINT_FILE)!r} is not a file, so no checkpoint can be read or written "
                              f"there; remove it or use another --out")
    if resume and out is not None and (out / CHECKPOINT_FILE).is_file():
        start, history = _restore(out / CHECKPOINT_FILE, kind, cfg, objective, data, started_from, model, optimizer,
                                  scheduler, scaler)
        if env.is_main:
            _write_log(out, history)
    ddp = wrap_ddp(model, env)

    for epoch in range(start, cfg.epochs):
        set_epoch(loader, epoch)
        t0 = time.perf_counter()
        train = _train_epoch(ddp, loader, objective, teacher, optimizer, scheduler, scaler, amp_dtype, cfg, env,
                             epoch, on_step, desc or kind)
        elapsed = time.perf_counter() - t0
        record = {"epoch": epoch + 1, "train_loss": train["loss"], "train_top1": train["top1"],
                  "lr": optimizer.param_groups[0]["lr"], "epoch_seconds": round(elapsed, 3),
                  "images_per_second": round(train["count"] / max(elapsed, 1e-9), 1)}
        if val is not None:
            metrics = evaluate(model, val, env, amp=cfg.amp)
            record.update(val_loss=metrics["loss"], val_top1=metrics["top1"])
        history.append(record)
        if cfg.progress and env.is_main:
            val_text = f", val top-1 {record['val_top1']:.4f}" if "val_top1" in record else ""
            tqdm.write(f"{desc or kind} epoch {epoch + 1}/{cfg.epochs}: train loss {train['loss']:.4f}, "
                       f"top-1 {train['top1']:.4f}{val_text} ({elapsed:.0f} s, {record['images_per_second']:.0f} img/s)")
        if out is not None and env.is_main:
            save_checkpoint(out / CHECKPOINT_FILE, {
                "kind": kind, "epoch": epoch + 1, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(), "history": history,
                "train_config": cfg.to_dict(), "objective": objective.settings(), "data": data,
                "origin": started_from})
            _write_log(out, history)
        barrier(env)
    return FitResult(record_input_norm(unwrap(model), InputNorm.of(splits)), history)


@torch.no_grad()
def evaluate(model: nn.Module, loader, env: DistEnv | None = None, amp: str = "auto") -> dict:
    """Top-1 accuracy and mean cross-entropy over ``loader``, summed across ranks."""
    env = env or DistEnv()
    was_training = model.training
    model.eval()
    dtype = _amp_dtype(amp, env.device)
    sums = torch.zeros(3, dtype=torch.float64, device=env.device)
    for x, y in loader:
        x, y = x.to(env.device, non_blocking=True), y.to(env.device, non_blocking=True)
        with _autocast(env.device, dtype):
            logits = model(x)
        sums[0] += nn.functional.cross_entropy(logits.float(), y, reduction="sum")
        sums[1] += (logits.argmax(-1) == y).sum()
        sums[2] += y.numel()
    all_reduce_sum(sums, env)
    model.train(was_training)
    n = sums[2].item()
    if n == 0:
        raise ValueError("evaluate: the loader gave no images, so top-1 and loss are undefined")
    if not math.isfinite(sums[0].item()):  # its top-1 (argmax of NaN logits) would read like a weak model's
        raise FloatingPointError(f"evaluate: the loss is {sums[0].item() / n}, so the model's outputs are not finite "
                                 f"(NaN or inf in its weights or its input)")
    return {"loss": sums[0].item() / n, "top1": sums[1].item() / n, "count": int(n)}


def _train_epoch(model, loader, objective, teacher, optimizer, scheduler, scaler, amp_dtype, cfg, env,
                 epoch, on_step, desc) -> dict:
    model.train()
    sums = torch.zeros(3, dtype=torch.float64, device=env.device)
    bar = tqdm(loader, desc=f"{desc} epoch {epoch + 1}/{cfg.epochs}", leave=False,
               disable=not (cfg.progress and env.is_main), dynamic_ncols=True)
    t0 = time.perf_counter()
    for step, (x, y) in enumerate(bar):
        x, y = x.to(env.device, non_blocking=True), y.to(env.device, non_blocking=True)
        with _autocast(env.device, amp_dtype):
            teacher_logits = None
            if objective.teacher_reason is not None:
                with torch.no_grad():
                    teacher_logits = teacher(x)
            loss, logits = objective(model, x, y, teacher_logits, epoch, step)
        if not math.isfinite(loss.item()):
            # At the first step nothing has been learnt yet: the loss's own settings are at fault.
            cause = (f"no update has been made yet, so the loss's own settings make it non-finite (objective: "
                     f"{objective.settings() or 'the default'}, alpha={cfg.alpha}, tau={cfg.tau})"
                     if scheduler.last_epoch == 0 else f"lower the learning rate (lr={cfg.lr}) or enable clip_grad")
            raise FloatingPointError(f"loss became {loss.item()} at epoch {epoch + 1}, step {step}; {cause}")
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if cfg.clip_grad is not None:
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad)
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        sums[0] += loss.detach().double() * y.numel()
        sums[1] += (logits.detach().argmax(-1) == y).sum()
        sums[2] += y.numel()
        if step % 10 == 0 and env.is_main and cfg.progress:
            seen = sums[2].item() * env.world_size
            bar.set_postfix(loss=f"{sums[0].item() / sums[2].item():.3f}",
                            acc=f"{sums[1].item() / sums[2].item():.3f}",
                            img_s=f"{seen / (time.perf_counter() - t0):.0f}")
        if on_step is not None:
            on_step(epoch, step)
    bar.close()
    all_reduce_sum(sums, env)
    n = max(sums[2].item(), 1.0)
    return {"loss": sums[0].item() / n, "top1": sums[1].item() / n, "count": int(sums[2].item())}


def _restore(path: Path, kind: str, cfg: TrainConfig, objective: Objective, data: dict, started_from: dict, model,
             optimizer, scheduler, scaler) -> tuple[int, list]:
    state = load_checkpoint(path, kind)
    change = data_change(state.get("data"), data)
    if change:
        raise CheckpointError(f"cannot resume from {str(path)!r} on other data ({change}); resume with the "
                              "data options of the first run, or use another --out")
    diff = cfg.differences(state.get("train_config", {}))
    if diff:
        details = ", ".join(f"{k}: checkpoint {a!r} vs now {b!r}" for k, (a, b) in sorted(diff.items()))
        raise CheckpointError(f"cannot resume from {str(path)!r}: the training configuration changed ({details})")
    # Checkpoints written before objectives were recorded hold none: the default objective's None.
    change = settings_change(state.get("objective"), objective.settings())
    # An objective may know that other settings train the same way (a default size spelled out).
    same_run = getattr(objective, "same_run", None)
    if change and not (same_run is not None and same_run(state.get("objective"))):
        raise CheckpointError(f"cannot resume from {str(path)!r}: the training objective changed ({change})")
    change = origin_change(state.get("origin"), started_from)
    if change:
        raise CheckpointError(f"cannot resume from {str(path)!r}: this run starts from another model or teacher "
                              f"({change}); resume with those of the first run, or use another --out")
    try:
        model.load_state_dict(state["model"], strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"checkpoint {str(path)!r} holds a model of another shape: {_clip(str(exc))}") from exc
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    scaler.load_state_dict(state["scaler"])
    set_rng_state(state["rng"])
    return int(state["epoch"]), list(state["history"])


def _clip(text: str, limit: int = 400) -> str:
    """torch lists every mismatched tensor: thousands of characters on one line for a whole model."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else f"{flat[:limit]}... ({len(flat) - limit} more characters)"


def _write_log(out: Path, history: list[dict]) -> None:
    # Rewritten whole from the checkpoint's history, so the log never holds an epoch twice or an
    # epoch the checkpoint lacks, whatever moment a previous run was killed at.
    tmp = out / (LOG_FILE + ".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in history))
    tmp.replace(out / LOG_FILE)


def _amp_dtype(mode: str, device: torch.device) -> torch.dtype | None:
    if mode == "off" or (mode == "auto" and device.type != "cuda"):
        return None
    if mode == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"bf16": torch.bfloat16, "fp16": torch.float16}[mode]


def _autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)
