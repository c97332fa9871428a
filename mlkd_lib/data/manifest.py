"""The manifest contract: one row per utterance (docs/your-data.md, "A manifest any corpus can use").

Every recipe (``data/recipes/``) writes it whole; a user's own manifest (``corpus=manifest``) needs only
``path, emotion, speaker`` and is checked and completed by ``data/user_manifest.py``."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

MANIFEST_COLUMNS = ["utt_id", "path", "emotion", "speaker", "session", "gender", "duration_s", "corpus"]
# a corpus's own train / development / test sets (protocol=split), its own folds (the fold whose test set holds the
# utterance: protocol=folds), the raters' confidence in the label (audformat's)
OPTIONAL_COLUMNS = ["split", "fold", "confidence"]
READ_AS_TEXT = {c: str for c in ("utt_id", "path", "emotion", "speaker", "gender", "split", "fold")}
UNKNOWN_SPEAKER = "unknown-"  # prefix of a speaker id that stands for one utterance of an unknown speaker
UNKNOWN_SPEAKERS = {"", "unknown", "unk", "none", "nan"}  # what tables write for a speaker they do not know


def speaker_ids(speakers: pd.Series, utt_ids: pd.Series) -> pd.Series:
    """``speakers`` as text, an unknown one (empty, ``Unknown``: MSP-Podcast's word) made a speaker of its own per
    utterance (``unknown-<utt_id>``): unknown utterances are not one person, and folds must not hold them together
    as one voice that trains and tests."""
    text = speakers.map(lambda v: "" if v is None else str(v).strip())
    return text.where(~text.str.lower().isin(UNKNOWN_SPEAKERS), UNKNOWN_SPEAKER + utt_ids.astype(str))


def write_manifest(df: pd.DataFrame, path: str | Path) -> Path:
    """The manifest's columns, and those of ``OPTIONAL_COLUMNS`` the corpus has."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # whole or not at all: a step may be reading it
    df[MANIFEST_COLUMNS + [c for c in OPTIONAL_COLUMNS if c in df.columns]].to_csv(tmp, index=False)
    os.replace(tmp, path)
    return path


def read_manifest(path: str | Path) -> pd.DataFrame:
    """Load a manifest, check its schema, and make ``path`` absolute (relative to the CSV)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"manifest not found: {path}")
    df = pd.read_csv(path, dtype=READ_AS_TEXT, keep_default_na=False, na_values={"duration_s": [""]})
    missing = [c for c in MANIFEST_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: manifest lacks columns {missing} (expected {MANIFEST_COLUMNS})")
    if df["utt_id"].duplicated().any():
        raise ValueError(f"{path}: duplicate utt_id {df.loc[df['utt_id'].duplicated(), 'utt_id'].iloc[0]!r}")
    df["path"] = [p if Path(p).is_absolute() else str(path.parent / p) for p in df["path"]]
    return df
