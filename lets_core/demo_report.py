"""Writing the demo's report: report.json (the numbers), report.md (table + plain reading) and
report.png (accuracy against parameters, accuracy against epochs)."""

from __future__ import annotations

import json
from pathlib import Path


def write_report(report: dict, out: Path) -> None:
    out = Path(out)
    (out / "report.json").write_text(json.dumps(report, indent=2))
    (out / "report.md").write_text(markdown(report))
    plot(report, out / "report.png")


def table_lines(report: dict) -> list[str]:
    epochs = _scratch_epochs(report)
    head = ["Des-Net", "params", "LeTs direct", "LeTs + 1 ep"] + [f"scratch {e} ep" for e in epochs]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in report["rows"]:
        cells = [f"H{r['heads']}-L{r['depth']}", f"{r['params']:,}", _pct(r["lets_direct_top1"]),
                 _pct(r["lets_ft1_top1"])] + [_pct(r["scratch_top1_by_epoch"].get(str(e))) for e in epochs]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def reading(report: dict) -> list[str]:
    """Plain statements of what the numbers show, computed from them (nothing hand-written)."""
    epochs = _scratch_epochs(report)
    lines = []
    for r in report["rows"]:
        name, lets = f"H{r['heads']}-L{r['depth']}", r["lets_ft1_top1"]
        s1 = r["scratch_top1_by_epoch"][str(epochs[0])]
        beaten_by = [e for e in epochs if r["scratch_top1_by_epoch"][str(e)] >= lets]
        verdict = (f"beats scratch after {_epochs(epochs[0])} by {100 * (lets - s1):+.1f} points" if lets > s1
                   else f"does NOT beat scratch after {_epochs(epochs[0])} ({100 * (lets - s1):+.1f} points)")
        match = (f"scratch needs {_epochs(beaten_by[0])} to match it" if beaten_by
                 else f"scratch does not match it within {_epochs(epochs[-1])}")
        lines.append(f"- {name}: LeTs + 1 epoch {verdict}; {match}.")
    wins = sum(r["lets_ft1_top1"] > r["scratch_top1_by_epoch"][str(epochs[0])] for r in report["rows"])
    lines.append(f"- LeTs + 1 epoch beats {_epochs(epochs[0])} from scratch for {wins} of {len(report['rows'])} sizes.")
    return lines


def markdown(report: dict) -> str:
    ds, b, t = report["dataset"], report["bundle"], report["timings_seconds"]
    mode = "quick smoke run on a data subset (not a result)" if report["mode"] == "quick" else "default run"
    env = report["environment"]
    parts = [
        "# LeTs demo report", "",
        f"{mode} on **{ds['dataset']}**: {ds['train']:,} training, {ds['val']:,} validation and {ds['test']:,} "
        f"test images ({ds['in_chans']} x {ds['image_size']} x {ds['image_size']}, {ds['num_classes']} classes). "
        f"torch {env['torch']}, {env['threads']} threads on {env['device']}, {env['processes']} process(es); "
        f"total {t['total']:.0f} s.", "",
        f"- Teacher `{report['teacher']['arch']}` ({report['teacher']['params']:,} parameters): test top-1 "
        f"{_pct(report['teacher']['test_top1'])}.",
        f"- Aux-Net (stage 1, distilled, {_epochs(len(report['aux']['history']))}): test top-1 "
        f"{_pct(report['aux']['test_top1'])}.",
        f"- Stored bundle (learngene + F + G + pos_embed): {b['params']:,} parameters, "
        f"{(b['bytes'] or 0) / 1024:.0f} KiB on disk; the {len(report['rows'])} Des-Nets below hold "
        f"{b['des_params_total']:,} parameters together.", "",
        "Test top-1 (%). *LeTs direct*: the emitted Des-Net without training; *LeTs + 1 ep*: after one epoch "
        "of fine-tuning; *scratch N ep*: the same architecture from timm's random initialization trained for N "
        "epochs (a separate run per N, each with its full schedule), with the same loop and recipe.", "",
        *table_lines(report), "",
        "## What the numbers say", "",
        *reading(report),
        f"- Not counted above: stage 1, paid once for every size: the teacher ({t.get('teacher', 0):.0f} s) and "
        f"the Aux-Net ({_epochs(len(report['aux']['history']))} of distillation, {t.get('aux', 0):.0f} s), trained "
        f"on the same training images the Des-Nets are then fine-tuned on. As in the paper, the claim is that "
        f"one stage-1 run initializes every size, not that it is free.", "",
    ]
    return "\n".join(parts)


def print_table(report: dict) -> None:
    print("\n".join(["", *table_lines(report), "", *reading(report), ""]), flush=True)


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = sorted(report["rows"], key=lambda r: r["params"])
    epochs = _scratch_epochs(report)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.8))
    params = [r["params"] for r in rows]
    ax1.plot(params, [100 * r["lets_direct_top1"] for r in rows], "o:", label="LeTs direct (no training)")
    ax1.plot(params, [100 * r["lets_ft1_top1"] for r in rows], "o-", label="LeTs + 1 epoch")
    for e in epochs:
        ax1.plot(params, [100 * r["scratch_top1_by_epoch"][str(e)] for r in rows], "s--", label=f"scratch {e} epoch(s)")
    for r in rows:
        ax1.annotate(f"H{r['heads']}-L{r['depth']}", (r["params"], 100 * r["lets_ft1_top1"]), fontsize=8,
                     textcoords="offset points", xytext=(4, 4))
    ax1.set(xlabel="Des-Net parameters", ylabel="test top-1 (%)", title="accuracy against size")
    ax1.legend(fontsize=8)
    for i, r in enumerate(rows):
        color = f"C{i}"
        ax2.plot([0, 1], [100 * r["lets_direct_top1"], 100 * r["lets_ft1_top1"]], "o-", color=color,
                 label=f"H{r['heads']}-L{r['depth']} LeTs")
        ax2.plot(epochs, [100 * r["scratch_top1_by_epoch"][str(e)] for e in epochs], "s--", color=color,
                 label=f"H{r['heads']}-L{r['depth']} scratch")
    ax2.set(xlabel="training epochs on the target data", ylabel="test top-1 (%)", title="accuracy against epochs",
            xticks=[0, *epochs])
    ax2.legend(fontsize=7, ncol=2)
    fig.suptitle(f"LeTs vs scratch on {report['dataset']['dataset']} ({report['mode']} run)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _scratch_epochs(report: dict) -> list[int]:
    return sorted({int(e) for r in report["rows"] for e in r["scratch_top1_by_epoch"]})


def _epochs(n: int) -> str:
    return f"{n} epoch" if n == 1 else f"{n} epochs"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.2f}"
