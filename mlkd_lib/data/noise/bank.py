"""The noise bank: a study's noise types as mono 16 kHz wavs, written once from a collection or the synthetic
noises, and each type split into the part the students train on and the part the test conditions draw from.

A type is one recording (an array) or several (a list of arrays, in the sorted order of their source paths); the
bank keeps them apart on disk: ``<bank>/<type>.wav`` or ``<bank>/<type>/000.wav, 001.wav, ...``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..audio import SAMPLE_RATE, read_audio, write_audio
from .collection import _few, collection_types, read_noise_file
from .synthetic import synthetic_bank


def recordings(noise: np.ndarray | Sequence[np.ndarray]) -> list[np.ndarray]:
    """A type's recordings as a list, whether the bank holds one array or several."""
    return list(noise) if isinstance(noise, (list, tuple)) else [noise]



def _clear_type(out: Path, kind: str) -> None:
    """Remove an earlier bank's copy of ``kind`` (either form), and nothing that the bank did not write."""
    (out / f"{kind}.wav").unlink(missing_ok=True)
    folder = out / kind
    if folder.is_dir():
        for p in folder.glob("*.wav"):
            if p.stem.isdigit():
                p.unlink()
        if not any(folder.iterdir()):
            folder.rmdir()


def write_noise_bank(out_dir: str | Path, source: str | Path | None = None, seed: int = 0, seconds: float = 30.0,
                     types: Sequence[str] | None = None) -> dict[str, Path]:
    """Write the bank of ``types`` (all for None) from the collection ``source``, or from the synthetic
    noises (``seed``, ``seconds``) without one. Returns each type's file (one recording) or folder (several).
    A type is read and written one file at a time, so a large collection never sits in memory whole."""
    out = Path(out_dir)
    if not source:
        written = {}
        for kind, x in synthetic_bank(seconds, seed, types).items():
            _clear_type(out, kind)
            written[kind] = write_audio(out / f"{kind}.wav", x, subtype="FLOAT")
        return written
    files = collection_types(source, types)
    inside = [p for ps in files.values() for p in ps if p.resolve().is_relative_to(out.resolve())]
    if inside:
        raise ValueError(f"noise bank {out} would overwrite the files of its own collection "
                         f"({_few([str(p) for p in inside])}): write the bank elsewhere")
    written = {}
    for kind, paths in files.items():
        _clear_type(out, kind)
        if len(paths) == 1:
            written[kind] = write_audio(out / f"{kind}.wav", read_noise_file(paths[0]), subtype="FLOAT")
            continue
        width = max(3, len(str(len(paths) - 1)))
        for i, p in enumerate(paths):
            write_audio(out / kind / f"{i:0{width}d}.wav", read_noise_file(p), subtype="FLOAT")
        written[kind] = out / kind
    return written


def split_noise(bank: dict, train_fraction: float) -> tuple[dict, dict]:
    """Each type split in two so that no test segment was heard in training. A type with several recordings
    splits by file: the first ``round(train_fraction * n)`` of its sorted files train (at least one, and one
    is left for the test), the rest test; a file is never cut, since its parts would sound alike. A type with
    one recording is cut inside it: its first ``train_fraction`` for training (the students' training and
    validation noise), the rest for the test conditions. ``train_fraction`` 1: no split, both draw from all."""
    if not 0.0 < train_fraction <= 1.0:
        raise ValueError(f"noise train_fraction must lie in (0, 1], got {train_fraction}")
    if train_fraction == 1.0:
        return dict(bank), dict(bank)
    train, test, short = {}, {}, []
    for k, noise in bank.items():
        xs = recordings(noise)
        if len(xs) > 1:
            cut = min(max(int(round(train_fraction * len(xs))), 1), len(xs) - 1)
            train[k], test[k] = xs[:cut], xs[cut:]
            continue
        x = xs[0]
        cut = int(round(train_fraction * len(x)))
        if min(cut, len(x) - cut) < SAMPLE_RATE:
            short.append(k)
        train[k], test[k] = x[:cut], x[cut:]
    if short:
        raise ValueError(f"noise recordings {short} are too short to cut at {train_fraction:g}: "
                         f"each part needs at least a second")
    return train, test


def load_noise_bank(bank_dir: str | Path, types: Sequence[str] | None = None) -> dict[str, np.ndarray | list]:
    """Read a bank folder: ``<type>.wav`` is a type's one recording, the wavs of a folder ``<type>/`` (sorted
    by name) its several. Any folder of 16 kHz wavs serves (noise type = file stem)."""
    bank_dir = Path(bank_dir)
    if not bank_dir.is_dir():
        raise FileNotFoundError(f"noise bank folder not found: {bank_dir} (make one with `mlkd data noise`)")
    files = {p.stem: [p] for p in sorted(bank_dir.glob("*.wav"))}
    both = []
    for folder in sorted(p for p in bank_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        wavs = sorted(folder.glob("*.wav"))
        if wavs and folder.name in files:
            both.append(folder.name)
        elif wavs:
            files[folder.name] = wavs
    wanted = list(types) if types else sorted(files)
    lacking = [t for t in wanted if t not in files]
    if lacking or not wanted:
        raise FileNotFoundError(f"{bank_dir}: no wav for noise types {lacking or 'any'} "
                                f"(found {sorted(files) or 'none'})")
    clash = [t for t in wanted if t in both]
    if clash:
        raise ValueError(f"{bank_dir}: noise types {clash} are both a <type>.wav and a <type>/ folder: remove one")
    return {t: read_audio(files[t][0]) if len(files[t]) == 1 else [read_audio(p) for p in files[t]] for t in wanted}

