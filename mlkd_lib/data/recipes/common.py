"""What the corpus recipes and sources share: checking the tree, listing its wavs, reading durations, the sorted
manifest; for the sources that name labels in words or keep audio inside them (Hugging Face datasets, audformat,
EmoBox): their labels as the study's codes, and audio written out once beside the manifest."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pandas as pd
import soundfile as sf
from tqdm.auto import tqdm

from ...names import LABEL_CODES, label_merges
from ..audio import AudioError, audio_files, duration_s
from ..folds import split_part
from ..manifest import MANIFEST_COLUMNS, OPTIONAL_COLUMNS, UNKNOWN_SPEAKER, write_manifest

WAV = (".wav",)  # a corpus's audio (CREMA-D's .flv, RAVDESS's .mp4 beside it are not; audio.audio_files)
SHOWN = 5  # names a warning quotes; the count says how many there are in all
UNREADABLE = "empty (0 frames) or unreadable audio files"
DUPLICATE = "files with an utt_id seen before"
# a label a source writes as a word (any case), as the study's code; every code stands for itself too
LABEL_WORDS = {**{code: code for code in LABEL_CODES}, **{word: code for code, word in LABEL_CODES.items()},
               "happiness": "hap", "anger": "ang", "sadness": "sad", "fear": "fea", "disgust": "dis",
               "surprise": "sur", "boredom": "bor"}
LEFT_OUT = "-"  # --label-map RAW:- leaves the label's utterances out


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
    columns = MANIFEST_COLUMNS + [c for c in OPTIONAL_COLUMNS if c in kept[0]]
    df = pd.DataFrame(kept, columns=columns)
    df.attrs["left_out"] = left_out
    if out is not None:
        write_manifest(df, out)
    return df


def label_codes(raw: pd.Series, label_map: list[str], where: str) -> pd.Series:
    """``raw`` labels as the study's codes: through ``label_map`` first (``RAW:CODE``; ``RAW:-`` leaves RAW out, as
    ""), else a code or a word for one in any case (``Angry``, ``happiness``, ``neu``). Labels neither mapped nor
    known are one error that lists them, with their counts."""
    merges = label_merges(label_map)
    bad = [f"{raw}:{code}" for raw, code in merges.items() if code not in LABEL_CODES and code != LEFT_OUT]
    if bad:
        raise ValueError(f"--label-map {', '.join(bad)}: CODE must be one of {' '.join(LABEL_CODES)} "
                         f"(or {LEFT_OUT} to leave the label out)")
    text = raw.astype(str).str.strip()
    codes = text.map(lambda t: merges.get(t, LABEL_WORDS.get(t.lower())))
    unknown = text[codes.isna()].value_counts()
    if len(unknown):
        listed = ", ".join(f"{label!r} ({n})" for label, n in unknown.items())
        raise ValueError(f"{where}: labels {listed} are not emotion codes ({' '.join(LABEL_CODES)}) nor words for "
                         f"one; map them with --label-map RAW:CODE (RAW:{LEFT_OUT} leaves them out)")
    return codes.replace(LEFT_OUT, "")


def audio_folder(out: str | Path) -> Path:
    """Where a source writes audio it holds inside (encoded bytes, segments cut from longer files): beside the
    manifest, named after it (``data/hf.csv`` → ``data/hf-audio/``)."""
    out = Path(out).absolute()
    return out.with_name(f"{out.stem}-audio")


def write_once(path: Path, data: bytes) -> Path:
    """``data`` into ``path``, whole or not at all; a file already there with as many bytes is kept (a rerun
    writes nothing)."""
    if path.is_file() and path.stat().st_size == len(data):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return path


def cut_segment(source: Path, start_s: float, end_s: float | None, target: Path) -> Path:
    """The segment [start_s, end_s) of ``source`` (to its end where ``end_s`` is None) as a file of its own, at the
    source's rate, channels and sample format (float where WAV cannot hold that format); made once, again where
    the source is newer than the cut."""
    if target.is_file() and target.stat().st_mtime_ns >= source.stat().st_mtime_ns:
        return target
    info = sf.info(str(source))
    start = round(start_s * info.samplerate)
    stop = None if end_s is None else round(end_s * info.samplerate)
    x, rate = sf.read(str(source), start=start, stop=stop, dtype="float32", always_2d=True)
    subtype = info.subtype if sf.check_format("WAV", info.subtype) else "FLOAT"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp.wav")
    sf.write(str(tmp), x, rate, subtype=subtype)
    os.replace(tmp, target)
    return target


def kept_splits(rows: pd.DataFrame, where: str) -> pd.DataFrame:
    """``rows`` (with ``speaker`` and ``split``) keeping the source's own splits where they can serve
    ``protocol=split``: every value train, development or test* (else one error naming the others), and no known
    speaker in two of them (else the column is dropped with a warning: a speaker would be tested on after training;
    the speaker protocols still apply). No split named: no column."""
    names = sorted(set(rows["split"]))
    if names == [""]:
        return rows.drop(columns="split")
    odd = []
    for name in names:
        try:
            split_part(name)
        except ValueError:
            odd.append(repr(name))
    if odd:
        raise ValueError(f"{where}: splits {', '.join(odd)} are none of train, development (dev, validation) or "
                         f"test*; take the others with --splits (the splits there: {', '.join(map(repr, names))})")
    known = rows[~rows["speaker"].str.startswith(UNKNOWN_SPEAKER)]
    parts = known.assign(part=known["split"].map(split_part)).groupby("speaker")["part"].nunique()
    shared = sorted(parts.index[parts > 1])
    if shared:
        warnings.warn(f"{where}: {len(shared)} speakers are in two of its splits ({shortlist(shared)}): the splits "
                      f"are not kept (protocol=split would test a speaker it trained on)", stacklevel=3)
        return rows.drop(columns="split")
    return rows
