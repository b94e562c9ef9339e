"""Mean and spread over seeds of several `lets compare` runs of the same command (one --out per seed).

    python benchmarks/compare_seeds.py runs/compare-fm runs/compare-fm-s1 runs/compare-fm-s2 [--markdown OUT]
        [--against OTHER_S0 OTHER_S1 OTHER_S2]

Reads each folder's compare.json, checks they differ only in the seed (settings and data), and
prints test top-1 (mean, min-max over seeds) per size, method and tuning length, then LeTs + 1
epoch against each other method + 1 epoch, scratch included: the mean gap and on how many seeds
LeTs is ahead (a tie is not ahead). The LeTs variants are compare.md's; LeTs(LiGO), an ablation,
is one of the others there and here.

--against takes runs of another setting (another --learngene-width, say) on the same seeds and
data, run folders or their compare.json files: every method and size both sets have is then
compared seed by seed (these runs minus those), with the settings that differ and the teachers'
test top-1. A method the setting does not touch measures how far two runs of one command drift
apart (another machine's arithmetic changes the trained numbers a little).
"""

from __future__ import annotations

from lets_core.compare_report import LETS_METHODS
from seed_runs import DATA_FIELDS, finish, gap, load_seed_runs, parse_args, spread


def main() -> None:
    args = parse_args(__doc__, against=True)
    reports = load_seed_runs(args.folders, "compare.json", "config")
    if args.against:
        finish(against_lines(reports, load_seed_runs(args.against, "compare.json", "config"), args.against),
               args.markdown)
        return
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


def against_lines(reports: list[dict], others: list[dict], names: list[str]) -> list[str]:
    """Each method and size of both sets of runs, these minus those, paired by seed."""
    by_seed = {r["config"]["seed"]: r for r in others}
    seeds = [r["config"]["seed"] for r in reports]
    if sorted(seeds) != sorted(by_seed):
        raise SystemExit(f"--against runs are seeds {sorted(by_seed)}, these are seeds {sorted(seeds)}; "
                         "give the same seeds")
    pairs = [(r, by_seed[s]) for r, s in zip(reports, seeds)]
    for (r, o), s in zip(pairs, seeds):
        if {k: r["dataset"].get(k) for k in DATA_FIELDS} != {k: o["dataset"].get(k) for k in DATA_FIELDS}:
            raise SystemExit(f"seed {s}: the --against run was on other data")
    differ = {k: (v, others[0]["config"].get(k)) for k, v in reports[0]["config"].items()
              if k not in ("seed", "out") and others[0]["config"].get(k) != v}
    lines = [f"Seeds {seeds}; these runs against {', '.join(names)}, paired by seed.", "",
             "Settings that differ (these, those): " + (", ".join(f"{k} {a!r} vs {b!r}" for k, (a, b) in differ.items())
                                                     or "none") + ".",
             "Teacher test top-1, these minus those, per seed: "
             + ", ".join(f"{100 * (r['teacher']['test_top1'] - o['teacher']['test_top1']):+.2f}" for r, o in pairs)
             + " points.", "",
             "Test top-1, these minus those: mean gap in points (seeds where these are ahead).", ""]
    lengths = sorted({e for r, o in pairs for size in r["results"] for m in r["results"][size]
                      for e in r["results"][size][m]["top1_by_epochs"]}, key=int)
    lines += ["| Des-Net | method | " + " | ".join("direct" if e == "0" else f"+ {e} ep" for e in lengths) + " |",
              "|---|---|" + "---|" * len(lengths)]
    for size in reports[0]["results"]:
        for method in reports[0]["results"][size]:
            if any(method not in o["results"].get(size, {}) for _, o in pairs):
                continue
            cells = []
            for e in lengths:
                mine = [r["results"][size][method]["top1_by_epochs"].get(e) for r, _ in pairs]
                theirs = [o["results"][size][method]["top1_by_epochs"].get(e) for _, o in pairs]
                cells.append("–" if None in mine + theirs else gap(mine, theirs))
            lines.append(f"| H{size.replace('x', '-L')} | {method} | " + " | ".join(cells) + " |")
    return lines


if __name__ == "__main__":
    main()
