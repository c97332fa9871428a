"""Leave-one-speaker-out folds (the paper's 10-speaker protocol)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class Fold:
    test_speaker: str
    val_speakers: tuple[str, ...]
    train_speakers: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.test_speaker


def _partner(speaker: str, speakers: list[str]) -> str | None:
    """The other speaker of the same session (IEMOCAP's dyad), if present."""
    others = [s for s in speakers if s != speaker and s[:-1] == speaker[:-1]]
    return others[0] if others else None


def loso_folds(manifest: pd.DataFrame, n_val_speakers: int = 1) -> list[Fold]:
    """One fold per speaker: it is the test set; validation speakers are taken from the
    remaining (training) speakers — its session partner first, then the next speakers
    in order — and removed from training. No speaker is in two roles of one fold."""
    speakers = sorted(manifest["speaker"].unique())
    if len(speakers) < 2 + n_val_speakers:
        raise ValueError(f"leave-one-speaker-out needs at least {2 + n_val_speakers} speakers, "
                         f"the manifest has {len(speakers)}: {speakers}")
    folds = []
    for i, test in enumerate(speakers):
        rest = [s for s in speakers if s != test]
        order = ([_partner(test, speakers)] if _partner(test, speakers) else []) + \
                [s for s in speakers[i + 1:] + speakers[:i] if s != test]
        val = tuple(dict.fromkeys(order))[:n_val_speakers]
        folds.append(Fold(test, val, tuple(s for s in rest if s not in val)))
    return folds


def get_fold(manifest: pd.DataFrame, name: str, n_val_speakers: int = 1) -> Fold:
    folds = {f.name: f for f in loso_folds(manifest, n_val_speakers)}
    if name not in folds:
        raise ValueError(f"no fold {name!r}; the folds are the speakers {sorted(folds)}")
    return folds[name]


def split(manifest: pd.DataFrame, fold: Fold) -> dict[str, pd.DataFrame]:
    parts = {"train": fold.train_speakers, "val": fold.val_speakers, "test": (fold.test_speaker,)}
    return {k: manifest[manifest["speaker"].isin(v)].reset_index(drop=True) for k, v in parts.items()}
