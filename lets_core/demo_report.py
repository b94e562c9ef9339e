"""Writing the demo's report: report.json (the numbers), report.md (tables + a reading computed from
the numbers) and report.png (top-1 against tuning epochs, one panel per size, as the paper's Fig. 4)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from .info import kernels_clause

# The report's files, in the run's output folder.
REPORT_FILES = ("report.json", "report.md", "report.png")
# What "direct" top-1 of a Des-Net should keep of its Aux-Net's (the elastic stage-1 target).
DIRECT_KEEP_TARGET = 0.9


def write_report(report: dict, out: Path) -> None:
    out = Path(out)
    json_file, md_file, png_file = REPORT_FILES
    (out / json_file).write_text(json.dumps(report, indent=2))
    (out / md_file).write_text(markdown(report))
    plot(report, out / png_file)


def table_lines(report: dict) -> list[str]:
    epochs, variants = _scratch_epochs(report), _variants(report)
    head = ["Des-Net", "params"]
    for v in variants:
        head += [f"LeTs-{v} direct", f"LeTs-{v} + 1 ep"]
    head += [f"scratch {e} ep" for e in epochs]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in report["rows"]:
        cells = [_name(r), f"{r['params']:,}"]
        for v in variants:
            cells += [_pct(r["lets"][v]["direct_top1"]), _pct(r["lets"][v]["ft1_top1"])]
        cells += [_pct(r["scratch_top1_by_epoch"].get(str(e))) for e in epochs]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def cost_lines(report: dict) -> list[str]:
    """Training FLOPs and measured seconds each way spends for the whole family of sizes."""
    flops, seconds = report["costs"]["training_flops"], report["costs"]["seconds"]
    lines = ["| way (whole family) | what it trains | training TFLOPs | measured s |", "|---|---|---|---|"]
    for way in flops:
        if way.startswith("lets-"):
            what = f"teacher + {way[5:]} stage 1 + 1 epoch per size"
        else:
            what = f"every size from scratch, {way.split('-')[1].removesuffix('ep')} epoch(s)"
        lines.append(f"| {way} | {what} | {flops[way] / 1e12:.2f} | {seconds.get(way, 0):.0f} |")
    return lines


def reading(report: dict) -> list[str]:
    """Plain statements of what the numbers show, computed from them (nothing hand-written)."""
    epochs, variants = _scratch_epochs(report), _variants(report)
    most = str(epochs[-1])
    lines = []
    for v in variants:
        aux = report["stage1"][v]["test_top1"]
        wins, keeps = [], []
        for r in report["rows"]:
            lets, scratch = r["lets"][v]["ft1_top1"], r["scratch_top1_by_epoch"][most]
            wins.append(lets >= scratch)
            keeps.append(r["lets"][v]["direct_top1"] / aux if aux > 0 else 0.0)
        detail = ", ".join(f"{_name(r)} {100 * (r['lets'][v]['ft1_top1'] - r['scratch_top1_by_epoch'][most]):+.1f}"
                           for r in report["rows"])
        lines.append(f"- LeTs-{v} + 1 epoch against scratch after {_epochs(epochs[-1])}: "
                     f"{'at least equal at every size' if all(wins) else f'behind at {wins.count(False)} size(s)'} "
                     f"(points: {detail}).")
        kept = ", ".join(f"{_name(r)} {100 * k:.0f}%" for r, k in zip(report["rows"], keeps))
        target = "all" if min(keeps) >= DIRECT_KEEP_TARGET else "not all"
        lines.append(f"- LeTs-{v} direct (no tuning) keeps this share of its Aux-Net's top-1 "
                     f"({_pct(aux)}): {kept}; {target} at or above {100 * DIRECT_KEEP_TARGET:.0f}%.")
    flops = report["costs"]["training_flops"]
    per_epoch = flops[f"scratch-{epochs[0]}ep"] / epochs[0]  # one epoch of every size in the grid
    mean_size = per_epoch / len(report["rows"])
    for v in variants:
        ratio = flops[f"lets-{v}"] / flops[f"scratch-{most}ep"]
        fixed = flops[f"lets-{v}"] - per_epoch  # teacher + stage 1: paid once, whatever the number of sizes
        head = (f"- Training FLOPs of the whole family, LeTs-{v} (teacher and stage 1 included) against "
                f"scratch for {_epochs(epochs[-1])}: {ratio:.2f}x for these {len(report['rows'])} sizes.")
        if epochs[-1] <= 1:  # scratch's longest budget is LeTs's one tuning epoch: no size pays stage 1 back
            lines.append(f"{head} Scratch's longest budget is 1 epoch, what LeTs spends per size, so no number of "
                         f"sizes pays stage 1 back.")
            continue
        # Each further size costs LeTs 1 tuning epoch and scratch `most` epochs of that size.
        sizes_to_break_even = fixed / ((epochs[-1] - 1) * mean_size)
        lines.append(f"{head} Stage 1 is paid once and each further size costs LeTs 1 epoch where scratch pays "
                     f"{epochs[-1]}: at the mean cost of these sizes, LeTs-{v} is cheaper from about "
                     f"{math.ceil(sizes_to_break_even)} sizes on.")
    return lines


def markdown(report: dict) -> str:
    ds, b, t = report["dataset"], report["bundle"], report["timings_seconds"]
    mode = {"quick": "quick smoke run on a data subset (not a result)", "full": "full run",
            "default": "default run"}[report["mode"]]
    env = report["environment"]
    # "distills" is absent in reports written before it was recorded, when every stage 1 distilled.
    stage1 = [f"- Aux-Net, {v} stage 1 ({_epochs(len(s['history']))} of "
              f"{'distillation' if s.get('distills', True) else 'training on labels, no distillation'}): test top-1 "
              f"{_pct(s['test_top1'])} ({t.get(f'stage1-{v}', 0):.0f} s)." for v, s in report["stage1"].items()]
    tf = report["model_config"]["transform"]
    parts = [
        "# LeTs demo report", "",
        f"{mode} on **{ds['dataset']}**: {ds['train']:,} training, {ds['val']:,} validation and {ds['test']:,} "
        f"test images ({ds['in_chans']} x {ds['image_size']} x {ds['image_size']}, {ds['num_classes']} classes). "
        f"torch {env['torch']}, {env['threads']} threads on {env['device']}, {env['processes']} process(es)"
        f"{kernels_clause(env)}; "
        f"total {t['total']:.0f} s. One seed ({report['demo_config']['seed']}).", "",
        f"- Teacher `{report['teacher']['arch']}` ({report['teacher']['params']:,} parameters): test top-1 "
        f"{_pct(report['teacher']['test_top1'])}.",
        *stage1,
        f"- F init `{tf['f_init']}`, G init `{tf['g_init']}`; stored bundle (learngene + F + G + pos_embed): "
        f"{b['params']:,} parameters, {(b['bytes'] or 0) / 1024:.0f} KiB on disk; the {len(report['rows'])} "
        f"Des-Nets below hold {b['des_params_total']:,} parameters together.", "",
        "Test top-1 (%). *LeTs-paper*: the paper's stage 1 (the Aux-Net alone); *LeTs-elastic*: sampled "
        "Des-Nets trained beside the Aux-Net in stage 1. *direct*: the emitted Des-Net without training; "
        "*+ 1 ep*: after one epoch of fine-tuning; *scratch N ep*: the same architecture from timm's random "
        "initialization trained for N epochs (a separate run per N, each with its full schedule), with the same "
        "loop and recipe.", "",
        *table_lines(report), "",
        "## What the family costs", "",
        "Training FLOPs count 3 x forward per trained image plus the teacher's forward where it distills "
        "(evaluation not counted); seconds are measured wall clock, evaluation included.", "",
        *cost_lines(report), "",
        "## What the numbers say", "",
        *reading(report),
        "- Stage 1 trains on the same training images the Des-Nets are then fine-tuned on; the LeTs cost above "
        "includes it and, where it distills, the teacher. As in the paper, one stage-1 run initializes every size; a new size costs "
        "LeTs one tuning epoch.", "",
    ]
    return "\n".join(parts)


def print_table(report: dict) -> None:
    print("\n".join(["", *table_lines(report), "", *cost_lines(report), "", *reading(report), ""]), flush=True)


def plot(report: dict, path: Path) -> None:
    """The paper's Fig. 4 form: per size, top-1 against the epochs spent on the target data."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = sorted(report["rows"], key=lambda r: r["params"])
    epochs, variants = _scratch_epochs(report), _variants(report)
    fig, axes = plt.subplots(1, len(rows), figsize=(4.2 * len(rows), 4.0), squeeze=False, sharey=True)
    for ax, r in zip(axes[0], rows):
        ax.plot(epochs, [100 * r["scratch_top1_by_epoch"][str(e)] for e in epochs], "s--", color="C7",
                label="scratch")
        for i, v in enumerate(variants):
            ax.plot([0, 1], [100 * r["lets"][v]["direct_top1"], 100 * r["lets"][v]["ft1_top1"]], "o-",
                    color=f"C{i}", label=f"LeTs-{v}")
            ax.axhline(100 * report["stage1"][v]["test_top1"], color=f"C{i}", ls=":", lw=1,
                       label=f"Aux-Net ({v} stage 1)")
        ax.set(title=f"{_name(r)} ({r['params']:,} params)", xlabel="tuning epochs", xticks=[0, *epochs])
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("test top-1 (%)")
    axes[0][0].legend(fontsize=8, loc="lower right")
    fig.suptitle(f"LeTs vs scratch on {report['dataset']['dataset']} ({report['mode']} run, one seed)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _variants(report: dict) -> list[str]:
    return list(report["stage1"])


def _scratch_epochs(report: dict) -> list[int]:
    return sorted({int(e) for r in report["rows"] for e in r["scratch_top1_by_epoch"]})


def _name(row: dict) -> str:
    return f"H{row['heads']}-L{row['depth']}"


def _epochs(n: int) -> str:
    return f"{n} epoch" if n == 1 else f"{n} epochs"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.2f}"
