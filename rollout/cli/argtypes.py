"""argparse types shared by the commands: a bad value is one line naming the flag and what it takes
(argparse adds the flag's name and exits 2)."""

from __future__ import annotations

import argparse
import math

from rollout.api.durations import DurationError, parse_duration


def duration(text: str) -> float:
    try:
        return parse_duration(text)
    except DurationError as err:
        raise argparse.ArgumentTypeError(str(err)) from err


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return int(text)


def port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 0 to 65535 (0: any free one), got {text!r}")
    return int(text)


def address(text: str) -> tuple[str, int]:
    host, sep, number = text.rpartition(":")
    if not sep or not number.isdigit() or int(number) > 65535:
        raise argparse.ArgumentTypeError(
            f"expected HOST:PORT with a port up to 65535 (e.g. 0.0.0.0:8080), got {text!r}"
        )
    return host.strip("[]") or "0.0.0.0", int(number)


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def positive_float(text: str) -> float:
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number above 0, got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number of at least 0, got {text!r}")
    return value


def ratio(text: str) -> float:
    value = _number(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got {text!r}")
    return value
