"""Mean and spread over seeds of several `lets compare` runs of the same command (one --out per seed).

    python benchmarks/compare_seeds.py runs/compare-fm runs/compare-fm-s1 runs/compare-fm-s2 [--markdown OUT]

Reads each folder's compare.json, checks they differ only in the seed (settings and data), and
prints test top-1 (mean, min-max over seeds) per size, method and tuning length, then LeTs + 1
epoch against each other method + 1 epoch, scratch included: the mean gap and on how many seeds
LeTs is ahead (a tie is not ahead). The LeTs variants are compare.md's; LeTs(LiGO), an ablation,
is one of the others there and here.
"""

from __future__ import annotations

from lets_core.compare_report import LETS_METHODS
from seed_runs import finish, gap, load_seed_runs, parse_args, spread


def main() -> None:
    args = parse_args(__doc__)
    reports = load_seed_runs(args.folders, "compare.json", "config")
    seeds = [r["config"]["seed"] for r in reports]
    sizes = reports[0]["results"]
    # The tuning lengths the runs have (the header follows them: it used to say direct, +1, +2 always).
    lengths = list(next(iter(next(iter(sizes.values())).values()))["top1_by_epochs"])
    header = ["direct" if e == "0" else f"+ {e} ep" for e in lengths]
    lines = [f"Seeds {seeds}; test top-1 (%), mean [min, max] over seeds.", "",
             "| Des-Net | method | " + " | ".join(header) + " |", "|---|---|" + "---|" * len(header)]
    for size in sizes:
        for method in sizes[size]:
            cells = [spread([r["results"][size][method]["top1_by_epochs"][e] for r in reports])
                     for e in reports[0]["results"][size][method]["top1_by_epochs"]]
            lines.append(f"| H{size.replace('x', '-L')} | {method} | " + " | ".join(cells) + " |")
    if "1" not in lengths:
        lines += ["", "No run tuned for 1 epoch, so there is no LeTs + 1 ep comparison."]
        finish(lines, args.markdown)
        return
    lines += ["", "LeTs + 1 ep against each other method + 1 ep: mean gap in points (seeds where LeTs is ahead).",
              ""]
    rivals = [m for m in reports[0]["methods"] if m not in LETS_METHODS]
    lines += ["| LeTs variant | rival | " + " | ".join(f"H{s.replace('x', '-L')}" for s in sizes) + " |",
              "|---|---|" + "---|" * len(sizes)]
    for lets in [m for m in LETS_METHODS if m in reports[0]["methods"]]:
        for rival in rivals:
            cells = []
            for size in sizes:
                if rival not in sizes[size]:
                    cells.append("–")
                    continue
                cells.append(gap([r["results"][size][lets]["top1_by_epochs"]["1"] for r in reports],
                                 [r["results"][size][rival]["top1_by_epochs"]["1"] for r in reports]))
            lines.append(f"| {lets} | {rival} | " + " | ".join(cells) + " |")
    finish(lines, args.markdown)


if __name__ == "__main__":
    main()
