"""``lets compare``: LeTs against the methods a user would weigh it against, side by side, on one
dataset with one teacher, one stage-1 recipe and budget, and one tuning recipe.

Each method's stage 1 runs once (cached in ``OUT/stage1-<method>``: a later run with the same
``--out`` reuses finished work, and one whose settings changed is refused by the checkpoint's
checks), then every requested size is emitted and evaluated directly (0 tuning epochs) and after
each requested number of tuning epochs (a separate run per number, with its own schedule, as the
demo's scratch runs). Methods:

- ``lets``: the paper's stage 1 (:func:`lets_core.train.train_aux`), Des-Nets by :func:`lets_core.emit_des`;
- ``lets-elastic``: the same with elastic stage 1 (:mod:`lets_core.elastic`);
- every baseline of :data:`lets_core.baselines.METHODS` (imwlm, tleg, sws, nested, pre-fin, scratch).

Every method gets the same teacher, loss, stage-1 recipe and epochs, and the same tuning recipe;
none is tuned more than another (the recipes are the demo's, chosen on validation data for LeTs
stage 1 and for scratch training: see ``benchmarks/results/demo/NOTES.md``). ``tune_lrs`` may
instead be a grid: then every method, size and length is tuned at each lr and keeps the run with
the best validation top-1, the same search for all.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from timm.models.vision_transformer import VisionTransformer

from . import presets
from .baselines import ALIASES, METHODS
from .compare_report import LETS_METHODS, REPORT_FILES, write_compare_report
from .config import LetsConfig, finite_number
from .demo import (DEMO_DATASETS, announce, check_positive_counts, experiment_recipe, experiment_sizes,
                   experiment_splits, experiment_teacher, start_experiment)
from .des import des_param_count, emit_des
from .elastic import ElasticConfig
from .errors import DesSizeError
from .info import run_environment
from .selection import STRATEGIES
from .train import SMALL_RESNET, DistEnv, TrainConfig, evaluate_split, finetune, history_seconds, train_aux
from .train.origin import state_fingerprint, tensors_fingerprint

METHOD_NAMES = LETS_METHODS + tuple(METHODS)
# Images resized to the tiny preset's 28 x 28 grey: any image folder works.
COMPARE_DATASETS = DEMO_DATASETS + ("folder",)


@dataclass
class CompareConfig:
    """What ``lets compare`` runs. lr values are per 512 images, scaled to ``batch_size``."""

    out: str = "runs/compare"
    methods: list[str] = field(default_factory=lambda: list(METHOD_NAMES))
    sizes: list[tuple[int, int]] = field(default_factory=lambda: [(2, 4), (3, 6), (4, 8)])
    tune_epochs: list[int] = field(default_factory=lambda: [0, 1, 2, 4])
    dataset: str = "auto"
    data_dir: str | None = None
    seed: int = 0
    teacher_arch: str = SMALL_RESNET
    teacher_epochs: int = 3
    teacher_lr: float = 4e-3
    stage1_epochs: int = 5
    stage1_lr: float = 2.4e-2
    alpha: float = 1.0
    tau: float = 1.0
    # One lr, or a grid searched on the validation split for every method, size and length alike.
    tune_lrs: list[float] = field(default_factory=lambda: [1.6e-2])
    tune_warmup_epochs: float = 0.2
    strategy: str = "continuous"
    batch_size: int = 128
    # A fraction below 1 or a count of images; None: 2000 on Fashion-MNIST, 10% on other data
    # (demo.experiment_val_size).
    val_size: float | int | None = None
    train_limit: int | None = 24000
    test_limit: int | None = None
    progress: bool = True
    quick: bool = False
    # The learngene's width (a multiple of the 16-wide head); None: the preset's 32. The LeTs methods
    # generate from it, and the nested ViT samples widths from it up; the other methods' sources are
    # Aux-wide or Des-wide. A wider learngene lifts the rank bound of every generated weight
    # (benchmarks/results/stage1/NOTES.md) and cannot make Des-Nets narrower than itself.
    learngene_width: int | None = None

    @classmethod
    def for_mode(cls, quick: bool = False, **overrides: Any) -> "CompareConfig":
        base: dict[str, Any] = {}
        if quick:
            # Every method end to end on a data subset with one epoch per stage: a smoke test.
            base = dict(sizes=[(2, 4), (4, 8)], tune_epochs=[0, 1], teacher_epochs=1, stage1_epochs=1,
                        val_size=200, train_limit=1024, test_limit=500, out="runs/compare-quick")
        merged = {**base, **{k: v for k, v in overrides.items() if v is not None}}
        return cls(quick=quick, **merged)

    def __post_init__(self) -> None:
        canonical = [m if m in LETS_METHODS else ALIASES.get(m, m) for m in self.methods]
        unknown = [m for m, c in zip(self.methods, canonical) if c not in METHOD_NAMES]
        if not self.methods or unknown:
            raise ValueError(f"methods must be a non-empty list of {list(METHOD_NAMES)}, got {self.methods!r}")
        self.methods = list(dict.fromkeys(canonical))
        self.sizes = experiment_sizes(self.sizes)
        check_positive_counts(self, "teacher_epochs", "stage1_epochs", "batch_size")
        self._check_learngene_width()
        if self.strategy not in STRATEGIES:  # emit_des would refuse it only after every stage 1
            raise ValueError(f"strategy must be one of {list(STRATEGIES)}, got {self.strategy!r}")
        model_cfg = self.model_config()
        for heads, depth in self.sizes:  # a size the model cannot have fails now, not after every training
            try:
                des_param_count(model_cfg, heads, depth)
            except DesSizeError as exc:
                width = model_cfg.learngene.embed_dim
                raise DesSizeError(f"size {heads}x{depth} cannot be made from a learngene of width {width}: {exc}; "
                                   "drop it from sizes") from exc
        for method in self.methods:  # a baseline that makes none of the sizes would train for an empty table
            if method not in LETS_METHODS and not any(METHODS[method].supports(model_cfg, *s) for s in self.sizes):
                raise ValueError(f"method {method!r} can make none of the sizes {_size_names(self.sizes)} (TLEG and "
                                 f"SWS make only the Aux-Net's width, {model_cfg.aux_heads} heads); add a size it "
                                 f"makes or drop the method")
        if not self.tune_epochs or any(isinstance(e, bool) or int(e) != e or e < 0 for e in self.tune_epochs):
            raise ValueError(f"tune_epochs must be a non-empty list of integers >= 0, got {self.tune_epochs!r}")
        self.tune_epochs = sorted(set(int(e) for e in self.tune_epochs))
        if (isinstance(self.tune_lrs, (str, bytes)) or not self.tune_lrs
                or any(not finite_number(lr) or lr <= 0 for lr in self.tune_lrs)):
            raise ValueError(f"tune_lrs must be a non-empty list of positive finite numbers, got {self.tune_lrs!r}")
        self.tune_lrs = list(dict.fromkeys(float(lr) for lr in self.tune_lrs))
        if len(self.tune_lrs) > 1 and self.val_size == 0:
            raise ValueError(f"a grid of tuning lrs ({self.tune_lrs}) is searched on the validation split, but "
                             "val_size is 0; hold out validation images or give one lr")
        if self.dataset not in COMPARE_DATASETS:
            raise ValueError(f"dataset must be one of {list(COMPARE_DATASETS)}, got {self.dataset!r}")
        if self.dataset == "folder" and self.data_dir is None:
            raise ValueError("the 'folder' dataset needs data_dir (an image folder with one subfolder per class)")

    def _check_learngene_width(self) -> None:
        if self.learngene_width is None:
            return
        base = presets.tiny()
        step, widest = base.learngene.head_dim, base.aux_embed_dim
        width = self.learngene_width
        if isinstance(width, bool) or not isinstance(width, int) or not 0 < width <= widest or width % step:
            raise ValueError(f"learngene_width must be a multiple of the head width {step} from {step} to the "
                             f"Aux-Net's width {widest}, got {width!r}")

    def model_config(self, num_classes: int = 10) -> LetsConfig:
        cfg = presets.tiny(num_classes=num_classes)
        if self.learngene_width is not None:
            cfg = dataclasses.replace(cfg, learngene=dataclasses.replace(cfg.learngene, embed_dim=self.learngene_width))
        return cfg


@dataclass
class Stage1:
    """One method's trained stage 1: how to emit a size, what it stores, what it cost."""

    emit: Callable[[int, int], VisionTransformer]
    supports: Callable[[int, int], bool]
    stored_parameters: int
    seconds: float  # the training's own epoch times, so a resumed or cached run reports its real cost
    history: list[dict]
    # SHA-256 of the trained tensors and the selection strategy of emission (None: the method has
    # none): with the size, what a tuning run starts from, so its resume can check it.
    fingerprint: str
    strategy: str | None


# Methods whose stage 1 also trains sampled sizes toward the teacher's logits (the default target of
# ElasticConfig and NestedConfig), so they run the teacher whatever alpha is.
SAMPLES_TOWARD_TEACHER = ("lets-elastic", "nested")


def distills(method: str, alpha: float) -> bool:
    """Whether ``method``'s stage 1 runs the teacher (its time then counts in the method's total):
    at alpha 0 only the methods of :data:`SAMPLES_TOWARD_TEACHER` do, and scratch never trains."""
    return method != "scratch" and (alpha > 0 or method in SAMPLES_TOWARD_TEACHER)


def _training_seconds(history: list[dict], wall: float) -> float:
    """What a training cost as its history records it (so a stage reused from an earlier run
    counts), or ``wall`` when the history records nothing."""
    recorded = history_seconds(history)
    return wall if recorded is None else recorded


def _size_names(sizes) -> str:
    return ", ".join(f"{h}x{d}" for h, d in sizes)


def run_compare(cfg: CompareConfig, env: DistEnv | None = None) -> dict:
    """Run every method of ``cfg`` and write compare.json, compare.md and compare.png."""
    env, out, started = start_experiment(cfg, env, REPORT_FILES)
    model_cfg = cfg.model_config()
    splits = experiment_splits(cfg, model_cfg, env)
    if splits.num_classes != model_cfg.learngene.num_classes:  # an image folder has its own classes
        model_cfg = cfg.model_config(splits.num_classes)
    recipe = functools.partial(experiment_recipe, cfg)
    teacher, teacher_meta, teacher_seconds = experiment_teacher(cfg, splits, out, env, resume=True)

    stage1_recipe = recipe(cfg.stage1_epochs, cfg.stage1_lr, 0.5, cfg.alpha)
    stage1: dict[str, Stage1] = {}
    for method in cfg.methods:
        stage1[method] = _train_stage1(method, cfg, model_cfg, splits, teacher, stage1_recipe, out, env)
        announce(env, f"{method}: stage 1 done ({stage1[method].seconds:.0f} s)")

    for method, trained in stage1.items():
        skipped = [s for s in cfg.sizes if not trained.supports(*s)]
        if skipped:
            announce(env, f"{method} cannot make size(s) {_size_names(skipped)}: not in its rows of the table")
    results: dict[str, dict[str, dict[str, Any]]] = {}
    for heads, depth in cfg.sizes:
        size = f"{heads}x{depth}"
        results[size] = {}
        for method, trained in stage1.items():
            if not trained.supports(heads, depth):
                continue
            results[size][method] = _tune(cfg, trained, splits, heads, depth, method, recipe, out, env)
            announce(env, f"{method} H{heads}-L{depth}: " + ", ".join(
                f"{e} ep {v:.4f}" for e, v in results[size][method]["top1_by_epochs"].items()))

    report = {
        "config": dataclasses.asdict(cfg),
        "dataset": splits.describe(),
        "model_config": model_cfg.to_dict(),
        "teacher": {"arch": cfg.teacher_arch, "params": teacher_meta["params"],
                    "test_top1": teacher_meta["test_top1"], "seconds": round(teacher_seconds, 1)},
        "methods": {m: {"stored_parameters": s.stored_parameters, "stage1_seconds": round(s.seconds, 1),
                        "stage1_history": s.history, "distills": distills(m, cfg.alpha)} for m, s in stage1.items()},
        "sizes": {f"{h}x{d}": {"heads": h, "depth": d, "params": des_param_count(model_cfg, h, d)}
                  for h, d in cfg.sizes},
        "results": results,
        "seconds_total": round(time.perf_counter() - started, 1),
        "environment": run_environment(env.device, env.world_size),
    }
    if env.is_main:
        write_compare_report(report, out)
    return report


def _train_stage1(method: str, cfg: CompareConfig, model_cfg: LetsConfig, splits, teacher, recipe: TrainConfig,
                  out: Path, env: DistEnv) -> Stage1:
    t0 = time.perf_counter()
    folder = out / f"stage1-{method}"
    if method in LETS_METHODS:
        elastic = ElasticConfig(strategy=cfg.strategy) if method == "lets-elastic" else None
        result = train_aux(model_cfg, splits, recipe, folder, teacher=teacher, resume=True, env=env, elastic=elastic)
        aux = result.model.eval()

        def supports(heads: int, depth: int) -> bool:
            try:
                des_param_count(model_cfg, heads, depth)
            except DesSizeError:
                return False
            return True

        return Stage1(lambda h, d: emit_des(aux, h, d, strategy=cfg.strategy), supports,
                      aux.stored_parameter_count(), _training_seconds(result.history, time.perf_counter() - t0),
                      result.history, state_fingerprint(aux), cfg.strategy)
    spec = METHODS[method]
    source = spec.train_stage1(splits, teacher, model_cfg, recipe, folder, resume=True, env=env,
                               sizes=[s for s in cfg.sizes if spec.supports(model_cfg, *s)])
    # LeTs(LiGO) emits by LeTs's selection: it gets the run's strategy, as LeTs does.
    strategy = cfg.strategy if spec.selects else None
    options = {"strategy": strategy} if spec.selects else {}
    return Stage1(lambda h, d: spec.emit(source, h, d, **options), lambda h, d: spec.supports(model_cfg, h, d),
                  source.stored_parameters, _training_seconds(source.history, time.perf_counter() - t0), source.history,
                  tensors_fingerprint(source.state), strategy)


def _tune(cfg: CompareConfig, trained: Stage1, splits, heads: int, depth: int, method: str, recipe, out: Path,
          env: DistEnv) -> dict[str, Any]:
    """Test top-1 of one method's Des-Net of one size, directly and after each tuning length. With a
    grid of lrs, each length is tuned at every lr and the run with the best validation top-1 is the
    one scored on test (ties: the lr listed first); the whole search counts in the seconds."""
    top1, seconds, chosen_lr, val_top1 = {}, {}, {}, {}
    # Kept in each tuning checkpoint: a re-run whose emitted model differs (another strategy, or a
    # stage 1 trained again) must not resume the earlier run's tuned model.
    origin = {"source": "compare", "method": method, "stage1_sha256": trained.fingerprint, "heads": heads,
              "depth": depth, "strategy": trained.strategy}
    search = len(cfg.tune_lrs) > 1
    for epochs in cfg.tune_epochs:
        spent, best, best_val = 0.0, None, None
        for lr in cfg.tune_lrs if epochs > 0 else [None]:
            t0 = time.perf_counter()
            model = trained.emit(heads, depth)  # a fresh copy per run: each tuning run has its own schedule
            spent += time.perf_counter() - t0
            if lr is None:  # 0 epochs: the emitted network itself
                best = model
                continue
            run = finetune(model, splits, recipe(epochs, lr, cfg.tune_warmup_epochs),
                           out / "tune" / f"{method}_h{heads}_l{depth}_{epochs}ep_lr{lr:g}", resume=True, env=env,
                           desc=f"{method} H{heads}-L{depth} ({epochs} ep, lr {lr:g})", origin=origin)
            spent += _training_seconds(run.history, 0.0)
            if not search:
                best, chosen_lr[str(epochs)] = run.model, lr
                continue
            t0 = time.perf_counter()
            score = evaluate_split(run.model, splits, "val", env=env)["top1"]
            spent += time.perf_counter() - t0
            val_top1.setdefault(str(epochs), {})[f"{lr:g}"] = score
            if best_val is None or score > best_val:  # a tie keeps the lr listed first
                best, best_val, chosen_lr[str(epochs)] = run.model, score, lr
        t0 = time.perf_counter()
        top1[str(epochs)] = evaluate_split(best, splits, env=env)["top1"]
        # Emission and evaluation as timed now; the tuning as its checkpoints recorded it.
        seconds[str(epochs)] = round(spent + time.perf_counter() - t0, 1)
    result: dict[str, Any] = {"top1_by_epochs": top1, "seconds_by_epochs": seconds, "tune_lr_by_epochs": chosen_lr}
    if search:
        result["val_top1_by_epochs"] = val_top1
    return result
