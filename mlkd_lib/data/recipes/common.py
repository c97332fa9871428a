"""What the corpus recipes share: checking the tree, listing its wavs, reading durations, the sorted manifest."""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from ..audio import AudioError, audio_files, duration_s
from ..manifest import MANIFEST_COLUMNS, write_manifest

WAV = (".wav",)  # a corpus's audio (CREMA-D's .flv, RAVDESS's .mp4 beside it are not; audio.audio_files)
SHOWN = 5  # names a warning quotes; the count says how many there are in all
UNREADABLE = "empty (0 frames) or unreadable audio files"
DUPLICATE = "files with an utt_id seen before"


def not_the_corpus(root: Path, corpus: str, missing: str) -> FileNotFoundError:
    """The one error for a tree that is not the corpus: it names the root and what it lacks."""
    return FileNotFoundError(f"{root} is not a {corpus} folder: no {missing} inside")


def corpus_root(root: str | Path, corpus: str, *needed: str) -> Path:
    """``root`` as a Path, checked to hold each of ``needed`` (paths inside it), so that a wrong ``--root``
    fails at once and says why, not later as an empty or odd manifest."""
    root = Path(root).expanduser().absolute()  # absolute paths, symlinks kept as named
    if not root.is_dir():
        raise FileNotFoundError(f"{corpus} root not found: {root}")
    for inside in needed:
        if not (root / inside).exists():
            raise not_the_corpus(root, corpus, inside)
    return root


def named_wavs(folder: Path, name, labels: dict, odd: list[str], relative_to: Path | None = None):
    """(wav, match) for each wav of ``folder`` whose stem ``name`` (a compiled pattern with an ``emotion`` group)
    matches with a known label; the names of the others go to ``odd`` (left out, with a warning)."""
    for wav in audio_files(folder, WAV, recursive=False):
        m = name.fullmatch(wav.stem)
        if m and m["emotion"] in labels:
            yield wav, m
        else:
            odd.append(str(wav.relative_to(relative_to)) if relative_to else wav.name)


def shortlist(names: list[str]) -> str:
    return ", ".join(names[:SHOWN]) + (", ..." if len(names) > SHOWN else "")


def finish(rows: list[dict], root: Path, corpus: str, out: str | Path | None = None, progress: bool = True,
           skipped: dict[str, list[str]] | None = None, not_used: dict[str, int] | None = None) -> pd.DataFrame:
    """Rows (each without ``duration_s``) → the manifest sorted by utt_id, written to ``out`` when given.

    Every file's duration comes from its header; an empty clip or a damaged file is left out, not fatal, since
    real copies of corpora carry a few (CREMA-D's 1076_MTI_SAD_XX.wav has no audio). ``skipped`` (reason →
    file names) gets one warning per reason naming the files; ``not_used`` (reason → count) is what the corpus
    defines as outside the study (RAVDESS's song, MSP-Podcast's O and X), counted without a warning. Both
    counts are in ``df.attrs["left_out"]``."""
    skipped = {k: list(v) for k, v in (skipped or {}).items()}
    kept, seen, bad, dup = [], {}, [], []
    for row in tqdm(sorted(rows, key=lambda r: r["utt_id"]), desc=corpus, unit="file", disable=not progress):
        if row["utt_id"] in seen:
            dup.append(f"{row['path']} (as {seen[row['utt_id']]})")
            continue
        try:
            seconds = duration_s(row["path"])
        except AudioError:
            bad.append(f"{row['path']} (not readable audio)")
            continue
        if seconds <= 0:
            bad.append(f"{row['path']} (0 frames)")
            continue
        seen[row["utt_id"]] = row["path"]
        kept.append(dict(row, duration_s=round(seconds, 4)))
    skipped[UNREADABLE], skipped[DUPLICATE] = bad, dup
    for reason, names in skipped.items():
        if names:
            warnings.warn(f"{corpus}: {len(names)} {reason} left out: {shortlist(names)}", stacklevel=3)
    left_out = {k: len(v) for k, v in skipped.items() if v} | {k: n for k, n in (not_used or {}).items() if n}
    if not kept:
        told = ", ".join(f"{n} {k}" for k, n in left_out.items())
        raise ValueError(f"{root}: no usable {corpus} utterance found" + (f" (left out: {told})" if told else ""))
    columns = MANIFEST_COLUMNS + (["split"] if "split" in kept[0] else [])
    df = pd.DataFrame(kept, columns=columns)
    df.attrs["left_out"] = left_out
    if out is not None:
        write_manifest(df, out)
    return df
