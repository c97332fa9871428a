"""The manifest contract: one CSV row per utterance (docs/design.md, "Data contracts")."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..names import EMOTIONS

MANIFEST_COLUMNS = ["utt_id", "path", "emotion", "speaker", "session", "gender", "duration_s", "corpus"]


def write_manifest(df: pd.DataFrame, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    df[MANIFEST_COLUMNS].to_csv(path, index=False)
    return path


def read_manifest(path: str | Path) -> pd.DataFrame:
    """Load a manifest, check its schema, and make ``path`` absolute (relative to the CSV)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"manifest not found: {path}")
    df = pd.read_csv(path, dtype={"utt_id": str, "path": str, "speaker": str, "gender": str})
    missing = [c for c in MANIFEST_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: manifest lacks columns {missing} (expected {MANIFEST_COLUMNS})")
    bad = sorted(set(df["emotion"]) - set(EMOTIONS))
    if bad:
        raise ValueError(f"{path}: unknown emotion labels {bad}; allowed {list(EMOTIONS)}")
    if df["utt_id"].duplicated().any():
        raise ValueError(f"{path}: duplicate utt_id {df.loc[df['utt_id'].duplicated(), 'utt_id'].iloc[0]!r}")
    df["path"] = [p if Path(p).is_absolute() else str(path.parent / p) for p in df["path"]]
    return df
