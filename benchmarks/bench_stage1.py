"""Stage-1 convergence: the Aux-Net against a plain timm ViT of its shape, same KD loss and recipe.

Every Des-Net is bounded by its Aux-Net, so the learngene + F + G parameterization must learn as
fast per epoch as ordinary weights do. This trains, in one process and on the same data split and
teacher, each requested variant for the same epochs and reports validation top-1 after every
epoch (the test split is never read):

- ``plain``: a timm ``VisionTransformer`` of exactly the Aux-Net's width and depth;
- ``aux``: a ``lets_core.AuxNet``; options after a colon change its transform initialization or
  its recipe, e.g. ``aux:f_init=normal,g_init=spread,f_lr_scale=0.5,lr=2.4e-2``;
- ``elastic``: the same Aux-Net trained by elastic stage 1 (``lets_core.elastic``).

Keys: any ``TransformConfig`` field (f_init, g_init, f_noise, g_noise, group_size, tie_length),
``lg_`` + a ``LearngeneConfig`` field for the learngene's shape (``lg_embed_dim=48``: 3 heads of the
tiny preset's 16; a plain ViT keeps the Aux-Net's shape), any ``TrainConfig`` field
(lr, f_lr_scale, g_lr_scale, warmup_epochs, weight_decay, tau, ...), any ``ElasticConfig`` field
(num_random, target, weight, ...; elastic only), and ``seed``. With ``--des-sizes`` every Aux-Net
is also emitted at those sizes (continuous selection) and each Des-Net's direct validation
top-1 is reported.

    python benchmarks/bench_stage1.py --epochs 4 --train-limit 15000 --lr 8e-3 \\
        --variants "plain;aux;aux:f_init=normal,g_init=spread" --seeds 0,1 \\
        --json benchmarks/results/stage1/convergence.jsonl

The teacher is lets_core's small ResNet trained with the demo's recipe (cached in ``--teacher``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time
from pathlib import Path

import torch

import lets_core
from lets_core.data import eval_loader, load_splits
from lets_core.elastic import ElasticConfig, ElasticObjective
from lets_core.train import SMALL_RESNET, TrainConfig, evaluate, fit, parse_sizes, train_teacher
from lets_core.vit import build_vit

TRANSFORM_KEYS = {f.name for f in dataclasses.fields(lets_core.TransformConfig)}
LEARNGENE_KEYS = {"lg_" + f.name for f in dataclasses.fields(lets_core.LearngeneConfig)}
TRAIN_KEYS = {f.name for f in dataclasses.fields(TrainConfig)}
ELASTIC_KEYS = {f.name for f in dataclasses.fields(ElasticConfig)}
KINDS = ("plain", "aux", "elastic")


def parse_variant(text: str) -> tuple[str, dict[str, str]]:
    kind, _, opts = text.strip().partition(":")
    if kind not in KINDS:
        raise SystemExit(f"variant {text!r}: kind must be one of {list(KINDS)}")
    allowed = (TRAIN_KEYS | (TRANSFORM_KEYS | LEARNGENE_KEYS if kind != "plain" else set())
               | (ELASTIC_KEYS if kind == "elastic" else set()))
    options = {}
    for item in filter(None, opts.split(",")):
        key, sep, value = item.partition("=")
        if not sep or key not in allowed:
            raise SystemExit(f"variant {text!r}: {item!r} must be KEY=VALUE with KEY one of {sorted(allowed)}")
        options[key] = value
    return kind, options


def _typed(field_type: object, value: str) -> object:
    if "bool" in str(field_type):  # before int: "augment=false" must not read as a true string
        if value.lower() not in ("true", "false"):
            raise SystemExit(f"{value!r} is not a boolean; use true or false")
        return value.lower() == "true"
    if "int" in str(field_type) and "float" not in str(field_type):
        return int(value)
    if "float" in str(field_type):
        return float(value)
    return value


def build(kind: str, options: dict[str, str], base: lets_core.LetsConfig, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    if kind == "plain":
        return build_vit(base.learngene, base.aux_embed_dim, base.aux_depth)
    types = {f.name: f.type for f in dataclasses.fields(lets_core.TransformConfig)}
    tf = dataclasses.replace(base.transform, **{k: _typed(types[k], v) for k, v in options.items()
                                                if k in TRANSFORM_KEYS})
    lg_types = {f.name: f.type for f in dataclasses.fields(lets_core.LearngeneConfig)}
    lg = dataclasses.replace(base.learngene, **{k[3:]: _typed(lg_types[k[3:]], v) for k, v in options.items()
                                                if k in LEARNGENE_KEYS})
    return lets_core.AuxNet(dataclasses.replace(base, learngene=lg, transform=tf))


def elastic_config(options: dict[str, str]) -> ElasticConfig:
    types = {f.name: f.type for f in dataclasses.fields(ElasticConfig)}
    return ElasticConfig(**{k: _typed(types[k], v) for k, v in options.items() if k in ELASTIC_KEYS})


def direct_top1(model: torch.nn.Module, splits, sizes: list[tuple[int, int]]) -> dict[str, float]:
    """Validation top-1 (%) of the Des-Nets emitted from ``model`` at ``sizes`` (continuous)."""
    loader = eval_loader(splits, "val", 512)
    return {f"H{h}-L{l}": round(100 * evaluate(lets_core.emit_des(model, h, l), loader)["top1"], 2)
            for h, l in sizes}


def recipe(args: argparse.Namespace, options: dict[str, str], seed: int) -> TrainConfig:
    types = {f.name: f.type for f in dataclasses.fields(TrainConfig)}
    values = dict(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, warmup_epochs=args.warmup_epochs,
                  alpha=args.alpha, tau=args.tau, seed=seed, progress=False)
    values.update({k: _typed(types[k], v) for k, v in options.items() if k in TRAIN_KEYS})
    return TrainConfig(**values)


def summary_table(path: str) -> list[str]:
    """Final val top-1 per variant over its seeds (mean, min-max), with direct Des-Net top-1 if any."""
    runs: dict[str, list[dict]] = {}
    for line in Path(path).read_text().splitlines():
        record = json.loads(line)
        # The run's own lr and epochs name it: the same variant text ran under several --lr values.
        recipe = record["recipe"]
        runs.setdefault(f"{record['variant']} @ lr {recipe['lr']:g}, {recipe['epochs']} ep", []).append(record)
    lines = ["| variant | seeds | final val top-1 mean (min-max) | direct Des val top-1 (mean) |", "|---|---|---|---|"]
    for variant, records in runs.items():
        finals = [r["val_top1_by_epoch"][-1] for r in records]
        direct = {}
        for r in records:
            for size, value in r.get("direct_des", {}).items():
                direct.setdefault(size, []).append(value)
        direct_text = ", ".join(f"{k} {statistics.mean(v):.2f}" for k, v in direct.items()) or "–"
        seeds = ",".join(str(r["seed"]) for r in records)
        lines.append(f"| `{variant}` | {seeds} | {statistics.mean(finals):.2f} ({min(finals):.2f}-{max(finals):.2f}) "
                     f"| {direct_text} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variants", default="plain;aux", help="';'-separated variants (see above)")
    p.add_argument("--seeds", default="0", help="comma-separated seeds; each variant runs once per seed")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--lr", type=float, default=8e-3, help="peak lr for 512 images (scaled to --batch-size)")
    p.add_argument("--warmup-epochs", type=float, default=0.5)
    p.add_argument("--alpha", type=float, default=1.0)
    p.add_argument("--tau", type=float, default=1.0)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--data-dir")
    p.add_argument("--train-limit", type=int, default=15000)
    p.add_argument("--val-size", type=int, default=2000)
    p.add_argument("--teacher", default="runs/bench-teacher", help="teacher cache folder")
    p.add_argument("--teacher-epochs", type=int, default=3)
    p.add_argument("--des-sizes", help="also report the direct val top-1 of these Des-Nets, e.g. 2x4,3x6")
    p.add_argument("--json", help="append one JSON line per run to this file")
    p.add_argument("--summary", metavar="JSONL", help="only print a markdown table of the runs in this file")
    args = p.parse_args(argv)
    if args.summary:
        print("\n".join(summary_table(args.summary)))
        return 0

    base = lets_core.presets.tiny()
    lg = base.learngene
    splits = load_splits(args.dataset, args.data_dir, image_size=lg.img_size, channels=lg.in_chans,
                         val_size=args.val_size, train_limit=args.train_limit, seed=0)
    teacher, meta = train_teacher(splits, TrainConfig(epochs=args.teacher_epochs, lr=4e-3, warmup_epochs=0.3,
                                                      progress=False), args.teacher, SMALL_RESNET)
    print(f"data {splits.describe()}; teacher val top-1 {meta['val_top1']:.4f}", flush=True)
    variants = [parse_variant(v) for v in args.variants.split(";") if v.strip()]
    seeds = [int(s) for s in args.seeds.split(",")]
    des_sizes = parse_sizes(args.des_sizes) if args.des_sizes else []
    results: dict[str, list[list[float]]] = {}
    for seed in seeds:
        for text, (kind, options) in zip(args.variants.split(";"), variants):
            cfg = recipe(args, options, int(options.get("seed", seed)))
            model = build(kind, options, base, cfg.seed)
            t0 = time.perf_counter()
            # The model's own configuration: lg_ options change the heads the sizes are drawn from.
            objective = (ElasticObjective(elastic_config(options), model.cfg, cfg) if kind == "elastic" else None)
            run = fit(model, splits, cfg, kind=kind, teacher=teacher, objective=objective)
            seconds = time.perf_counter() - t0
            curve = [round(r["val_top1"] * 100, 2) for r in run.history]
            results.setdefault(text.strip(), []).append(curve)
            direct = direct_top1(run.model, splits, des_sizes) if des_sizes and kind != "plain" else {}
            print(f"{text.strip():60s} seed {cfg.seed}: val top-1 by epoch {curve} ({seconds:.0f} s)"
                  + (f"; direct Des {direct}" if direct else ""), flush=True)
            if args.json:
                record = {"variant": text.strip(), "seed": cfg.seed, "val_top1_by_epoch": curve, "direct_des": direct,
                          "seconds": round(seconds, 1), "recipe": cfg.to_dict(), "data": splits.describe(),
                          "teacher_val_top1": meta["val_top1"], "torch": torch.__version__,
                          "threads": torch.get_num_threads()}
                Path(args.json).parent.mkdir(parents=True, exist_ok=True)
                with open(args.json, "a") as f:
                    f.write(json.dumps(record) + "\n")
    print(f"\nfinal val top-1 (%), mean over {len(seeds)} seed(s):")
    for text, curves in results.items():
        finals = [c[-1] for c in curves]
        spread = f" (min {min(finals):.2f}, max {max(finals):.2f})" if len(finals) > 1 else ""
        print(f"  {statistics.mean(finals):6.2f}{spread}  {text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
