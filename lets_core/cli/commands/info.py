"""``lets info``: versions, the compiled extension's status, data availability, a preset's configuration."""

from __future__ import annotations

import argparse
import json
import platform

import torch

from ...data import FASHION_MNIST_INSTALL, fashion_mnist_available
from ...data.sources import fashion_mnist_dir
from ...info import extension_info, format_info
from ..choices import PRESETS
from ..flags import subparser


def build(sub) -> argparse.ArgumentParser:
    p = subparser(sub, "info", "versions, the compiled extension's status, data availability, a preset's configuration")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--preset", choices=PRESETS, help="also print this preset's LetsConfig")
    return p


def run(args: argparse.Namespace) -> int:
    import timm

    import lets_core

    facts = {"lets_core": lets_core.__version__, "python": platform.python_version(), "torch": torch.__version__,
             "timm": timm.__version__, "threads": torch.get_num_threads(), "cuda_available": torch.cuda.is_available(),
             "fashion_mnist": str(fashion_mnist_dir()) if fashion_mnist_available() else
             f"not installed ({FASHION_MNIST_INSTALL})"}
    extension = extension_info()
    if args.json:  # one JSON document, so that json.load reads it (it used to be two or three in a row)
        document = {**facts, "extension": extension}
        if args.preset:
            document["preset"] = PRESETS[args.preset]().to_dict()
        print(json.dumps(document, indent=2))
        return 0
    print("\n".join(f"{k}: {v}" for k, v in facts.items()))
    print(format_info(extension))
    if args.preset:
        print(PRESETS[args.preset]().to_json())
    return 0
