"""Losses, weight-decay groups and the learning-rate schedule."""

from __future__ import annotations

import math

import pytest
import torch

import lets_core
from lets_core.train import DistillationLoss, build_optimizer, kd_loss, param_groups, scaled_lr, warmup_cosine
from lets_core.train.config import TrainConfig


def _softmax(v):
    e = [math.exp(a) for a in v]
    return [a / sum(e) for a in e]


def test_kd_loss_matches_hand_computation():
    s, t, tau = [1.0, 2.0, 0.5], [0.2, -1.0, 3.0], 2.0
    p_s, p_t = _softmax([a / tau for a in s]), _softmax([a / tau for a in t])
    by_hand = sum(pt * (math.log(pt) - math.log(ps)) for pt, ps in zip(p_t, p_s)) * tau ** 2
    got = kd_loss(torch.tensor([s, s]), torch.tensor([t, t]), tau)
    assert got.item() == pytest.approx(by_hand, rel=1e-6)
    assert kd_loss(torch.tensor([s]), torch.tensor([s]), tau).item() == pytest.approx(0.0, abs=1e-7)


def test_distillation_mix():
    torch.manual_seed(0)
    s, t, y = torch.randn(4, 5), torch.randn(4, 5), torch.tensor([0, 1, 2, 3])
    ce = torch.nn.functional.cross_entropy(s, y)
    kd = kd_loss(s, t, 3.0)
    assert DistillationLoss(0.0)(s, y).item() == pytest.approx(ce.item())
    assert DistillationLoss(1.0, 3.0)(s, y, t).item() == pytest.approx(kd.item())
    assert DistillationLoss(0.25, 3.0)(s, y, t).item() == pytest.approx(0.75 * ce.item() + 0.25 * kd.item())
    with pytest.raises(ValueError, match="alpha=0.5 needs teacher logits"):
        DistillationLoss(0.5)(s, y)
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\], got 1.5"):
        DistillationLoss(1.5)
    with pytest.raises(ValueError, match="tau must be > 0, got 0"):
        DistillationLoss(1.0, 0)


def test_weight_decay_groups_of_the_aux_net():
    aux = lets_core.AuxNet(lets_core.presets.tiny())
    decay, no_decay = param_groups(aux, 0.05)
    names = {id(p): n for n, p in aux.named_parameters()}
    decayed = {names[id(p)] for p in decay["params"]}
    spared = {names[id(p)] for p in no_decay["params"]}
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0
    assert decayed == {"learngene.patch_w", "learngene.head_w", "learngene.blocks.qkv_w",
                       "learngene.blocks.proj_w", "learngene.blocks.fc1_w", "learngene.blocks.fc2_w"}
    for name in ("width.f_e", "width.f_qkv", "width.f_ffn", "width.f_cls", "depth.g", "pos_embed",
                 "learngene.blocks.norm1_w", "learngene.blocks.qkv_b", "learngene.fc_norm_w", "learngene.head_b"):
        assert name in spared
    assert "learngene.pos_embed" not in decayed | spared  # frozen: not optimized at all


def test_weight_decay_groups_of_a_timm_vit():
    des = lets_core.emit_des(lets_core.AuxNet(lets_core.presets.tiny()), heads=3, depth=2)
    decay, no_decay = param_groups(des, 0.1)
    names = {id(p): n for n, p in des.named_parameters()}
    spared = {names[id(p)] for p in no_decay["params"]}
    assert "pos_embed" in spared and "blocks.0.norm1.weight" in spared and "blocks.0.attn.qkv.bias" in spared
    assert all(names[id(p)].endswith("weight") for p in decay["params"])


def test_lr_scales_of_f_and_g_survive_the_schedule():
    aux = lets_core.AuxNet(lets_core.presets.tiny())
    cfg = TrainConfig(f_lr_scale=0.25, g_lr_scale=4.0)
    opt = build_optimizer(aux, 1e-2, 0.05, cfg.lr_scales())
    names = {id(p): n for n, p in aux.named_parameters()}
    sched = warmup_cosine(opt, total_steps=10, warmup_steps=2)
    for _ in range(5):
        opt.step()
        sched.step()
    base = opt.param_groups[0]["lr"]
    for group in opt.param_groups:
        kinds = {names[id(p)].split(".")[0] for p in group["params"]}
        expected = 0.25 if kinds == {"width"} else 4.0 if kinds == {"depth"} else 1.0
        assert "width" not in kinds or kinds == {"width"}, kinds  # F never shares a group with others
        assert group["lr_scale"] == expected and group["lr"] == pytest.approx(base * expected)
    assert opt.param_groups[0]["weight_decay"] == 0.05 and opt.param_groups[0]["lr_scale"] == 1.0


def test_warmup_cosine_schedule():
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([p], lr=1.0)
    sched = warmup_cosine(opt, total_steps=10, warmup_steps=4, min_lr_ratio=0.1)
    lrs = []
    for _ in range(10):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[:4] == pytest.approx([0.2, 0.4, 0.6, 0.8])
    assert lrs[4] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[4:], lrs[5:])) and lrs[-1] > 0.1
    assert scaled_lr(5e-4, 128, 512) == pytest.approx(1.25e-4)


def test_train_config_validation():
    with pytest.raises(ValueError, match="amp must be one of .* got 'fp8'"):
        TrainConfig(amp="fp8")
    with pytest.raises(ValueError, match="epochs must be a positive integer, got 0"):
        TrainConfig(epochs=0)
    for name, bad in (("lr", float("inf")), ("weight_decay", float("nan")), ("tau", float("inf")),
                      ("warmup_epochs", float("nan")), ("f_lr_scale", 0.0), ("g_lr_scale", float("inf"))):
        with pytest.raises(ValueError, match=f"{name} must be a finite number"):
            TrainConfig(**{name: bad})
    with pytest.raises(ValueError, match=r"unknown keys \['lr_max'\] in TrainConfig"):
        TrainConfig.from_dict({"lr_max": 1})
    assert TrainConfig(lr=1e-3).differences(TrainConfig(lr=2e-3, progress=False).to_dict()) == {"lr": (2e-3, 1e-3)}
