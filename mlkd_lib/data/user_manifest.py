"""A researcher's own manifest (``corpus=manifest``): any corpus as one table, checked whole before anything
trains, then completed into the study's manifest (``data/manifest.py``).

The table is CSV (``.csv``, ``.tsv``) or JSON Lines (``.jsonl``, ``.json``), one utterance a row: ``path, emotion,
speaker`` required; ``utt_id, session, gender, duration_s, split, fold, confidence`` optional. Paths are taken
against the table's folder; ``utt_id`` defaults to the file's stem (its path where stems repeat). A speaker written
``Unknown`` (MSP-Podcast's word for it) is no one speaker: each such utterance gets a speaker id of its own, so that
it never joins a fold's training as somebody's voice it also tests on.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import soundfile as sf
from tqdm.auto import tqdm

from .folds import split_part
from .manifest import MANIFEST_COLUMNS, OPTIONAL_COLUMNS, UNKNOWN_SPEAKER, speaker_ids

REQUIRED = ["path", "emotion", "speaker"]
OPTIONAL = ["utt_id", "session", "gender", "duration_s", *OPTIONAL_COLUMNS]
SHOWN = 5  # rows named per problem; the count says how many more


def read_table(path: str | Path) -> pd.DataFrame:
    """The table as text columns, in file order (``row`` below is its line number in the file)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"manifest not found: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix in (".jsonl", ".json"):
            df = pd.read_json(path, lines=True, dtype=False)
            df = df.astype({c: str for c in df.columns if c != "duration_s"}).replace({"None": "", "nan": ""})
        elif suffix in (".csv", ".tsv"):
            df = pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",", dtype=str, keep_default_na=False)
        else:
            raise ValueError(f"manifest {path}: expected a .csv, .tsv or .jsonl file, got {suffix or 'no suffix'}")
    except (ValueError, pd.errors.ParserError) as err:
        raise ValueError(f"manifest {path}: not a readable table ({str(err).splitlines()[0][:160]})") from None
    return df.rename(columns=lambda c: str(c).strip())


def _line(path: Path, index: int) -> int:
    """The file's line number of row ``index`` (a CSV has its header line first)."""
    return index + (1 if path.suffix.lower() in (".jsonl", ".json") else 2)


def _rows(path: Path, index, what: str) -> str:
    index = list(index)
    shown = ", ".join(f"line {_line(path, i)}" for i in index[:SHOWN])
    more = f" and {len(index) - SHOWN} more" if len(index) > SHOWN else ""
    return f"manifest {path}: {what} ({shown}{more})"


def resolved_paths(df: pd.DataFrame, path: Path) -> pd.Series:
    return df["path"].map(lambda p: str(Path(p) if Path(p).is_absolute() else path.parent / p))


def utterance_ids(df: pd.DataFrame, audio: pd.Series) -> pd.Series:
    """The ``utt_id`` column where given; else the file's stem, or, where two files share a stem (``ann/anger_0.wav``,
    ``bob/anger_0.wav``), its path as the table writes it, without the suffix and with ``-`` for ``/``."""
    given = df["utt_id"] if "utt_id" in df.columns else pd.Series("", index=df.index)
    stems = audio.map(lambda p: Path(p).stem)
    written = df["path"].map(lambda p: str(Path(p.strip()).with_suffix("")).strip("/").replace("/", "-"))
    return given.where(given.str.strip() != "", stems.where(~stems.duplicated(keep=False), written))


def _audio_frames(path: str) -> int | None:
    """Frames of a readable audio file; None for a missing or unreadable one."""
    try:
        return sf.info(path).frames
    except (RuntimeError, sf.LibsndfileError, OSError):
        return None


def manifest_problems(path: str | Path, progress: bool = True) -> list[str]:
    """Every problem of the table at once, each naming its lines: missing columns, empty values, missing or
    unreadable audio, duplicate ids, split values it does not know, a known speaker in two splits."""
    path = Path(path)
    try:
        df = read_table(path)
    except (OSError, ValueError) as err:
        return [str(err)]
    lacking = [c for c in REQUIRED if c not in df.columns]
    if lacking:
        return [f"manifest {path}: lacks the column(s) {', '.join(lacking)} (required: {', '.join(REQUIRED)}; "
                f"optional: {', '.join(OPTIONAL)}); it has {', '.join(map(str, df.columns)) or 'none'}"]
    if df.empty:
        return [f"manifest {path}: no rows"]
    out = []
    for column in REQUIRED:
        empty = df.index[df[column].str.strip() == ""]
        if len(empty):
            out.append(_rows(path, empty, f"{len(empty)} rows with an empty {column}"))
    audio = resolved_paths(df, path)
    named = df["path"].str.strip() != ""
    frames = pd.Series([_audio_frames(p) if ok else 0 for p, ok in
                        tqdm(zip(audio, named), total=len(df), desc="check audio", disable=not progress,
                             leave=False)], index=df.index, dtype=object)
    missing = df.index[named & audio.map(lambda p: not Path(p).is_file())]
    if len(missing):
        out.append(_rows(path, missing, f"{len(missing)} audio files not found, e.g. {audio[missing[0]]}"))
    unreadable = df.index[named & frames.isna() & ~df.index.isin(missing)]
    if len(unreadable):
        out.append(_rows(path, unreadable, f"{len(unreadable)} audio files not readable, e.g. {audio[unreadable[0]]}"))
    empty_audio = df.index[named & (frames == 0)]
    if len(empty_audio):
        out.append(_rows(path, empty_audio, f"{len(empty_audio)} audio files hold no samples, e.g. "
                                            f"{audio[empty_audio[0]]}"))
    ids = utterance_ids(df, audio)
    duplicated = df.index[ids.duplicated(keep=False)]
    if len(duplicated):
        out.append(_rows(path, duplicated, f"{len(duplicated)} rows share an utt_id, e.g. {ids[duplicated[0]]!r} "
                                           f"(without an utt_id column the file stem is the id)"))
    if "split" in df.columns:
        out += _split_problems(path, df, speaker_ids(df["speaker"], ids))
    return out


def _split_problems(path: Path, df: pd.DataFrame, speakers: pd.Series) -> list[str]:
    def part(v):
        try:
            return split_part(v)
        except ValueError:
            return None
    parts = df["split"].map(part)
    bad = df.index[parts.isna()]
    if len(bad):
        return [_rows(path, bad, f"{len(bad)} rows whose split is not train, development or test* "
                                 f"(e.g. {df['split'][bad[0]]!r})")]
    known = ~speakers.str.startswith(UNKNOWN_SPEAKER)
    spread = pd.DataFrame({"speaker": speakers, "part": parts})[known].groupby("speaker")["part"].nunique()
    leaking = sorted(spread.index[spread > 1])
    if not leaking:
        return []
    rows = df.index[speakers.isin(leaking)]
    return [_rows(path, rows, f"{len(leaking)} speakers appear in two splits ({', '.join(leaking[:SHOWN])}): "
                              f"a speaker would be tested on after training")]


def complete_manifest(path: str | Path, progress: bool = True) -> pd.DataFrame:
    """The table as the study's manifest: every column filled (ids, durations from the files' headers, unknown
    speakers made one each), ``corpus`` the table's stem. Call ``manifest_problems`` first: this stops at the
    first problem."""
    path = Path(path)
    problems = manifest_problems(path, progress)
    if problems:
        raise ValueError(problems[0] + (f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""))
    df = read_table(path)
    audio = resolved_paths(df, path)
    ids = utterance_ids(df, audio)
    out = pd.DataFrame({"utt_id": ids, "path": audio, "emotion": df["emotion"].str.strip(),
                        "speaker": speaker_ids(df["speaker"], ids)})
    for column in ("session", "gender"):
        out[column] = df[column].str.strip() if column in df.columns else ""
    given = pd.to_numeric(df["duration_s"], errors="coerce") if "duration_s" in df.columns else None
    header = pd.Series([round(sf.info(p).duration, 4) for p in audio], index=df.index)
    out["duration_s"] = header if given is None else given.fillna(header)
    out["corpus"] = path.stem
    kept = [c for c in OPTIONAL_COLUMNS if c in df.columns]
    for column in kept:
        out[column] = df[column].str.strip()
    return out[MANIFEST_COLUMNS + kept]
