"""Typed, self-documenting keys for a settings dataclass: each field says what it is for and how
its value is checked (``key``); values from the command line or a notebook become the annotated
type (``coerce``: ``list[float]``, ``Literal[...]`` ...), and every error names its key."""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, get_args, get_origin


def key(default: Any, help: str, check: Callable[[Any], bool] | None = None, rule: str = ""):
    """A config field: its default, what it is for (``mlkd study --list-keys`` prints it) and an
    optional value check (``check(value)`` false: the error says ``rule``)."""
    kind = {"default_factory": lambda: list(default)} if isinstance(default, list) else {"default": default}
    return dataclasses.field(metadata={"help": help, "check": check, "rule": rule}, **kind)


positive = (lambda v: v > 0, "must be positive")
non_negative = (lambda v: v >= 0, "must be ≥ 0")
fraction = (lambda v: 0.0 <= v <= 1.0, "must lie in [0, 1]")


def _element(name: str, value: Any, kind: Any) -> Any:
    """One value as ``kind`` (bool, int, float, str or a Literal); raises naming the key."""
    if get_origin(kind) is Literal:
        if value in get_args(kind):
            return value
        raise ValueError(f"config {name}={value!r}: must be one of {', '.join(map(repr, get_args(kind)))}")
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
    elif kind in (int, float) and not isinstance(value, bool):
        if isinstance(value, (int, float)) and (kind is float or isinstance(value, int)):
            return kind(value)
        if isinstance(value, str):
            try:
                return kind(value)
            except ValueError:
                pass
    elif kind is str and isinstance(value, (str, Path)):
        return str(value)
    raise TypeError(f"config {name}={value!r}: expected {getattr(kind, '__name__', kind)}")


def coerce(name: str, value: Any, kind: Any) -> Any:
    """``value`` as the annotated type ``kind`` of key ``name``: lists from a list or from
    "a,b,c"; ints pass for floats. Every error names the key."""
    if get_origin(kind) is list:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"config {name}={value!r}: expected a list (comma-separated on the command line)")
        return [_element(name, v, get_args(kind)[0]) for v in value]
    return _element(name, value, kind)


def validate(cfg):
    """Every key's own check, in one place."""
    for f in dataclasses.fields(cfg):
        check, value = f.metadata.get("check"), getattr(cfg, f.name)
        if check is not None and not check(value):
            raise ValueError(f"config {f.name}={value!r}: {f.metadata['rule']}")
    return cfg


def type_name(kind: Any) -> str:
    if get_origin(kind) is Literal:
        return "|".join(get_args(kind))
    if get_origin(kind) is list:
        return f"list[{get_args(kind)[0].__name__}]"
    return kind.__name__


def parse_set(pairs: list[str]) -> dict[str, str]:
    """``["key=value", ...]`` from the command line."""
    out = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise ValueError(f"--set wants key=value, got {pair!r}")
        key, value = pair.split("=", 1)
        out[key.strip()] = value.strip()
    return out


# --- the command line's numbers

def number(kind, low=None, strict=False, high=None):
    """An argparse type: ``kind`` (int or float), finite, at least ``low`` (above it with ``strict``), at most
    ``high``."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
        if not math.isfinite(value) or (low is not None and (value <= low if strict else value < low)):
            raise argparse.ArgumentTypeError(f"{text!r} must be {'above' if strict else 'at least'} {low}"
                                             if low is not None else f"{text!r} must be finite")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"{text!r} must be at most {high}")
        return value
    return parse


POSITIVE, COUNT, NUMBER = number(int, 1), number(int, 0), number(float)


# --- the command line's paths: a shell user means them relative to the current folder

def here(text: str) -> str:
    """An argparse type: a path typed on the command line, made absolute against the current folder."""
    return str(Path(text).expanduser().absolute())


def model_here(text: str) -> str:
    """An argparse type for ``--model``: a folder relative to the current folder where there is one, else as typed
    (base, tiny, micro, or a Hugging Face id in the local cache)."""
    return here(text) if Path(text).expanduser().exists() else text


class Parser(argparse.ArgumentParser):
    """The command line's parser: a usage mistake is one line naming the command and the bad value (exit 2),
    like every other error."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")
