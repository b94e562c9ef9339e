"""What compare_seeds.py and demo_seeds.py share: reading one report per seed and refusing runs that
are not the same command with another seed."""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

# What must agree between seeds besides the settings: `--dataset auto` is one setting for a
# Fashion-MNIST run and for its digits fallback.
DATA_FIELDS = ("dataset", "train", "val", "test", "image_size", "in_chans", "num_classes")


def parse_args(doc: str, against: bool = False) -> argparse.Namespace:
    """The command line both scripts take: the run folders (or their report files), one per seed,
    and --markdown; with ``against``, also --against: the runs of another setting to compare with."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+")
    parser.add_argument("--markdown", type=Path, help="also write the tables here")
    if against:
        parser.add_argument("--against", nargs="+", metavar="FOLDER", help="runs of another setting on the same "
                            "seeds and data: each method both have is compared seed by seed")
    return parser.parse_args()


def load_seed_runs(folders: list[str], report_name: str, config_key: str) -> list[dict]:
    """The report `report_name` of each folder; exits naming the folder when two differ in anything but
    the seed (settings under `config_key`, or the data) or are runs of one seed."""
    reports = [json.loads(report_path(f, report_name).read_text()) for f in folders]
    strip = lambda r: {k: v for k, v in r[config_key].items() if k not in ("seed", "out")}
    data = lambda r: {k: r["dataset"].get(k) for k in DATA_FIELDS}
    for f, r in zip(folders[1:], reports[1:]):
        if strip(r) != strip(reports[0]):
            raise SystemExit(f"{f} was not run with the same settings as {folders[0]} (apart from the seed)")
        if data(r) != data(reports[0]):
            raise SystemExit(f"{f} was run on other data than {folders[0]}: {data(r)} vs {data(reports[0])}")
    # The same run twice (or two runs of one seed) would count as independent seeds.
    seen: dict[object, str] = {}
    for f, r in zip(folders, reports):
        seed = r[config_key]["seed"]
        if seed in seen:
            raise SystemExit(f"{f} and {seen[seed]} are both seed {seed}; give one run per seed")
        seen[seed] = f
    return reports


def report_path(folder: str, report_name: str) -> Path:
    """A run folder's report, or the report file itself (committed runs keep only that file)."""
    path = Path(folder)
    return path if path.is_file() else path / report_name


def spread(values: list[float]) -> str:
    """Mean [min, max] of fractions, in percent. One precision for all three: at .1f a mean could
    print outside its own range."""
    v = [100 * x for x in values]
    return f"{statistics.mean(v):.2f} [{min(v):.2f}, {max(v):.2f}]"


def gap(values: list[float], rivals: list[float]) -> str:
    """Mean gap in points and on how many seeds the first is ahead (a tie is not ahead)."""
    gaps = [100 * (a - b) for a, b in zip(values, rivals)]
    return f"{statistics.mean(gaps):+.2f} ({sum(g > 0 for g in gaps)}/{len(gaps)})"


def finish(lines: list[str], markdown: Path | None) -> None:
    text = "\n".join(lines)
    print(text)
    if markdown:
        markdown.write_text(text + "\n")
