"""A tour of the lets_core API on the tiny preset (runs in seconds on a CPU).

    python python/quickstart.py --out runs/quickstart

1. build an Aux-Net and take a few training steps (random inputs, just to show gradients flow);
2. save and reload the bundle;
3. emit Des-Nets of several sizes with every selection strategy;
4. save one Des-Net and reload it with timm alone;
5. print the paper configuration's storage argument.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import timm
import torch

import lets_core


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/quickstart"), help="output folder")
    parser.add_argument("--steps", type=int, default=5, help="training steps to take")
    args = parser.parse_args()
    torch.manual_seed(0)

    cfg = lets_core.presets.tiny()
    aux = lets_core.AuxNet(cfg)
    print(f"Aux-Net: {aux.trainable_parameter_count():,} trainable parameters "
          f"(width {cfg.aux_embed_dim}, depth {cfg.aux_depth}, from a learngene of width "
          f"{cfg.learngene.embed_dim}, depth {cfg.learngene.depth})")

    opt = torch.optim.AdamW(aux.parameters(), lr=1e-3)
    x, y = torch.randn(16, 1, 28, 28), torch.randint(0, 10, (16,))
    for step in range(args.steps):
        loss = torch.nn.functional.cross_entropy(aux(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        print(f"step {step}: loss {loss.item():.4f}")

    # The inputs' per-channel mean and std (pixels in [0, 1]) that training standardized them with:
    # lets_core's own training records them; a loop of your own says them (Fashion-MNIST's here).
    # Every Des-Net emitted from the bundle inherits them, and timm's transform uses them.
    lets_core.record_input_norm(aux, lets_core.InputNorm(mean=(0.286,), std=(0.353,)))
    bundle_dir = lets_core.save_bundle(aux, args.out / "bundle")
    aux = lets_core.load_bundle(bundle_dir).eval()
    print(f"bundle saved and reloaded from {bundle_dir}")

    probe = torch.randn(2, 1, 28, 28)
    for heads in range(cfg.learngene.num_heads, cfg.aux_heads + 1):
        for depth in (2, 4, cfg.aux_depth):
            for strategy in lets_core.STRATEGIES:
                des = lets_core.emit_des(aux, heads=heads, depth=depth, strategy=strategy)
                assert des(probe).shape == (2, cfg.learngene.num_classes)
            params = sum(p.numel() for p in des.parameters())
            print(f"Des-H{heads}-L{depth}: {params:,} parameters, plan "
                  f"{lets_core.auto_depth_plan(cfg, depth)}, all {len(lets_core.STRATEGIES)} strategies emitted")

    des = lets_core.emit_des(aux, heads=3, depth=6, strategy="top-l2")
    des_dir = lets_core.save_des(des, args.out / "des_h3_l6")
    reloaded = timm.create_model(f"local-dir:{des_dir}", pretrained=True).eval()
    gap = (reloaded(probe) - des(probe)).abs().max().item()
    print(f"Des-H3-L6 saved to {des_dir}; timm reloads it with max logit difference {gap:.2e}")

    paper = lets_core.AuxNet(lets_core.presets.paper())
    sizes = [(h, l) for h in (6, 9, 12) for l in (13, 14, 15, 16)]
    print(lets_core.storage_report(paper, sizes))


if __name__ == "__main__":
    main()
