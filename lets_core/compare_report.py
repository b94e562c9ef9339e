"""Writing ``lets compare``'s report: compare.json (the numbers), compare.md (tables and a reading
computed from them) and compare.png (the paper's Fig. 4 and Fig. 5 forms)."""

from __future__ import annotations

import json
from pathlib import Path

from .info import kernels_clause

LETS_METHODS = ("lets", "lets-elastic")
# The report's files, in the run's output folder.
REPORT_FILES = ("compare.json", "compare.md", "compare.png")


def write_compare_report(report: dict, out: Path) -> None:
    out = Path(out)
    json_file, md_file, png_file = REPORT_FILES
    (out / json_file).write_text(json.dumps(report, indent=2))
    (out / md_file).write_text(markdown(report))
    plot(report, out / png_file)
    print("\n".join(["", *top1_lines(report), "", *reading(report), ""]), flush=True)


def top1_lines(report: dict) -> list[str]:
    """One table: a row per (size, method), a column per number of tuning epochs."""
    epochs = report["config"]["tune_epochs"]
    head = ["Des-Net", "method", *[("direct" if e == 0 else f"+ {e} ep") for e in epochs]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for size, methods in report["results"].items():
        for method, r in methods.items():
            best = [_best_at(report, size, e) for e in epochs]
            cells = [_pct(r["top1_by_epochs"].get(str(e)), bold=method in b) for e, b in zip(epochs, best)]
            lines.append(f"| {_name(report, size)} | {method} | " + " | ".join(cells) + " |")
    return lines


def tune_lrs(cfg: dict) -> list[float]:
    """The tuning lrs a run searched (a report written before the grid existed holds one, ``tune_lr``)."""
    return cfg["tune_lrs"] if "tune_lrs" in cfg else [cfg["tune_lr"]]


def _tuning_lr_text(cfg: dict) -> str:
    grid = tune_lrs(cfg)
    if len(grid) == 1:
        return f"lr {grid[0]:g} per 512 images"
    return (f"lr per 512 images chosen among {', '.join(f'{lr:g}' for lr in grid)} on the validation split, "
            "for every method, size and length alike (the test split scores only the chosen run)")


def chosen_lr_lines(report: dict) -> list[str]:
    """With a grid: the lr each tuned cell kept, and its validation top-1 (nothing with one lr)."""
    if len(tune_lrs(report["config"])) == 1:
        return []
    tuned = [e for e in report["config"]["tune_epochs"] if e > 0]
    head = ["Des-Net", "method", *[f"+ {e} ep" for e in tuned]]
    lines = ["Tuning lr kept (validation top-1 % of that run):", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for size, methods in report["results"].items():
        for method, r in methods.items():
            cells = []
            for e in tuned:
                lr = r["tune_lr_by_epochs"][str(e)]
                cells.append(f"{lr:g} ({_pct(r['val_top1_by_epochs'][str(e)][f'{lr:g}'])})")
            lines.append(f"| {_name(report, size)} | {method} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def storage_lines(report: dict) -> list[str]:
    """What each method stores to initialize the whole family, and what it spent (measured seconds)."""
    lines = ["| method | sizes | stored parameters | stage-1 s | tuning s (its sizes and lengths) | total s |",
             "|---|---|---|---|---|---|"]
    for method, m in report["methods"].items():
        made = sum(method in r for r in report["results"].values())
        tune = sum(sum(r["seconds_by_epochs"].values()) for size in report["results"].values()
                   for name, r in size.items() if name == method)
        teacher = report["teacher"]["seconds"] if m["distills"] else 0.0
        lines.append(f"| {method} | {made} of {len(report['results'])} | {m['stored_parameters']:,} | "
                     f"{m['stage1_seconds']:.0f} | {tune:.0f} | "
                     f"{teacher + m['stage1_seconds'] + tune:.0f} |")
    return lines


def reading(report: dict) -> list[str]:
    """Where a LeTs variant wins or loses against each other method after 1 tuning epoch (or the
    smallest positive number run), computed from the numbers."""
    tuned = [e for e in report["config"]["tune_epochs"] if e > 0]
    if not tuned:
        return ["- No tuning epochs were run; compare the direct columns."]
    e = str(tuned[0])
    lines = []
    for lets in [m for m in LETS_METHODS if m in report["methods"]]:
        for other in [m for m in report["methods"] if m not in LETS_METHODS]:
            gaps = {size: r[lets]["top1_by_epochs"][e] - r[other]["top1_by_epochs"][e]
                    for size, r in report["results"].items() if lets in r and other in r}
            if not gaps:
                continue
            ahead, level = sum(g > 0 for g in gaps.values()), sum(g == 0 for g in gaps.values())
            behind = len(gaps) - ahead - level
            detail = ", ".join(f"{_name(report, s)} {100 * g:+.1f}" for s, g in gaps.items())
            # A tie is level, not ahead (compare_seeds.py counts the same way).
            verdict = "at least equal at every size" if behind == 0 else (
                "behind at every size" if behind == len(gaps) else
                ", ".join(f"{word} at {n}" for word, n in (("ahead", ahead), ("level", level), ("behind", behind))
                          if n) + f" of {len(gaps)} sizes")
            lines.append(f"- {lets} + {e} ep against {other} + {e} ep: {verdict} (points: {detail}).")
    if lines:
        return lines
    if not any(m in report["methods"] for m in LETS_METHODS):
        return ["- No LeTs method was run."]
    return ["- No other method ran at a LeTs size, so there is nothing to compare LeTs against."]


def markdown(report: dict) -> str:
    ds, cfg, env = report["dataset"], report["config"], report["environment"]
    mode = "quick smoke run on a data subset (not a result)" if cfg["quick"] else "run"
    parts = [
        "# LeTs compared with its rivals", "",
        f"{mode} on **{ds['dataset']}**: {ds['train']:,} training, {ds['val']:,} validation and {ds['test']:,} test "
        f"images ({ds['in_chans']} x {ds['image_size']} x {ds['image_size']}, {ds['num_classes']} classes). "
        f"torch {env['torch']}, {env['threads']} threads on {env['device']}{kernels_clause(env)}; "
        f"this run {report['seconds_total']:.0f} s "
        "(stages reused from earlier runs count at their recorded cost below). "
        f"One seed ({cfg['seed']}).", "",
        f"- Teacher `{report['teacher']['arch']}`: test top-1 {_pct(report['teacher']['test_top1'])}, shared by "
        f"every method that distills.",
        f"- Stage 1 of every method: {cfg['stage1_epochs']} epochs (Pre-Fin: that many per size; scratch has "
        f"none), lr {cfg['stage1_lr']:g} per 512 images, loss (1 - alpha) CE + alpha KD with alpha "
        f"{cfg['alpha']:g}, tau {cfg['tau']:g}.",
        _shape_line(report["model_config"]),
        f"- Tuning of every method: {_tuning_lr_text(cfg)}, warm-up {cfg['tune_warmup_epochs']:g} "
        "epochs then cosine; each length is a separate run with its own schedule. *direct* is the emitted "
        "network without training. Bold: the best method of that size and column.", "",
        "Test top-1 (%):", "",
        *top1_lines(report), "",
        *chosen_lr_lines(report),
        "## Storage and cost of the whole family", "",
        "Stored parameters: what must be kept to initialize every size the method makes (the paper's Table 2 "
        "argument); *sizes* says how many of this run's sizes that is (TLEG and SWS make only the Aux width, "
        "Pre-Fin stores one model per size asked for, so its count grows with the sizes). Seconds "
        "are each training's recorded epoch times (kept in its checkpoints, so reused stages count), plus the "
        "emission and evaluation of each tuned size (every lr of a grid, with its validation pass); the teacher's "
        "are added to every method that distills.", "",
        *storage_lines(report), "",
        "## What the numbers say", "",
        *reading(report), "",
    ]
    return "\n".join(parts)


def _shape_line(model: dict) -> str:
    """The learngene and Aux-Net the LeTs methods use (``--learngene-width`` changes the first)."""
    lg = model["learngene"]
    return (f"- LeTs learngene: {lg['depth']} blocks of width {lg['embed_dim']} ({lg['embed_dim'] // lg['head_dim']} "
            f"heads of {lg['head_dim']}); Aux-Net: {model['aux_depth']} blocks of width {model['aux_embed_dim']}.")


def plot(report: dict, path: Path) -> None:
    """Top: top-1 against tuning epochs, one panel per size (Fig. 4). Bottom: top-1 against the
    Des-Net's parameters, direct and after the first tuning length (Fig. 5)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    sizes = list(report["results"])
    methods = list(report["methods"])
    colors = {m: f"C{i}" for i, m in enumerate(methods)}
    epochs = report["config"]["tune_epochs"]
    tuned = [e for e in epochs if e > 0][:1]
    fig, axes = plt.subplots(2, max(len(sizes), 2), figsize=(4.2 * max(len(sizes), 2), 8.0), squeeze=False)
    for ax, size in zip(axes[0], sizes):
        for method, r in report["results"][size].items():
            ax.plot(epochs, [100 * r["top1_by_epochs"][str(e)] for e in epochs], "o-" if method in LETS_METHODS
                    else "s--", color=colors[method], label=method)
        ax.set(title=f"{_name(report, size)} ({report['sizes'][size]['params']:,} params)", xlabel="tuning epochs",
               xticks=epochs)
        ax.grid(alpha=0.3)
    for ax in axes[0][len(sizes):]:
        ax.axis("off")
    axes[0][0].set_ylabel("test top-1 (%)")
    # The direct panel only when 0 was run: `--tune-epochs 1` crashed here after all the training.
    bottom = [e for e in epochs if e == 0][:1] + tuned
    for ax, e in zip(axes[1], bottom):
        for method in methods:
            points = [(report["sizes"][s]["params"], 100 * r[method]["top1_by_epochs"][str(e)])
                      for s, r in report["results"].items() if method in r]
            if points:
                xs, ys = zip(*sorted(points))
                ax.plot(xs, ys, "o-" if method in LETS_METHODS else "s--", color=colors[method], label=method)
        ax.set(title="direct (no tuning)" if e == 0 else f"after {e} tuning epoch(s)", xlabel="Des-Net parameters",
               xscale="log")
        ax.grid(alpha=0.3)
    for ax in axes[1][len(bottom):]:
        ax.axis("off")
    axes[1][0].set_ylabel("test top-1 (%)")
    # One legend for the figure: some methods make only some sizes, so no single panel shows them all.
    handles = [Line2D([], [], color=colors[m], marker="o" if m in LETS_METHODS else "s",
                      ls="-" if m in LETS_METHODS else "--") for m in methods]
    fig.legend(handles, methods, loc="lower center", ncol=len(methods), fontsize=8)
    fig.suptitle(f"LeTs and its rivals on {report['dataset']['dataset']} (one seed)")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _best_at(report: dict, size: str, epochs: int) -> set[str]:
    """Every method with the best top-1 at (size, epochs): ties are all bold (weight selection and
    Pre-Fin are one network at the Aux size, so they tie whenever either is best)."""
    scores = {m: r["top1_by_epochs"].get(str(epochs)) for m, r in report["results"][size].items()}
    scores = {m: v for m, v in scores.items() if v is not None}
    top = max(scores.values(), default=None)
    return {m for m, v in scores.items() if v == top}


def _name(report: dict, size: str) -> str:
    s = report["sizes"][size]
    return f"H{s['heads']}-L{s['depth']}"


def _pct(value: float | None, bold: bool = False) -> str:
    if value is None:
        return "–"
    text = f"{100 * value:.2f}"
    return f"**{text}**" if bold else text
