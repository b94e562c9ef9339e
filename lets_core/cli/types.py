"""Value types of the ``lets`` flags: the ``type=`` callables given to argparse.

Each raises ArgumentTypeError with a message naming the bad value and what is allowed, so argparse
prints "lets CMD: error: argument --flag: ..." and exits 2. The same functions check the values of
a --config file (see config_file.config_argv), so a file cannot smuggle in a value the flag would
refuse.

    >>> size_list("2x4, H3xL6")
    [(2, 4), (3, 6)]
    >>> val_size("0.1"), val_size("500")
    (0.1, 500)
"""

from __future__ import annotations

import argparse
import math
from typing import Callable

from ..train.config import MAX_SEED


def _number(text: str, kind: type) -> int | float:
    try:
        return kind(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None


def positive_int(text: str) -> int:
    value = _number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def count(text: str) -> int:
    value = _number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text!r}")
    return value


def seed(text: str) -> int:
    value = _number(text, int)
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be an integer in [0, 2**63 - 1], got {text!r}")
    return value


def finite_float(text: str) -> float:
    # float() accepts "nan" and "inf"; no option of lets means either, and both would train
    # (or evaluate) silently to NaN.
    value = _number(text, float)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def rate(text: str) -> float:
    """A drop-path (stochastic depth) rate: a probability below 1."""
    value = _number(text, float)
    if not (math.isfinite(value) and 0 <= value < 1):
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1), got {text!r}")
    return value


def val_size(text: str) -> float | int:
    """One flag for both forms: a fraction in [0, 1), or a whole count of images from 1 up."""
    value = _number(text, float)
    if math.isfinite(value) and 0 <= value < 1:
        return value
    if math.isfinite(value) and value >= 1 and value.is_integer():
        return int(value)
    raise argparse.ArgumentTypeError(f"must be a fraction in [0, 1) or a whole count >= 1, got {text!r}")


def _items(text: str, parse_item: Callable[[str], object], form: str) -> list:
    values = []
    for item in (item.strip() for item in str(text).split(",")):
        try:
            values.append(parse_item(item))
        except ValueError:
            raise argparse.ArgumentTypeError(f"item {item!r} of {text!r} is not valid; expected {form}") from None
    return values


def _index(item: str) -> int:
    if not item.isdigit():  # digits only: no sign, no spaces, no empty item
        raise ValueError(item)
    return int(item)


def _positive(item: str) -> int:
    if _index(item) < 1:
        raise ValueError(item)
    return int(item)


def _comma_list(function: Callable[[str], list]) -> Callable[[str], list]:
    # A --config file may give these flags as a JSON list (see config_file.config_argv).
    function.comma_list = True  # type: ignore[attr-defined]
    return function


@_comma_list
def int_list(text: str) -> list[int]:
    """Comma-separated positive integers (epoch budgets)."""
    return _items(text, _positive, "comma-separated positive integers, e.g. 1,2,4")


def _positive_float(item: str) -> float:
    value = float(item)  # a ValueError for what is not a number
    if not (math.isfinite(value) and value > 0):
        raise ValueError(item)
    return value


@_comma_list
def lr_list(text: str) -> list[float]:
    """Comma-separated positive finite numbers (a learning rate, or a grid of them)."""
    return _items(text, _positive_float, "comma-separated positive numbers, e.g. 1.6e-2,4e-3")


@_comma_list
def count_list(text: str) -> list[int]:
    """Comma-separated integers from 0 (tuning lengths, where 0 means "evaluate directly")."""
    return _items(text, _index, "comma-separated integers >= 0, e.g. 0,1,2,4")


@_comma_list
def index_list(text: str) -> list[int]:
    """Comma-separated indices from 0 (a depth plan: the Aux layer of each Des layer)."""
    return _items(text, _index, "comma-separated Aux layer indices, e.g. 0,2,4,6")


@_comma_list
def size_list(text: str) -> list[tuple[int, int]]:
    """Des-Net sizes HEADSxDEPTH, comma-separated: "2x4,3x6" -> [(2, 4), (3, 6)]."""
    def size(item: str) -> tuple[int, int]:
        heads, sep, depth = item.lower().partition("x")
        if not sep:
            raise ValueError(item)
        # "H3xL6" too: the Des-H3-L6 naming of the reports.
        return _positive(heads.strip().removeprefix("h")), _positive(depth.strip().removeprefix("l"))

    return _items(text, size, "comma-separated HEADSxDEPTH sizes of positive integers, e.g. 2x4,3x6")


def name_list(allowed: tuple[str, ...]) -> Callable[[str], list[str]]:
    """A type of comma-separated names among ``allowed``."""
    def name(item: str) -> str:
        if item not in allowed:
            raise ValueError(item)
        return item

    @_comma_list
    def names(text: str) -> list[str]:
        return _items(text, name, f"comma-separated names among {list(allowed)}")

    return names
