"""The end-to-end demo: does a LeTs initialization beat training from scratch?

On Fashion-MNIST (scikit-learn digits when it is not installed): train a teacher, train the
Aux-Net by distillation (stage 1), then for a grid of Des-Net sizes evaluate each emitted Des-Net
directly, fine-tune it for one epoch, and train the same architecture from timm's random
initialization for one and for several epochs with the same loop and recipe. Writes
``report.json``, ``report.md`` and ``report.png`` under ``out``.

    lets demo --out runs/demo            # 6-9 minutes on 2 CPU cores (30,000 training images)
    lets demo --quick --out runs/quick   # a data subset, well under 3 minutes
"""

from __future__ import annotations

import dataclasses
import json
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from . import presets
from .bundle import TENSORS_FILE, storage_report
from .data import FASHION_MNIST_INSTALL, fashion_mnist_available, load_splits
from .depth_plan import auto_depth_plan
from .des import des_param_count, emit_des
from .train import (BUNDLE_DIR, SMALL_RESNET, DistEnv, TrainConfig, evaluate_split, finetune, scratch_des,
                    train_aux, train_teacher)

DEMO_DATASETS = ("auto", "fashion-mnist", "digits")


@dataclass
class DemoConfig:
    """Everything the demo does; ``for_mode(quick)`` gives the two standard settings.

    lr values are quoted for a batch of 512 and scaled linearly to ``batch_size``. The Des-Net
    fine-tuning and the scratch baseline share one recipe (``des_lr``, ``des_warmup_epochs``):
    the comparison changes only the initialization. des_lr = 1.6e-2 is the best of 2e-3, 8e-3 and
    1.6e-2 for one-epoch *scratch* training summed over H2-L4 and H4-L8 on Fashion-MNIST's
    validation split (LeTs fine-tuning barely depends on it); see benchmarks/results/demo/NOTES.md.
    """

    out: str = "runs/demo"
    quick: bool = False
    dataset: str = "auto"
    data_dir: str | None = None
    seed: int = 0
    sizes: list[tuple[int, int]] = field(default_factory=lambda: [(2, 4), (3, 6), (4, 8)])
    strategy: str = "continuous"
    teacher_arch: str = SMALL_RESNET
    teacher_epochs: int = 3
    teacher_lr: float = 4e-3
    aux_epochs: int = 5
    aux_lr: float = 8e-3
    alpha: float = 1.0
    tau: float = 1.0
    des_lr: float = 1.6e-2
    des_warmup_epochs: float = 0.2
    scratch_epochs: list[int] = field(default_factory=lambda: [1, 2, 4])
    batch_size: int = 128
    val_size: int = 2000
    # A seeded half of Fashion-MNIST's training images keeps the default run near 6-9 minutes on
    # 2 shared CPU cores (the full 58,000 took 23 minutes on a loaded machine); 58000 uses them all.
    train_limit: int | None = 30000
    test_limit: int | None = None
    progress: bool = True

    @classmethod
    def for_mode(cls, quick: bool, **overrides: Any) -> "DemoConfig":
        base: dict[str, Any] = {}
        if quick:
            # A data subset and one epoch per stage: a smoke test of every step, not a result.
            base = dict(sizes=[(2, 2), (4, 8)], teacher_epochs=1, aux_epochs=1, scratch_epochs=[1, 2],
                        val_size=200, train_limit=2048, test_limit=1000, out="runs/demo-quick")
        merged = {**base, **{k: v for k, v in overrides.items() if v is not None}}
        return cls(quick=quick, **merged)

    def __post_init__(self) -> None:
        if self.dataset not in DEMO_DATASETS:
            raise ValueError(f"demo dataset must be one of {list(DEMO_DATASETS)}, got {self.dataset!r}")
        self.sizes = [tuple(int(v) for v in s) for s in self.sizes]
        if not self.sizes:
            raise ValueError("the demo needs at least one Des-Net size")
        if not self.scratch_epochs or any(e < 1 for e in self.scratch_epochs):
            raise ValueError(f"scratch_epochs must be a non-empty list of positive integers, got {self.scratch_epochs!r}")
        self.scratch_epochs = sorted(set(int(e) for e in self.scratch_epochs))


def pick_dataset(cfg: DemoConfig) -> str:
    if cfg.dataset != "auto":
        return cfg.dataset
    if fashion_mnist_available(cfg.data_dir):
        return "fashion-mnist"
    print(f"Fashion-MNIST is not installed, so the demo runs on scikit-learn's digits (1,797 images of 8x8, "
          f"resized to 28x28): a much smaller task. For the real demo install Fashion-MNIST with "
          f"`{FASHION_MNIST_INSTALL}`.", flush=True)
    return "digits"


def run_demo(cfg: DemoConfig, env: DistEnv | None = None) -> dict:
    """Run the whole pipeline and write the report; returns the report as a dict."""
    from .demo_report import print_table, write_report

    env = env or DistEnv()
    started = time.perf_counter()
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    dataset = pick_dataset(cfg)
    model_cfg = presets.tiny(num_classes=10)
    lg = model_cfg.learngene
    for heads, depth in cfg.sizes:
        des_param_count(model_cfg, heads, depth)  # fail on a bad size before any training
    splits = load_splits(dataset, cfg.data_dir if dataset == "fashion-mnist" else None, image_size=lg.img_size,
                         channels=lg.in_chans, val_size=cfg.val_size, train_limit=cfg.train_limit,
                         test_limit=cfg.test_limit, seed=cfg.seed)
    _say(env, f"data: {splits.describe()}")
    timings: dict[str, float] = {}

    def recipe(epochs: int, lr: float, warmup: float, alpha: float = 0.0) -> TrainConfig:
        return TrainConfig(epochs=epochs, batch_size=cfg.batch_size, lr=lr, warmup_epochs=warmup, alpha=alpha,
                           tau=cfg.tau, seed=cfg.seed, progress=cfg.progress)

    t0 = time.perf_counter()
    teacher, teacher_meta = train_teacher(splits, recipe(cfg.teacher_epochs, cfg.teacher_lr, 0.3), out / "teacher",
                                          cfg.teacher_arch, env=env)
    timings["teacher"] = time.perf_counter() - t0
    _say(env, f"teacher {cfg.teacher_arch}: test top-1 {teacher_meta['test_top1']:.4f} ({timings['teacher']:.0f} s)")

    t0 = time.perf_counter()
    aux_result = train_aux(model_cfg, splits, recipe(cfg.aux_epochs, cfg.aux_lr, 0.5, cfg.alpha), out / "aux",
                           teacher=teacher, env=env)
    aux = aux_result.model.eval()
    aux_test = evaluate_split(aux, splits, env=env)["top1"]
    timings["aux"] = time.perf_counter() - t0
    _say(env, f"Aux-Net (stage 1, {cfg.aux_epochs} epochs): test top-1 {aux_test:.4f} ({timings['aux']:.0f} s)")

    rows = []
    for heads, depth in cfg.sizes:
        t0 = time.perf_counter()
        rows.append(_one_size(cfg, model_cfg, aux, splits, heads, depth, recipe, out, env))
        timings[f"des_h{heads}_l{depth}"] = time.perf_counter() - t0
        r = rows[-1]
        _say(env, f"Des-H{heads}-L{depth}: direct {r['lets_direct_top1']:.4f}, LeTs+1 epoch {r['lets_ft1_top1']:.4f}, "
                  f"scratch {r['scratch_top1_by_epoch']} ({timings[f'des_h{heads}_l{depth}']:.0f} s)")

    bundle_file = out / "aux" / BUNDLE_DIR / TENSORS_FILE
    storage = storage_report(aux, cfg.sizes)
    timings["total"] = time.perf_counter() - started
    report = {
        "mode": "quick" if cfg.quick else "default",
        "dataset": splits.describe(),
        "demo_config": dataclasses.asdict(cfg),
        "model_config": model_cfg.to_dict(),
        "teacher": {"arch": cfg.teacher_arch, "params": teacher_meta["params"], "test_top1": teacher_meta["test_top1"]},
        "aux": {"params": aux.trainable_parameter_count(), "test_top1": aux_test, "history": aux_result.history},
        "bundle": {"params": storage.bundle_params, "bytes": bundle_file.stat().st_size if bundle_file.is_file() else None,
                   "des_params_total": storage.des_total, "path": str(bundle_file.parent)},
        "rows": rows,
        "timings_seconds": {k: round(v, 1) for k, v in timings.items()},
        "environment": {"torch": torch.__version__, "threads": torch.get_num_threads(), "python": platform.python_version(),
                        "machine": platform.machine(), "device": str(env.device), "processes": env.world_size},
    }
    if env.is_main:
        write_report(report, out)
        print_table(report)
    return report


def _one_size(cfg, model_cfg, aux, splits, heads, depth, recipe, out, env) -> dict:
    des = emit_des(aux, heads, depth, strategy=cfg.strategy)
    direct = evaluate_split(des, splits, env=env)["top1"]
    ft = finetune(des, splits, recipe(1, cfg.des_lr, cfg.des_warmup_epochs), out / "des" / f"h{heads}_l{depth}_lets",
                  env=env, desc=f"LeTs H{heads}-L{depth}")
    lets_ft1 = evaluate_split(ft.model, splits, env=env)["top1"]
    scratch = {}
    for epochs in cfg.scratch_epochs:
        model = scratch_des(model_cfg, heads, depth, seed=cfg.seed)
        run = finetune(model, splits, recipe(epochs, cfg.des_lr, cfg.des_warmup_epochs),
                       out / "des" / f"h{heads}_l{depth}_scratch_{epochs}ep", env=env,
                       desc=f"scratch H{heads}-L{depth} ({epochs} ep)")
        scratch[str(epochs)] = evaluate_split(run.model, splits, env=env)["top1"]
    return {"heads": heads, "depth": depth, "width": heads * model_cfg.learngene.head_dim,
            "params": sum(p.numel() for p in des.parameters()), "plan": auto_depth_plan(model_cfg, depth),
            "lets_direct_top1": direct, "lets_ft1_top1": lets_ft1, "scratch_top1_by_epoch": scratch}


def _say(env: DistEnv, text: str) -> None:
    if env.is_main:
        print(text, flush=True)
