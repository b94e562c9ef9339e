"""The LeTs pipeline through the Python API (what `lets demo` does, in a page).

    python python/train_pipeline.py --dataset digits --out runs/pipeline          # about 2 minutes on 2 cores
    python python/train_pipeline.py --dataset fashion-mnist --out runs/pipeline   # several minutes
    python python/train_pipeline.py --elastic --out runs/pipeline-elastic         # elastic stage 1

1. load a dataset with deterministic splits;
2. train a small teacher (cached under OUT/teacher);
3. stage 1: train the Aux-Net by distillation (with --elastic, also sampled Des-Nets at every
   step, ``lets_core.elastic``) and save its bundle;
4. stage 2: emit a Des-Net, evaluate it, fine-tune it for one epoch, save it as a timm model;
5. train the same architecture from scratch for one epoch, for comparison.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import lets_core  # noqa: E402
from lets_core.data import load_splits  # noqa: E402
from lets_core.train import (ElasticConfig, TrainConfig, evaluate_split, finetune, scratch_des,  # noqa: E402
                             train_aux, train_teacher)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=("digits", "fashion-mnist"), default="digits")
    parser.add_argument("--out", type=Path, default=Path("runs/pipeline"))
    parser.add_argument("--heads", type=int, default=3)
    parser.add_argument("--depth", type=int, default=6)
    parser.add_argument("--elastic", action="store_true", help="elastic stage 1 (the smallest size + 1 random size per step)")
    args = parser.parse_args()

    cfg = lets_core.presets.tiny()
    splits = load_splits(args.dataset, image_size=cfg.learngene.img_size, channels=1, val_size=0.1, seed=0)
    print(splits.describe())
    # digits has ~1,300 training images: more epochs and a smaller batch than Fashion-MNIST needs
    small = len(splits.train) < 5000
    epochs, batch = (30, 64) if small else (3, 128)

    teacher, meta = train_teacher(splits, TrainConfig(epochs=epochs, batch_size=batch, lr=4e-3, warmup_epochs=0.3),
                                  args.out / "teacher")
    print(f"teacher test top-1 {meta['test_top1']:.4f}")

    elastic = ElasticConfig(num_random=1, target="teacher") if args.elastic else None
    aux = train_aux(cfg, splits, TrainConfig(epochs=epochs, batch_size=batch, lr=2.4e-2, warmup_epochs=0.5, alpha=1.0),
                    args.out / "aux", teacher=teacher, elastic=elastic).model.eval()
    print(f"Aux-Net test top-1 {evaluate_split(aux, splits)['top1']:.4f}; bundle in {args.out / 'aux' / 'bundle'}")

    recipe = TrainConfig(epochs=1, batch_size=batch, lr=2e-3, warmup_epochs=0.2)
    des = lets_core.emit_des(aux, heads=args.heads, depth=args.depth, strategy="continuous")
    direct = evaluate_split(des, splits)["top1"]
    tuned = finetune(des, splits, recipe, args.out / "des").model
    scratch = finetune(scratch_des(cfg, args.heads, args.depth), splits, recipe, args.out / "scratch",
                       desc="scratch").model
    print(f"Des-H{args.heads}-L{args.depth}: direct {direct:.4f}, LeTs + 1 epoch "
          f"{evaluate_split(tuned, splits)['top1']:.4f}, scratch 1 epoch {evaluate_split(scratch, splits)['top1']:.4f}")
    print(f"fine-tuned Des-Net saved as a timm model in {args.out / 'des' / 'model'}")


if __name__ == "__main__":
    main()
