"""Mean and spread over seeds of several `lets demo` runs of the same command (one --out per seed).

    python benchmarks/demo_seeds.py runs/demo-s0 runs/demo-s1 runs/demo-s2 [--markdown OUT]

Reads each folder's report.json, checks they differ only in the seed (settings and data), and
prints test top-1 (mean, min-max over seeds) of the teacher, each stage 1's Aux-Net and, per size,
each LeTs Des-Net directly and after one tuning epoch and scratch after each of its budgets; then
LeTs + 1 epoch against every scratch budget: the mean gap and on how many seeds LeTs is ahead (a tie
is not ahead). This is the demo's claim (LeTs + 1 epoch against 4 scratch epochs) with its seed count.
"""

from __future__ import annotations

from seed_runs import finish, gap, load_seed_runs, parse_args, spread


def main() -> None:
    args = parse_args(__doc__)
    reports = load_seed_runs(args.folders, "report.json", "demo_config")
    seeds = [r["demo_config"]["seed"] for r in reports]
    variants = list(reports[0]["demo_config"]["stage1"])
    budgets = [str(e) for e in reports[0]["demo_config"]["scratch_epochs"]]
    lines = [f"Seeds {seeds}; test top-1 (%), mean [min, max] over seeds.", "",
             f"Teacher: {spread([r['teacher']['test_top1'] for r in reports])}."]
    lines += [f"Aux-Net, {v} stage 1: {spread([r['stage1'][v]['test_top1'] for r in reports])}." for v in variants]
    header = ([f"LeTs-{v} {when}" for v in variants for when in ("direct", "+ 1 ep")]
              + [f"scratch {e} ep" for e in budgets])
    lines += ["", "| Des-Net | params | " + " | ".join(header) + " |", "|---|---|" + "---|" * len(header)]
    # Each seed's rows by (heads, depth).
    per_seed = [{(row["heads"], row["depth"]): row for row in r["rows"]} for r in reports]
    sizes = list(per_seed[0])
    for size in sizes:
        cells = [spread([p[size]["lets"][v][key] for p in per_seed])
                 for v in variants for key in ("direct_top1", "ft1_top1")]
        cells += [spread([p[size]["scratch_top1_by_epoch"][e] for p in per_seed]) for e in budgets]
        lines.append(f"| H{size[0]}-L{size[1]} | {per_seed[0][size]['params']:,} | " + " | ".join(cells) + " |")
    lines += ["", "LeTs + 1 ep against scratch: mean gap in points (seeds where LeTs is ahead).", "",
              "| LeTs variant | scratch | " + " | ".join(f"H{h}-L{d}" for h, d in sizes) + " |",
              "|---|---|" + "---|" * len(sizes)]
    for v in variants:
        for e in budgets:
            cells = [gap([p[size]["lets"][v]["ft1_top1"] for p in per_seed],
                         [p[size]["scratch_top1_by_epoch"][e] for p in per_seed]) for size in sizes]
            lines.append(f"| {v} | {e} ep | " + " | ".join(cells) + " |")
    finish(lines, args.markdown)


if __name__ == "__main__":
    main()
