"""Speaker-independent folds and their validation sets, for any number of speakers.

Four protocols (the study's ``protocol`` key):

- ``"loso"``: leave one speaker out, a fold a speaker (the paper's 10-speaker protocol): ten folds, ten trainings;
- ``"kfold"``: the speakers dealt into k groups balanced by utterance count (seeded), a fold a group — for corpora
  with many speakers (CREMA-D has 91);
- ``"split"``: the corpus's own sets, from the manifest's ``split`` column (MSP-Podcast: Train / Development /
  Test1 / Test2): one fold, tested on every test set, validated on the development set;
- ``"folds"``: the manifest's own folds, from its ``fold`` column (EmoBox's official folds: ``mlkd data emobox``): a
  fold a value, testing on its rows and training on every other row (an empty ``fold``: a row no fold tests on).

No test speaker ever trains or validates in its fold (``folds``: as far as the given folds keep speakers apart).
Model selection reads a validation set:

- ``"fraction"`` (default): a share of every training speaker's utterances of every emotion (stratified
  by speaker × emotion), the same utterances whichever fold they train in; utterances whose speaker is unknown
  (``unknown-…``, one speaker each) are one stratum, so that validation is drawn from them by utterance;
- ``"speaker"``: whole training speakers held out (for LOSO, the session partner first). Two LOSO folds of one
  session then train on the same speakers: five trainings, not ten. Kept to reproduce older studies.
"""

from __future__ import annotations

import dataclasses
import re
import zlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .manifest import UNKNOWN_SPEAKER

PROTOCOLS = ("loso", "kfold", "split", "folds")
VALIDATIONS = ("fraction", "speaker")
SPLIT_FOLD = "split"  # the one fold of protocol "split"
SPLIT_PARTS = {"train": "train", "training": "train", "development": "val", "dev": "val", "validation": "val",
               "valid": "val", "val": "val"}  # and every value starting with "test": a test set


@dataclass(frozen=True)
class Fold:
    name: str
    test_speakers: tuple[str, ...]  # for "split" and "folds" the manifest's split / fold column says who tests
    train_speakers: tuple[str, ...]  # the speakers whose utterances train (and, with a fraction, validate)
    val_speakers: tuple[str, ...] = ()  # held out whole for validation ("speaker" validation)
    val_fraction: float = 0.0  # share of each training speaker × emotion held out ("fraction" validation)
    seed: int = 0
    by_split: bool = False  # the parts come from the manifest's split column
    by_fold: bool = False  # the test part is the rows whose fold column holds the fold's name

    @property
    def test_speaker(self) -> str:
        """The held-out speaker of a leave-one-speaker-out fold."""
        if len(self.test_speakers) != 1:
            raise ValueError(f"fold {self.name} tests on {len(self.test_speakers)} speakers, not one")
        return self.test_speakers[0]


def _need(speakers: list[str], n: int, what: str) -> None:
    if len(speakers) < n:
        raise ValueError(f"{what} needs at least {n} speakers, the manifest has {len(speakers)}: {speakers}")


def _with_validation(name: str, test: list[str], rest: list[str], validation: str, val_fraction: float,
                     val_order: list[str], n_val_speakers: int, seed: int) -> Fold:
    if validation == "fraction":
        return Fold(name, tuple(test), tuple(rest), val_fraction=val_fraction, seed=seed)
    val = tuple(dict.fromkeys(s for s in val_order if s in rest))[:n_val_speakers]
    return Fold(name, tuple(test), tuple(s for s in rest if s not in val), val)


def _partner(speaker: str, speakers: list[str]) -> str | None:
    """The other speaker of the same session (IEMOCAP's dyad, ``Ses01F`` and ``Ses01M``), if present."""
    if not re.fullmatch(r"Ses\d\d[FM]", speaker):
        return None  # other corpora's ids that differ in their last character are no pair (CREMA-D's 1001, 1002)
    others = [s for s in speakers if s != speaker and s[:-1] == speaker[:-1]]
    return others[0] if others else None


def loso_folds(manifest: pd.DataFrame, validation: str = "fraction", val_fraction: float = 0.2,
               n_val_speakers: int = 1, seed: int = 0) -> list[Fold]:
    """One fold per speaker: it is the test set, the others train. With ``validation="speaker"`` the
    validation speakers (its session partner first, then the next speakers in order) leave training."""
    if validation not in VALIDATIONS:
        raise ValueError(f"validation must be one of {VALIDATIONS}, got {validation!r}")
    speakers = sorted(manifest["speaker"].unique())
    _need(speakers, 2 + (n_val_speakers if validation == "speaker" else 0), "leave-one-speaker-out")
    folds = []
    for i, test in enumerate(speakers):
        partner = _partner(test, speakers)
        order = ([partner] if partner else []) + [s for s in speakers[i + 1:] + speakers[:i] if s != test]
        folds.append(_with_validation(test, [test], [s for s in speakers if s != test], validation, val_fraction,
                                      order, n_val_speakers, seed))
    return folds


def speaker_groups(manifest: pd.DataFrame, k: int, seed: int = 0) -> list[list[str]]:
    """The speakers dealt into ``k`` groups of about equal utterance counts: in a seeded random order, the
    speakers with most utterances first, each to the group that has fewest so far."""
    counts = manifest.groupby("speaker").size()
    rng = np.random.default_rng(seed)
    order = sorted(rng.permutation(sorted(counts.index)).tolist(), key=lambda s: -counts[s])  # stable: ties seeded
    groups, sizes = [[] for _ in range(k)], [0] * k
    for s in order:
        g = min(range(k), key=lambda i: (sizes[i], i))
        groups[g].append(s)
        sizes[g] += int(counts[s])
    return [sorted(g) for g in groups]


def fold_label(i: int, k: int) -> str:
    return f"fold{i + 1:0{len(str(k))}d}"


def kfold_folds(manifest: pd.DataFrame, n_folds: int = 5, validation: str = "fraction", val_fraction: float = 0.2,
                n_val_speakers: int = 1, seed: int = 0) -> list[Fold]:
    """Speaker-independent k-fold: each group of ``speaker_groups`` is one fold's test set, the others train."""
    if validation not in VALIDATIONS:
        raise ValueError(f"validation must be one of {VALIDATIONS}, got {validation!r}")
    speakers = sorted(manifest["speaker"].unique())
    _need(speakers, n_folds + (n_val_speakers if validation == "speaker" else 0), f"{n_folds}-fold")
    groups = speaker_groups(manifest, n_folds, seed)
    val_order = np.random.default_rng([seed, 1]).permutation(speakers).tolist()
    return [_with_validation(fold_label(i, n_folds), test, [s for s in speakers if s not in test], validation,
                             val_fraction, val_order, n_val_speakers, seed) for i, test in enumerate(groups)]


def split_part(value: str) -> str:
    """train / val / test for a value of the manifest's split column (any case)."""
    v = str(value).strip().lower()
    if v.startswith("test"):
        return "test"
    if v in SPLIT_PARTS:
        return SPLIT_PARTS[v]
    raise ValueError(f"split value {value!r}: expected train, development (dev, validation) or test*")


def split_fold(manifest: pd.DataFrame, val_fraction: float = 0.2, seed: int = 0) -> Fold:
    """The corpus's own sets: one fold. Without a development set, validation is a fraction of training."""
    if "split" not in manifest.columns:
        raise ValueError("protocol=split needs a split column in the manifest (train / development / test)")
    parts = manifest["split"].map(split_part)
    missing = [p for p in ("train", "test") if not (parts == p).any()]
    if missing:
        raise ValueError(f"protocol=split: the manifest's split column has no {' and no '.join(missing)} rows")
    speakers = lambda p: tuple(sorted(manifest.loc[parts == p, "speaker"].unique()))  # noqa: E731
    has_val = (parts == "val").any()
    return Fold(SPLIT_FOLD, speakers("test"), speakers("train"), speakers("val") if has_val else (),
                0.0 if has_val else val_fraction, seed, by_split=True)


def given_fold_names(manifest: pd.DataFrame) -> list[str]:
    """The folds of protocol "folds": the values of the manifest's ``fold`` column (an empty one tests in none)."""
    if "fold" not in manifest.columns:
        raise ValueError("protocol=folds needs a fold column in the manifest (the fold whose test set holds each "
                         "utterance; `mlkd data emobox` writes one)")
    names = sorted(set(manifest["fold"].astype(str).str.strip()) - {""})
    if not names:
        raise ValueError("protocol=folds: the manifest's fold column is empty")
    return names


def given_folds(manifest: pd.DataFrame, validation: str = "fraction", val_fraction: float = 0.2,
                n_val_speakers: int = 1, seed: int = 0) -> list[Fold]:
    """The manifest's own folds: each tests on its rows; every other row trains, and validation is drawn from those
    (a share of them, or whole speakers of them that the fold does not test on), never from the fold's test rows."""
    if validation not in VALIDATIONS:
        raise ValueError(f"validation must be one of {VALIDATIONS}, got {validation!r}")
    fold = manifest["fold"].astype(str).str.strip() if "fold" in manifest.columns else None
    out = []
    for name in given_fold_names(manifest):
        test = sorted(manifest.loc[fold == name, "speaker"].unique())
        rest = sorted(manifest.loc[fold != name, "speaker"].unique())
        order = [s for s in np.random.default_rng([seed, 1]).permutation(rest).tolist() if s not in test]
        f = _with_validation(name, test, rest, validation, val_fraction, order, n_val_speakers, seed)
        out.append(dataclasses.replace(f, by_fold=True))
    return out


def make_folds(manifest: pd.DataFrame, protocol: str = "loso", n_folds: int = 5, validation: str = "fraction",
               val_fraction: float = 0.2, n_val_speakers: int = 1, seed: int = 0) -> list[Fold]:
    """The folds of a study's ``protocol``."""
    if protocol == "loso":
        return loso_folds(manifest, validation, val_fraction, n_val_speakers, seed)
    if protocol == "kfold":
        return kfold_folds(manifest, n_folds, validation, val_fraction, n_val_speakers, seed)
    if protocol == "split":
        return [split_fold(manifest, val_fraction, seed)]
    if protocol == "folds":
        return given_folds(manifest, validation, val_fraction, n_val_speakers, seed)
    raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")


def get_fold(manifest: pd.DataFrame, name: str, **protocol) -> Fold:
    folds = {f.name: f for f in make_folds(manifest, **protocol)}
    if name not in folds:
        raise ValueError(f"no fold {name!r}; the folds are {sorted(folds)}")
    return folds[name]


def validation_strata(utterances: pd.DataFrame) -> list[pd.Series]:
    """The groups validation is stratified by: speaker × emotion, every unknown speaker's utterances (one speaker id
    each) counted as one speaker, so that a corpus without speakers still validates on a share of each emotion."""
    speaker = utterances["speaker"].astype(str)
    return [speaker.where(~speaker.str.startswith(UNKNOWN_SPEAKER), UNKNOWN_SPEAKER), utterances["emotion"]]


def validation_mask(utterances: pd.DataFrame, fraction: float, seed: int = 0) -> pd.Series:
    """True for the utterances held out for validation: in every group of ``validation_strata``, the
    ``round(fraction · n)`` with the lowest seeded hash of their id (at least one where a group has two
    or more). It depends on the utterance alone, so an utterance validates in every fold that trains
    on its speaker, and never trains in one of them."""
    rank = utterances["utt_id"].map(lambda u: zlib.crc32(f"{seed}:{u}".encode()))
    strata = validation_strata(utterances)
    order = rank.groupby(strata).rank(method="first")
    size = rank.groupby(strata).transform("size")
    take = (size * fraction).round().clip(lower=((size >= 2) & (fraction > 0)).astype(int))
    return order <= take


def split(manifest: pd.DataFrame, fold: Fold) -> dict[str, pd.DataFrame]:
    """The fold's train, validation and test utterances (disjoint; no test speaker in another part)."""
    if fold.by_split:
        part = manifest["split"].map(split_part)
        test, pool = manifest[part == "test"], manifest[part == "train"]
        val = manifest[part == "val"]
    elif fold.by_fold:
        tested = manifest["fold"].astype(str).str.strip() == fold.name
        test, rest = manifest[tested], manifest[~tested]
        pool = rest[rest["speaker"].isin(fold.train_speakers)]
        val = rest[rest["speaker"].isin(fold.val_speakers)]
    else:
        test = manifest[manifest["speaker"].isin(fold.test_speakers)]
        pool = manifest[manifest["speaker"].isin(fold.train_speakers)]
        val = manifest[manifest["speaker"].isin(fold.val_speakers)]
    if fold.val_fraction:
        held = validation_mask(pool, fold.val_fraction, fold.seed)
        train, val = pool[~held], pool[held]
    else:
        train = pool
    return {k: v.reset_index(drop=True) for k, v in (("train", train), ("val", val), ("test", test))}


def planned_fold_names(protocol: str, speakers: list[str], n_folds: int, given: list[str] = ()) -> list[str]:
    """The names the folds of ``protocol`` will have, from the corpus's speakers alone (before the data is made);
    ``given``: the values of the manifest's fold column (protocol "folds")."""
    if protocol == "folds":
        return sorted(set(map(str, given)) - {""})
    if protocol == "kfold":
        return [fold_label(i, n_folds) for i in range(n_folds)]
    return [SPLIT_FOLD] if protocol == "split" else sorted(speakers)
