"""Leave-one-speaker-out folds: no speaker in its own test fold's training or validation, ten different
training sets, and a validation set stratified by speaker × emotion."""

from __future__ import annotations

import itertools

import pandas as pd
import pytest

from mlkd_lib.data.folds import get_fold, loso_folds, split, validation_mask
from mlkd_lib.names import EMOTIONS


def corpus(per_cell: int = 15) -> pd.DataFrame:
    """Ten speakers laid out like IEMOCAP, ``per_cell`` utterances per speaker × emotion."""
    rows = [dict(utt_id=f"Ses0{s}{g}_{e}_{i:02d}", speaker=f"Ses0{s}{g}", emotion=e)
            for s in range(1, 6) for g in "FM" for e in EMOTIONS for i in range(per_cell)]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("validation", ["fraction", "speaker"])
def test_the_test_speaker_is_in_no_other_part_and_the_parts_are_disjoint(validation):
    manifest = corpus()
    folds = loso_folds(manifest, validation=validation)
    assert sorted(f.test_speaker for f in folds) == sorted(manifest.speaker.unique())
    for f in folds:
        parts = split(manifest, f)
        assert set(parts["test"].speaker) == {f.test_speaker}
        assert f.test_speaker not in set(parts["train"].speaker) | set(parts["val"].speaker)
        ids = {k: set(v.utt_id) for k, v in parts.items()}
        assert not ids["train"] & ids["val"] and not (ids["train"] | ids["val"]) & ids["test"]
        assert sum(map(len, ids.values())) == len(manifest)


def test_ten_folds_are_ten_different_trainings():
    manifest = corpus()
    trains = {f.name: frozenset(split(manifest, f)["train"].utt_id) for f in loso_folds(manifest)}
    assert len(trains) == 10
    for a, b in itertools.combinations(trains, 2):
        assert trains[a] != trains[b], (a, b)
    # every fold trains on all nine other speakers
    for name, ids in trains.items():
        assert set(manifest.set_index("utt_id").loc[list(ids), "speaker"]) == set(manifest.speaker) - {name}


def test_the_old_speaker_protocol_trains_session_partners_on_the_same_speakers():
    """Why it is not the default: folds Ses01F and Ses01M hold each other out for validation."""
    manifest = corpus()
    a, b = (split(manifest, get_fold(manifest, f, validation="speaker"))["train"] for f in ("Ses01F", "Ses01M"))
    assert set(a.utt_id) == set(b.utt_id)


def test_validation_is_stratified_by_speaker_and_emotion_and_the_same_in_every_fold():
    manifest = corpus(per_cell=15)
    held = manifest[validation_mask(manifest, 0.2, seed=0)]
    assert (held.groupby(["speaker", "emotion"]).size() == 3).all() and len(held) == 3 * 40
    vals = [set(split(manifest, f)["val"].utt_id) for f in loso_folds(manifest, val_fraction=0.2)]
    for f, v in zip(loso_folds(manifest), vals):
        assert v == set(held.utt_id) - set(manifest[manifest.speaker == f.test_speaker].utt_id)
    # a small cell still gives validation one utterance; a single-utterance cell keeps it for training
    tiny = corpus(per_cell=2)
    assert (tiny[validation_mask(tiny, 0.2)].groupby(["speaker", "emotion"]).size() == 1).all()
    assert not validation_mask(corpus(per_cell=1), 0.2).any()
    # another seed picks other utterances, as many
    other = manifest[validation_mask(manifest, 0.2, seed=1)]
    assert len(other) == len(held) and set(other.utt_id) != set(held.utt_id)


def test_kfold_with_speaker_validation_holds_whole_speakers_out_of_training():
    """Speaker-independent k-fold with ``validation="speaker"``: each fold tests on its group of speakers,
    validates on ``n_val_speakers`` others held out whole, trains on the rest; no speaker is in two parts, every
    utterance is in exactly one, and every speaker is tested exactly once over the folds."""
    from mlkd_lib.data.folds import kfold_folds
    manifest = corpus(per_cell=3)
    folds = kfold_folds(manifest, n_folds=5, validation="speaker", n_val_speakers=2, seed=0)
    tested = []
    for f in folds:
        parts = split(manifest, f)
        speakers = {k: set(v.speaker) for k, v in parts.items()}
        assert len(speakers["val"]) == 2 and len(speakers["test"]) == 2 and len(speakers["train"]) == 6
        assert not (speakers["train"] & speakers["val"] or speakers["train"] & speakers["test"]
                    or speakers["val"] & speakers["test"])
        assert sum(map(len, parts.values())) == len(manifest)
        assert all(len(parts["val"][parts["val"].speaker == s]) == 3 * len(EMOTIONS) for s in speakers["val"])
        tested += sorted(speakers["test"])
    assert sorted(tested) == sorted(manifest.speaker.unique())
    with pytest.raises(ValueError, match="5-fold"):
        kfold_folds(corpus().query("speaker < 'Ses04'"), n_folds=5, validation="speaker", n_val_speakers=2)
