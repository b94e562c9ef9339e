"""Where a run's model starts from and which teacher it distills from, recorded in its checkpoint
so that a resume from another starting model or with another teacher is refused.

A resume already checks the training configuration, the objective and the data (loop.fit), and
the load checks the model's shapes. That left two silent cases: a run started from scratch
resumed as the Des-Net emitted from a bundle (same shapes, so the load passes, and the scratch
model's accuracy is then reported as the emitted one's), and a stage 1 resumed with another
teacher (which it distills from for the remaining epochs).

The record is ``{"model": <the caller's description of the starting model, JSON values>,
"teacher": <SHA-256 of the teacher's state, or None>}``. The caller describes the model because
only it knows what the starting weights are (a bundle and the size emitted from it, a seed); a
fingerprint of the initial weights would refuse legitimate resumes, since weights emitted on
another device or thread count differ in the last bits.
"""

from __future__ import annotations

import hashlib
from typing import Any, Mapping

import torch
from torch import nn

# What a checkpoint written before origins were recorded holds instead of a record.
NOT_RECORDED = None


def state_fingerprint(module: nn.Module) -> str:
    """SHA-256 of a module's state: every entry's name, dtype, shape and bytes, in order."""
    return tensors_fingerprint(module.state_dict())


def tensors_fingerprint(state: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 of named tensors: every entry's name, dtype, shape and bytes, in order."""
    h = hashlib.sha256()
    for name, tensor in state.items():
        flat = tensor.detach().cpu().contiguous().reshape(-1)
        h.update(f"{name}|{flat.dtype}|{tuple(tensor.shape)}\n".encode())
        h.update(memoryview(flat.view(torch.uint8).numpy()).cast("B"))
    return h.hexdigest()


def origin_record(model_origin: dict[str, Any] | None, teacher: nn.Module | None) -> dict[str, Any]:
    """The record a checkpoint keeps: the starting model's description and the teacher's fingerprint."""
    return {"model": model_origin, "teacher": None if teacher is None else state_fingerprint(teacher)}


def origin_change(saved: dict[str, Any] | None, now: dict[str, Any]) -> str | None:
    """None when a checkpoint's record matches this run's; otherwise the differences, both sides named."""
    if saved is NOT_RECORDED:
        return ("the checkpoint records neither the model it started from nor its teacher (written by an older "
                "lets_core), so they cannot be checked")
    changes = []
    before, after = saved.get("model"), now["model"]
    if isinstance(before, dict) and isinstance(after, dict):
        changes += [f"starting model's {k}: checkpoint {_short(before.get(k))} vs now {_short(after.get(k))}"
                    for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)]
    elif before != after:
        changes.append(f"starting model: checkpoint {_describe(before)} vs now {_describe(after)}")
    if saved.get("teacher") != now["teacher"]:
        changes.append(f"teacher: checkpoint {_teacher(saved.get('teacher'))} vs now {_teacher(now['teacher'])}")
    return "; ".join(changes) or None


def _describe(model_origin: dict[str, Any] | None) -> str:
    if model_origin is None:
        return "not described"
    return "{" + ", ".join(f"{k}: {_short(v)}" for k, v in model_origin.items()) + "}"


def _teacher(fingerprint: str | None) -> str:
    return "none" if fingerprint is None else f"state {fingerprint[:12]}"


def _short(value: Any) -> str:
    return f"{value[:12]}..." if isinstance(value, str) and len(value) == 64 else repr(value)
