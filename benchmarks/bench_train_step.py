"""One training step (forward, backward, AdamW step) of the Aux-Net against a plain ViT of its shape.

Variants, each measured in its own process so peak memory is its own:
- ``lets``: lets_core.AuxNet on the compiled ops (when the extension is built);
- ``lets-fallback``: the same with LETS_CORE_DISABLE_EXTENSION=1 (pure-PyTorch ops);
- ``released``: the Aux-Net generated the released-code way (per Aux layer, concatenations);
- ``plain``: a timm VisionTransformer of exactly the Aux-Net's shape with ordinary parameters,
  the lower bound (no generation at all);
- ``lets-graph`` (CUDA only): ``lets`` with the generation's forward and backward replayed as CUDA
  graphs (``graphed_generation.py``), checked against the eager generation before timing.

    python benchmarks/bench_train_step.py --config mid --json benchmarks/results/train_step_cpu.json
    python benchmarks/bench_train_step.py --config paper --device cuda --batch 128   # GPU, bf16 autocast

Prints median step time and peak memory of each variant and their ratios to ``plain``.
"""

from __future__ import annotations

import argparse
import resource
import sys
from pathlib import Path

from bench_common import (add_cpu_memory_flag, append_json, apply_cpu_memory, checked_variants, device_name,
                          emit_result, interleaved_rounds, saved_for_backward_mb, train_state_mb)

HERE = Path(__file__).resolve().parent
VARIANTS = ("plain", "lets", "lets-fallback", "released", "lets-graph")
DEFAULT_VARIANTS = ("plain", "lets", "lets-fallback", "released")
GRAPH_TOLERANCE = 1e-2  # relative, bf16 autocast: the graphed and the eager generation run the same kernels


def make_config(name: str):
    import lets_core
    from lets_core.config import LearngeneConfig, LetsConfig, TransformConfig

    if name == "tiny":
        return lets_core.presets.tiny()
    if name == "mid":
        # A DeiT-Ti-sized learngene grown to a DeiT-S-sized Aux-Net at CIFAR resolution.
        return LetsConfig(
            learngene=LearngeneConfig(img_size=32, patch_size=4, in_chans=3, num_classes=10, embed_dim=192,
                                      depth=4, head_dim=64, mlp_ratio=4.0),
            aux_embed_dim=384, aux_depth=8, transform=TransformConfig(group_size=2, tie_length=2))
    if name == "paper":
        return lets_core.presets.paper()
    raise SystemExit(f"unknown --config {name!r}; allowed: tiny, mid, paper")


def worker(args: argparse.Namespace) -> dict:
    """Build one variant, time its step, report step time and peak memory."""
    import torch
    import torch.utils.benchmark as bench

    import lets_core
    from lets_core.vit import build_vit

    apply_cpu_memory(args.cpu_memory)
    torch.manual_seed(0)
    device = torch.device(args.device)
    cfg = make_config(args.config)
    lg = cfg.learngene
    extra: dict = {}
    if args.variant == "plain":
        model = build_vit(lg, cfg.aux_embed_dim, cfg.aux_depth)
    elif args.variant == "lets-graph":
        sys.path.insert(0, str(HERE))
        from graphed_generation import GraphedAuxNet, check_graphed_matches, graphed_generation
        aux = lets_core.AuxNet(cfg).to(device).train()
        # Captured under the step's autocast; torch's graph capture requires its cast cache off.
        with torch.autocast(device.type, dtype=torch.bfloat16, cache_enabled=False):
            generate = graphed_generation(aux)
            worst = check_graphed_matches(aux, generate)
        if worst > GRAPH_TOLERANCE:
            raise SystemExit(f"lets-graph: the graphed generation differs from the eager one by {worst:.1e}")
        extra["graph_max_relative_difference"] = worst
        model = GraphedAuxNet(aux, generate)
    else:
        aux = lets_core.AuxNet(cfg)
        if args.variant == "released":
            sys.path.insert(0, str(HERE))
            from released_code import ReleasedCodeAuxNet
            model = ReleasedCodeAuxNet(aux)
        else:
            model = aux
    model = model.to(device).train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    x = torch.randn(args.batch, lg.in_chans, lg.img_size, lg.img_size, device=device)
    y = torch.randint(0, lg.num_classes, (args.batch,), device=device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")

    def loss() -> torch.Tensor:
        with autocast:
            return torch.nn.functional.cross_entropy(model(x), y)

    def step() -> None:
        value = loss()
        opt.zero_grad(set_to_none=True)
        value.backward()
        opt.step()

    for _ in range(3):  # warm-up, and the optimizer allocates its state here
        step()
    saved_mb = saved_for_backward_mb(loss, model.parameters())
    state_mb = train_state_mb(model, opt)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    timer = bench.Timer(stmt="step()", globals={"step": step}, num_threads=torch.get_num_threads())
    measurement = timer.blocked_autorange(min_run_time=args.min_time)
    if device.type == "cuda":
        peak_mb = (torch.cuda.max_memory_allocated() - base) / 2**20
        total_peak_mb = torch.cuda.max_memory_allocated() / 2**20
    else:
        # ru_maxrss (KiB) is monotonic: the growth during timed steps plus the pre-step level is
        # the best CPU analogue; both are reported.
        total_peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        peak_mb = total_peak_mb - rss_before / 1024
    from lets_core._extension import extension_info
    info = extension_info()
    return {
        "benchmark": "train_step", "config": args.config, "variant": args.variant, "device": device_name(device),
        "batch": args.batch, "dtype": "bfloat16-autocast" if device.type == "cuda" else "float32",
        "median_ms": measurement.median * 1e3, "iqr_ms": measurement.iqr * 1e3, "runs": len(measurement.times),
        "peak_mem_mb": total_peak_mb, "step_mem_growth_mb": peak_mb,
        # Parameters + gradients + optimizer state, and what autograd keeps between forward and
        # backward (activations and generated weights): the step's memory floor on any device.
        "train_state_mb": state_mb, "saved_for_backward_mb": saved_mb, "step_memory_mb": state_mb + saved_mb,
        "threads": torch.get_num_threads(), "torch": torch.__version__, "cpu_memory": args.cpu_memory,
        "extension_loaded": info["extension_loaded"],
        "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad), **extra,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="mid", help="tiny, mid or paper")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--variants", default=",".join(DEFAULT_VARIANTS), help=f"comma list of {VARIANTS}")
    parser.add_argument("--min-time", type=float, default=3.0, help="seconds of timed steps per variant")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; each variant reports its median round")
    add_cpu_memory_flag(parser)
    parser.add_argument("--json", type=Path, help="append one record per variant to this JSON file")
    parser.add_argument("--variant", help=argparse.SUPPRESS)  # internal: run one variant in this process
    args = parser.parse_args()
    if args.variant:
        emit_result(worker(args))
        return

    variants = checked_variants(args.variants, VARIANTS, args.rounds)
    if "lets-graph" in variants and not args.device.startswith("cuda"):
        raise SystemExit(f"variant lets-graph replays CUDA graphs and needs --device cuda, got --device {args.device}")
    base = ["--config", args.config, "--device", args.device, "--batch", str(args.batch), "--min-time", str(args.min_time),
            "--cpu-memory", args.cpu_memory]
    records = interleaved_rounds(__file__, base, variants, args.rounds,
                                 fallback=lambda variant: variant == "lets-fallback")
    print_table(records)
    append_json(args.json, records)


def print_table(records: list[dict]) -> None:
    if not records:
        return
    plain = next((r for r in records if r["variant"] == "plain"), None)
    r0 = records[0]
    print(f"train step, config {r0['config']}, batch {r0['batch']}, {r0['dtype']}, {r0['device']}, "
          f"torch {r0['torch']}, {r0['threads']} threads, {r0.get('cpu_memory', 'release')} CPU memory")
    mem = "step_memory_mb" if r0["device"].startswith("cpu") else "peak_mem_mb"
    print(f"memory column: {mem} ({'allocator peak' if mem == 'peak_mem_mb' else 'train state + saved for backward'})")
    print(f"{'variant':<14}{'median ms':>11}{'x plain':>9}{'memory MB':>11}{'x plain':>9}{'saved MB':>10}{'process peak MB':>17}")
    for r in records:
        t_ratio = r["median_ms"] / plain["median_ms"] if plain else float("nan")
        m_ratio = r[mem] / plain[mem] if plain else float("nan")
        print(f"{r['variant']:<14}{r['median_ms']:>11.1f}{t_ratio:>9.2f}{r[mem]:>11.1f}{m_ratio:>9.2f}"
              f"{r['saved_for_backward_mb']:>10.1f}{r['peak_mem_mb']:>17.0f}   rounds {r.get('round_median_ms', '')}")
    by = {r["variant"]: r for r in records}
    if "lets" in by and "released" in by:
        print(f"released-code / lets step time: {by['released']['median_ms'] / by['lets']['median_ms']:.2f}x")


if __name__ == "__main__":
    main()
