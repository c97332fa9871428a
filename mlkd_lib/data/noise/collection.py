"""Noise collections as they ship: a folder or a CSV, and what they hold by type.

In a folder each audio file directly inside is a type named by its stem (NOISEX-92: 19.98 kHz ``.wav`` or SPIB
``.mat``; its ``factory1`` serves as type ``factory``) and each subfolder a type whose audio files are found
recursively below it (MUSAN's ``noise/free-sound/``, DEMAND's ``DKITCHEN/ch01.wav``); a CSV has columns
``path,type`` (paths relative to its folder). Every problem is found from names and headers alone, at once.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import scipy.io
import soundfile as sf

from ...names import CLEAN
from ..audio import SAMPLE_RATE, AudioError, audio_files, check_signal, read_audio, resample, to_mono
from .synthetic import GENERATORS, UNSEEN_TYPES

NOISEX_RATE = 19_980
# NOISEX file stems that serve as each type (factory1 is the NOISEX factory floor noise)
NOISEX_STEMS = {"babble": "babble", "f16": "f16", "factory": "factory1", "hfchannel": "hfchannel",
                "volvo": "volvo"}
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mat")  # .mat: SPIB's NOISEX-92 layout only
LISTED = 5  # files named in one problem; the rest are counted


def read_noise_file(path: Path) -> np.ndarray:
    """A collection's file as 16 kHz mono float32: audio at any rate, or a SPIB ``.mat`` (NOISEX-92)
    whose variable is named after the file (``babble.mat`` holds ``babble``) at 19.98 kHz."""
    path = Path(path)
    if path.suffix.lower() == ".mat":
        try:
            mat = scipy.io.loadmat(str(path))
        except Exception as err:  # scipy raises several kinds for a bad file
            raise AudioError(f"{path}: not a readable .mat file ({err})") from err
        arrays = {k: v for k, v in mat.items() if not k.startswith("__")}
        x = arrays.get(path.stem, next(iter(arrays.values()), None))
        if x is None:
            raise AudioError(f"{path}: holds no variable")
        x = to_mono(np.asarray(x, dtype=np.float64).squeeze(), str(path))
        # SPIB stores 16-bit sample values as doubles
        x = x / 32768.0 if np.max(np.abs(x)) > 1.0 else x
        return resample(check_signal(x.astype(np.float32), str(path)), NOISEX_RATE)
    return read_audio(path, SAMPLE_RATE, resample_to=True)




def _few(items: list[str]) -> str:
    more = len(items) - LISTED
    return ", ".join(items[:LISTED]) + (f" and {more} more" if more > 0 else "")


def _scan_folder(folder: Path) -> tuple[dict[str, list[Path]], dict[str, list[str]], list[str]]:
    """Types by name: a file directly in ``folder`` (its stem), a subfolder (its audio files, recursively).
    Text files (MUSAN's README, ANNOTATIONS) and hidden entries are not audio and are skipped."""
    found: dict[str, list[Path]] = {}
    entry: dict[str, str] = {}
    clashes: dict[str, list[str]] = {}
    for p in sorted(folder.iterdir()):
        if p.name.startswith("."):
            continue
        if p.is_dir():
            kind, files = p.name, audio_files(p, AUDIO_SUFFIXES)
        elif p.suffix.lower() in AUDIO_SUFFIXES and p.is_file():
            kind, files = p.stem, [p]
        else:
            continue
        if kind in found:
            clashes.setdefault(kind, []).append(f"{folder}: {entry[kind]} and {p.name} both hold noise type "
                                                f"{kind!r}: keep one")
            continue
        found[kind], entry[kind] = files, p.name
    problems = [] if any(found.values()) else [
        f"noise collection {folder} holds no audio files ({' '.join(AUDIO_SUFFIXES)}), directly or in subfolders"]
    return dict(sorted(found.items())), clashes, problems


def _scan_csv(path: Path) -> tuple[dict[str, list[Path]], dict[str, list[str]], list[str]]:
    """Types by the ``type`` column; ``path`` relative to the CSV's folder (or absolute)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            rows, columns = list(reader), [c.strip() for c in reader.fieldnames or []]
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        return {}, {}, [f"noise list {path}: not a readable CSV ({err})"]
    lacking = [c for c in ("path", "type") if c not in columns]
    if lacking:
        return {}, {}, [f"noise list {path}: lacks the column(s) {', '.join(lacking)} (it has "
                        f"{', '.join(columns) or 'none'}; wanted path,type)"]
    found: dict[str, set[Path]] = {}
    missing: dict[str, list[str]] = {}
    blank = []
    for line, row in enumerate(rows, start=2):  # the header is line 1
        row = {(k or "").strip(): (v or "").strip() for k, v in row.items() if isinstance(v, str)}
        rel, kind = row.get("path", ""), row.get("type", "")
        if not rel or not kind:
            blank.append(str(line))
            continue
        file = Path(rel).expanduser()
        file = file if file.is_absolute() else path.parent / file
        found.setdefault(kind, set())
        if not file.is_file():
            missing.setdefault(kind, []).append(rel)
        elif file.suffix.lower() not in AUDIO_SUFFIXES:
            missing.setdefault(kind, []).append(f"{rel} (not {'/'.join(AUDIO_SUFFIXES)})")
        else:
            found[kind].add(file)
    problems = [f"noise list {path}: line(s) {_few(blank)} lack a path or a type"] if blank else []
    if not rows:
        problems.append(f"noise list {path}: lists no files")
    per_type = {k: [f"noise list {path}: type {k!r} names missing or non-audio files: {_few(v)}"]
                for k, v in missing.items()}
    return {k: sorted(v) for k, v in sorted(found.items())}, per_type, problems


def _named(found: dict, name: str) -> str | None:
    """The type called ``name``, or the one type that differs from it only in case (``BABBLE.MAT``)."""
    same = [k for k in found if k.lower() == name.lower()]
    return name if name in found else same[0] if len(same) == 1 else None


def _collection(source: str | Path, types: Sequence[str] | None) -> tuple[dict[str, list[Path]], list[str]]:
    """The requested types' files (all types for None) and every problem found by names alone."""
    source = Path(source).expanduser()
    if source.is_dir():
        found, per_type, problems = _scan_folder(source)
    elif source.is_file() and source.suffix.lower() == ".csv":
        found, per_type, problems = _scan_csv(source)
    elif source.exists():
        return {}, [f"noise collection {source}: neither a folder nor a .csv list (path,type)"]
    else:
        return {}, [f"noise collection not found: {source}"]
    chosen, unknown = {}, []
    for t in (list(found) if types is None else types):
        # NOISEX's factory floor noise is the file factory1: it serves as type 'factory' unless one is so named
        key = _named(found, t) or (_named(found, NOISEX_STEMS[t]) if t in NOISEX_STEMS and source.is_dir() else None)
        if key is None:
            unknown.append(t)
            continue
        chosen[t] = found[key]
        problems += per_type.get(key, [])
        if t == CLEAN or "/" in t or "\\" in t or t.startswith("."):
            problems.append(f"noise collection {source}: {t!r} cannot name a noise type (it is the clean "
                            "condition's name or not a file name): rename it")
        elif not found[key] and key not in per_type:
            problems.append(f"noise collection {source}: type {key!r} has no audio files "
                            f"({' '.join(AUDIO_SUFFIXES)})")
    if unknown and (found or not problems):  # an unreadable or empty collection is its own problem
        wanted = [f"{t!r} ({NOISEX_STEMS.get(t, t)}.wav or .mat/.flac/.ogg, or a folder {t}/)" if source.is_dir()
                  else repr(t) for t in unknown]
        problems.append(f"noise collection {source} has no noise type {', '.join(wanted)}; "
                        f"its types: {', '.join(found) or 'none'}")
    return chosen, problems


def collection_type_names(source: str | Path, trained: Sequence[str]) -> list[str] | None:
    """The types of ``source`` that none of ``trained`` names (nor serves: NOISEX's factory1 serves as factory),
    in the collection's order; for the synthetic noises (``source`` empty), the test-only ones. None when the
    collection cannot be read (its own problem)."""
    if not source:
        return [t for t in UNSEEN_TYPES if t not in trained]
    source = Path(source).expanduser()
    if source.is_dir():
        found = _scan_folder(source)[0]
    elif source.is_file() and source.suffix.lower() == ".csv":
        found = _scan_csv(source)[0]
    else:
        return None
    serving = {_named(found, t) or (_named(found, NOISEX_STEMS[t]) if t in NOISEX_STEMS and source.is_dir() else None)
               for t in trained}
    return [t for t, files in found.items() if t not in serving and t not in trained and files]


def collection_types(source: str | Path, types: Sequence[str] | None = None) -> dict[str, list[Path]]:
    """The files of each of ``types`` (all the collection's types for None), by names alone: every problem
    at once in one error (FileNotFoundError when the collection itself is not there)."""
    chosen, problems = _collection(source, types)
    if problems:
        error = FileNotFoundError if not Path(source).expanduser().exists() else ValueError
        raise error("; ".join(problems))
    return chosen


def _header_problems(files: list[Path]) -> list[str]:
    """Files whose header does not read as audio with samples (nothing is decoded or resampled)."""
    bad = []
    for p in files:
        try:
            if p.suffix.lower() == ".mat":
                ok = bool(scipy.io.whosmat(str(p)))
            else:
                ok = sf.info(str(p)).frames > 0
        except Exception:  # soundfile and scipy raise several kinds for a bad file
            ok = False
        if not ok:
            bad.append(str(p))
    return [f"unreadable or empty noise files: {_few(bad)}"] if bad else []


def noise_problems(source: str, types: Sequence[str]) -> list[str]:
    """Everything that would stop the bank of ``types`` being made from ``source``, all at once, from file
    names and headers alone (fast: nothing is decoded). An empty ``source`` means the synthetic noises."""
    if not source:
        unknown = [t for t in types if t not in GENERATORS]
        return [f"no synthetic noise for noise_types {', '.join(map(repr, unknown))} (the synthetic ones: "
                f"{', '.join(GENERATORS)}); set noise_dir to a noise collection that has them"] if unknown else []
    chosen, problems = _collection(source, types)
    return problems + _header_problems([p for files in chosen.values() for p in files])


