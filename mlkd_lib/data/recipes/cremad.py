"""CREMA-D → manifest: six classes, 91 actors; gender from VideoDemographics.csv."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from .common import corpus_root, finish, named_wavs

LABELS = {"ANG": "ang", "DIS": "dis", "FEA": "fea", "HAP": "hap", "NEU": "neu", "SAD": "sad"}
# AudioWAV/1001_DFA_ANG_XX.wav: actor, sentence (12 of them), emotion, level (LO MD HI, XX unspecified)
NAME = re.compile(r"(?P<actor>\d{4})_(?P<sentence>[A-Z]{3})_(?P<emotion>[A-Z]{3})_(?P<level>[A-Z]{2})")
SEX = {"male": "M", "female": "F"}


def read_genders(csv: Path) -> dict[str, str]:
    """Actor id → "F"/"M" from the corpus's VideoDemographics.csv (ActorID, Age, Sex, Race, Ethnicity)."""
    table = pd.read_csv(csv, dtype=str, keep_default_na=False)
    table.columns = table.columns.str.strip()
    missing = [c for c in ("ActorID", "Sex") if c not in table.columns]
    if missing:
        raise ValueError(f"{csv}: no column {missing[0]} (expected ActorID, Age, Sex, Race, Ethnicity)")
    return {a.strip(): SEX.get(s.strip().lower(), "") for a, s in zip(table.ActorID, table.Sex)}


def speaker_of(stem: str, genders: dict[str, str] | None = None) -> tuple[str, str, str]:
    """(actor, session, gender) of a file's stem: its first field; the gender from ``read_genders`` where given."""
    m = NAME.fullmatch(stem)
    if not m:
        raise ValueError(f"not a CREMA-D file name: {stem!r}")
    return m["actor"], "", (genders or {}).get(m["actor"], "")


def build_manifest(root: str | Path, out: str | Path | None = None, progress: bool = True,
                   demographics: str | Path | None = None) -> pd.DataFrame:
    """``demographics``: the VideoDemographics.csv when it is not in ``root``; without one gender is ""."""
    root = corpus_root(root, "CREMA-D", "AudioWAV")
    csv = Path(demographics).expanduser() if demographics is not None else root / "VideoDemographics.csv"
    if demographics is not None and not csv.is_file():
        raise FileNotFoundError(f"CREMA-D demographics file not found: {csv}")
    genders = read_genders(csv) if csv.is_file() else {}
    rows, odd = [], []
    for wav, m in named_wavs(root / "AudioWAV", NAME, LABELS, odd):
        actor, session, gender = speaker_of(wav.stem, genders)
        rows.append(dict(utt_id=wav.stem, path=str(wav), emotion=LABELS[m["emotion"]],
                         speaker=actor, session=session, gender=gender, corpus="cremad"))
    return finish(rows, root, "cremad", out, progress, skipped={"wavs not named ACTOR_SENTENCE_EMOTION_LEVEL": odd})
