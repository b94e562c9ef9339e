"""One stage-1 training step, paper vs elastic (forward, backward, AdamW step of the Aux-Net).

Variants, each measured in its own process so peak memory is its own:
- ``paper``: the paper's stage 1, ``fit``'s default objective (KD of the Aux-Net's logits);
- ``elastic-k1``, ``elastic-k2``: ``ElasticObjective`` with ``num_random`` 1 and 2, i.e. the
  Aux-Net plus the smallest Des-Net plus k random sizes, all from one generation;
- ``bound-k1``, ``bound-k2``: the paper's step plus, for the same sampled sizes, the forward and
  backward of plain timm ViTs of those sizes (built once, not optimized): what the sampled
  sub-networks cost on their own. Issue 13's target is elastic-kN <= 1.10 x bound-kN.

The loss is the paper's (alpha 1, tau 1) against fixed random "teacher" logits, so no teacher
forward is timed (it would cost the same in every variant). Elastic steps take consecutive step
numbers, so the sampled sizes vary over the timed steps as in training, and every round draws
the same sequence.

    python benchmarks/bench_elastic_step.py --config tiny --batch 128 --json benchmarks/results/elastic_step_cpu.json
    python benchmarks/bench_elastic_step.py --config mid --batch 32

Memory: on CPU, ``step_memory_mb`` = trainable parameters + gradients + AdamW state + what
autograd saves for backward during one step's forward (activations, generated weights, the
Des-Nets' gathered weights); the process peak RSS (ru_maxrss) is printed too. On CUDA, the
allocator's peak over the timed steps.
"""

from __future__ import annotations

import argparse
import itertools
import resource
from pathlib import Path

from bench_common import (add_cpu_memory_flag, append_json, apply_cpu_memory, checked_variants, device_name,
                          emit_result, interleaved_rounds, saved_for_backward_mb, train_state_mb)
from bench_train_step import make_config

VARIANTS = ("paper", "elastic-k1", "elastic-k2", "bound-k1", "bound-k2")


def worker(args: argparse.Namespace) -> dict:
    """Build one variant, time its step, report step time and memory."""
    import torch
    import torch.utils.benchmark as bench

    import lets_core
    from lets_core.elastic import ElasticConfig, ElasticObjective
    from lets_core.train import DistillationLoss, DistillationObjective, TrainConfig
    from lets_core.des import scratch_des
    from lets_core.train.losses import kd_loss

    apply_cpu_memory(args.cpu_memory)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    cfg = make_config(args.config)
    lg = cfg.learngene
    model = lets_core.AuxNet(cfg).to(device).train()
    paper = DistillationObjective(DistillationLoss(alpha=1.0, tau=1.0))
    objective, plain_nets = paper, {}
    if args.variant != "paper":
        k = int(args.variant.rsplit("-k", 1)[1])
        elastic = ElasticObjective(ElasticConfig(num_random=k), cfg, TrainConfig(alpha=1.0, tau=1.0))
        sampler = elastic.sampler
        every_size = [(h, d) for h in range(sampler.min_heads, sampler.max_heads + 1)
                      for d in range(sampler.min_depth, sampler.max_depth + 1)]
        # Every size the sampler can draw is built before timing, on both sides, so no construction
        # is timed: the bound's plain ViTs, and the Aux-Net's Des-Net skeletons (built on a size's
        # first use; a few warm-up steps meet only some of the sizes).
        if args.variant.startswith("elastic"):
            objective = elastic
            with torch.no_grad():
                model(torch.zeros(1, lg.in_chans, lg.img_size, lg.img_size, device=device), des_sizes=every_size,
                      strategy=elastic.config.strategy)
        else:
            plain_nets = {size: scratch_des(cfg, *size).to(device).train() for size in every_size}

            def objective(model, x, y, teacher_logits, epoch, step):
                loss, logits = paper(model, x, y, teacher_logits, epoch, step)
                for size in sampler.sizes(elastic.seed, epoch, step):
                    loss = loss + kd_loss(plain_nets[size](x), teacher_logits, 1.0) / (k + 1)
                return loss, logits
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    x = torch.randn(args.batch, lg.in_chans, lg.img_size, lg.img_size, device=device)
    y = torch.randint(0, lg.num_classes, (args.batch,), device=device)
    teacher_logits = torch.randn(args.batch, lg.num_classes, device=device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    steps = itertools.count()

    def loss() -> torch.Tensor:
        with autocast:
            return objective(model, x, y, teacher_logits, 0, next(steps))[0]

    def step() -> None:
        value = loss()
        opt.zero_grad(set_to_none=True)
        for net in plain_nets.values():
            net.zero_grad(set_to_none=True)
        value.backward()
        opt.step()

    for _ in range(3):  # warm-up: the optimizer allocates its state, Des skeletons get built
        step()
    saved_mb = saved_for_backward_mb(loss, model.parameters())
    state_mb = train_state_mb(model, opt)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    timer = bench.Timer(stmt="step()", globals={"step": step}, num_threads=torch.get_num_threads())
    measurement = timer.blocked_autorange(min_run_time=args.min_time)
    peak_mb = (torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda"
               else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    from lets_core._extension import extension_info
    return {
        "benchmark": "elastic_step", "config": args.config, "variant": args.variant, "device": device_name(device),
        "batch": args.batch, "dtype": "bfloat16-autocast" if device.type == "cuda" else "float32",
        "median_ms": measurement.median * 1e3, "iqr_ms": measurement.iqr * 1e3, "runs": len(measurement.times),
        "peak_mem_mb": peak_mb, "train_state_mb": state_mb, "saved_for_backward_mb": saved_mb,
        "step_memory_mb": state_mb + saved_mb, "threads": torch.get_num_threads(), "torch": torch.__version__,
        "cpu_memory": args.cpu_memory, "extension_loaded": extension_info()["extension_loaded"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="tiny", help="tiny, mid or paper")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads (0: torch's default); 1 steadies timings on a shared CPU")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma list of {VARIANTS}")
    parser.add_argument("--min-time", type=float, default=3.0, help="seconds of timed steps per variant and round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; each variant reports its median round")
    add_cpu_memory_flag(parser)
    parser.add_argument("--json", type=Path, help="append one record per variant to this JSON file")
    parser.add_argument("--variant", help=argparse.SUPPRESS)  # internal: run one variant in this process
    args = parser.parse_args()
    if args.variant:
        emit_result(worker(args))
        return

    variants = checked_variants(args.variants, VARIANTS, args.rounds)
    base = ["--config", args.config, "--device", args.device, "--batch", str(args.batch), "--min-time", str(args.min_time),
            "--threads", str(args.threads), "--cpu-memory", args.cpu_memory]
    records = interleaved_rounds(__file__, base, variants, args.rounds)
    print_table(records)
    append_json(args.json, records)


def print_table(records: list[dict]) -> None:
    if not records:
        return
    paper = next((r for r in records if r["variant"] == "paper"), None)
    r0 = records[0]
    print(f"stage-1 step, config {r0['config']}, batch {r0['batch']}, {r0['dtype']}, {r0['device']}, "
          f"torch {r0['torch']}, {r0['threads']} threads, {r0.get('cpu_memory', 'release')} CPU memory, "
          f"extension {'loaded' if r0['extension_loaded'] else 'off'}")
    mem = "step_memory_mb" if r0["device"].startswith("cpu") else "peak_mem_mb"
    print(f"memory column: {mem} ({'allocator peak' if mem == 'peak_mem_mb' else 'train state + saved for backward'})")
    print(f"{'variant':<12}{'median ms':>11}{'x paper':>9}{'memory MB':>11}{'x paper':>9}{'saved MB':>10}"
          f"{'process peak MB':>17}")
    for r in records:
        t_ratio = r["median_ms"] / paper["median_ms"] if paper else float("nan")
        m_ratio = r[mem] / paper[mem] if paper else float("nan")
        print(f"{r['variant']:<12}{r['median_ms']:>11.1f}{t_ratio:>9.2f}{r[mem]:>11.1f}{m_ratio:>9.2f}"
              f"{r['saved_for_backward_mb']:>10.1f}{r['peak_mem_mb']:>17.0f}   rounds {r.get('round_median_ms', '')}")


if __name__ == "__main__":
    main()
