"""Leave-one-speaker-out folds (the paper's 10-speaker protocol) and their validation sets.

Each fold tests on one speaker and trains on all the others, so the ten folds are ten different
trainings. Model selection reads a validation set that never touches the test speaker:

- ``"fraction"`` (default): a share of every training speaker's utterances of every emotion (stratified
  by speaker × emotion), the same utterances whichever fold they train in;
- ``"speaker"``: whole training speakers held out (the session partner first). Two folds of one session then
  train on the same speakers: five trainings, not ten. Kept to reproduce older studies.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import pandas as pd

VALIDATIONS = ("fraction", "speaker")


@dataclass(frozen=True)
class Fold:
    test_speaker: str
    train_speakers: tuple[str, ...]  # the speakers whose utterances train (and, with a fraction, validate)
    val_speakers: tuple[str, ...] = ()  # held out whole for validation ("speaker" protocol)
    val_fraction: float = 0.0  # share of each training speaker × emotion held out ("fraction" protocol)
    seed: int = 0

    @property
    def name(self) -> str:
        return self.test_speaker


def _partner(speaker: str, speakers: list[str]) -> str | None:
    """The other speaker of the same session (IEMOCAP's dyad), if present."""
    others = [s for s in speakers if s != speaker and s[:-1] == speaker[:-1]]
    return others[0] if others else None


def loso_folds(manifest: pd.DataFrame, validation: str = "fraction", val_fraction: float = 0.2,
               n_val_speakers: int = 1, seed: int = 0) -> list[Fold]:
    """One fold per speaker: it is the test set, the others train. With ``validation="speaker"`` the
    validation speakers (its session partner first, then the next speakers in order) leave training."""
    if validation not in VALIDATIONS:
        raise ValueError(f"validation must be one of {VALIDATIONS}, got {validation!r}")
    speakers = sorted(manifest["speaker"].unique())
    need = 2 + (n_val_speakers if validation == "speaker" else 0)
    if len(speakers) < need:
        raise ValueError(f"leave-one-speaker-out needs at least {need} speakers, "
                         f"the manifest has {len(speakers)}: {speakers}")
    folds = []
    for i, test in enumerate(speakers):
        rest = [s for s in speakers if s != test]
        if validation == "fraction":
            folds.append(Fold(test, tuple(rest), val_fraction=val_fraction, seed=seed))
            continue
        order = ([_partner(test, speakers)] if _partner(test, speakers) else []) + \
                [s for s in speakers[i + 1:] + speakers[:i] if s != test]
        val = tuple(dict.fromkeys(order))[:n_val_speakers]
        folds.append(Fold(test, tuple(s for s in rest if s not in val), val))
    return folds


def get_fold(manifest: pd.DataFrame, name: str, **protocol) -> Fold:
    folds = {f.name: f for f in loso_folds(manifest, **protocol)}
    if name not in folds:
        raise ValueError(f"no fold {name!r}; the folds are the speakers {sorted(folds)}")
    return folds[name]


def validation_mask(utterances: pd.DataFrame, fraction: float, seed: int = 0) -> pd.Series:
    """True for the utterances held out for validation: in every speaker × emotion group, the
    ``round(fraction · n)`` with the lowest seeded hash of their id (at least one where a group has two
    or more). It depends on the utterance alone, so an utterance validates in every fold that trains
    on its speaker, and never trains in one of them."""
    rank = utterances["utt_id"].map(lambda u: zlib.crc32(f"{seed}:{u}".encode()))
    order = rank.groupby([utterances["speaker"], utterances["emotion"]]).rank(method="first")
    size = utterances.groupby(["speaker", "emotion"])["utt_id"].transform("size")
    take = (size * fraction).round().clip(lower=((size >= 2) & (fraction > 0)).astype(int))
    return order <= take


def split(manifest: pd.DataFrame, fold: Fold) -> dict[str, pd.DataFrame]:
    """The fold's train, validation and test utterances (disjoint; the test speaker in no other part)."""
    test = manifest[manifest["speaker"] == fold.test_speaker]
    if fold.val_speakers:
        train = manifest[manifest["speaker"].isin(fold.train_speakers)]
        val = manifest[manifest["speaker"].isin(fold.val_speakers)]
    else:
        pool = manifest[manifest["speaker"].isin(fold.train_speakers)]
        held = validation_mask(pool, fold.val_fraction, fold.seed)
        train, val = pool[~held], pool[held]
    return {k: v.reset_index(drop=True) for k, v in (("train", train), ("val", val), ("test", test))}
