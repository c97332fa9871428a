"""Leave-one-speaker-out folds: no speaker in its own test fold's training or validation, ten different
training sets, and a validation set stratified by speaker × emotion."""

from __future__ import annotations

import itertools

import numpy as np
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


def _split_manifest(parts):
    """Speakers by the corpus's own sets: (speaker, split value) per utterance, two utterances each."""
    return pd.DataFrame([dict(utt_id=f"{s}_{k}", speaker=s, emotion=("neu", "ang")[k], split=v)
                         for s, v in parts for k in range(2)])


def test_the_corpus_own_sets_are_one_fold_with_or_without_a_development_set():
    from mlkd_lib.data.folds import SPLIT_FOLD, make_folds, split, split_fold
    m = _split_manifest([("b", "Train"), ("a", "train"), ("c", "development"), ("d", "test1"), ("e", " TEST2 ")])
    (fold,) = make_folds(m, "split", val_fraction=0.5, seed=3)
    assert fold == split_fold(m, 0.5, 3)
    assert (fold.name, fold.test_speakers, fold.train_speakers, fold.val_speakers, fold.val_fraction, fold.seed,
            fold.by_split) == (SPLIT_FOLD, ("d", "e"), ("a", "b"), ("c",), 0.0, 3, True)
    parts = split(m, fold)
    assert [sorted(parts[k].speaker.unique()) for k in ("train", "val", "test")] == [["a", "b"], ["c"], ["d", "e"]]
    no_dev = split_fold(m[m.speaker != "c"], 0.5, 3)  # validation: half of each training speaker × emotion ...
    assert (no_dev.val_speakers, no_dev.val_fraction, no_dev.seed) == ((), 0.5, 3)
    assert len(split(m[m.speaker != "c"], no_dev)["val"]) == 0  # ... of one utterance each: none held out
    with pytest.raises(ValueError, match=r"^protocol=split needs a split column in the manifest \(train / "
                                         r"development / test\)$"):
        split_fold(m.drop(columns="split"))
    with pytest.raises(ValueError, match="^protocol=split: the manifest's split column has no train and no test rows$"):
        split_fold(_split_manifest([("c", "dev")]))
    with pytest.raises(ValueError, match=r"^split value 'eval': expected train, development \(dev, validation\) or "
                                         r"test\*$"):
        split_fold(_split_manifest([("a", "train"), ("b", "eval")]))


def test_speaker_validation_takes_the_session_partner_then_the_next_speakers_and_needs_enough_of_them():
    from mlkd_lib.data.folds import kfold_folds, loso_folds
    m = pd.DataFrame([dict(utt_id=f"{s}_{k}", speaker=s, emotion="neu") for s in ("Ses01F", "Ses01M", "Ses02F",
                                                                                 "Ses02M") for k in range(3)])
    folds = {f.name: f for f in loso_folds(m, "speaker", n_val_speakers=2, seed=4)}
    assert folds["Ses02F"].val_speakers == ("Ses02M", "Ses01F")  # the partner, then on from the test speaker
    assert folds["Ses02F"].train_speakers == ("Ses01M",) and folds["Ses02F"].val_fraction == 0.0
    fraction = {f.name: f for f in loso_folds(m, val_fraction=0.3, seed=4)}["Ses01M"]
    assert (fraction.val_fraction, fraction.seed, fraction.val_speakers) == (0.3, 4, ())
    with pytest.raises(ValueError, match=r"^leave-one-speaker-out needs at least 5 speakers, the manifest has 4: "):
        loso_folds(m, "speaker", n_val_speakers=3)
    assert len(loso_folds(m, "speaker", n_val_speakers=2)) == 4  # 2 + 2: just enough
    with pytest.raises(ValueError, match=r"^3-fold needs at least 5 speakers, the manifest has 4: "):
        kfold_folds(m, 3, "speaker", n_val_speakers=2)
    k = kfold_folds(m, 2, val_fraction=0.25, seed=9)
    assert [(f.name, f.val_fraction, f.seed) for f in k] == [("fold1", 0.25, 9), ("fold2", 0.25, 9)]
    with pytest.raises(ValueError, match=r"^validation must be one of \('fraction', 'speaker'\), got 'random'$"):
        kfold_folds(m, 2, "random")


def _speakers(counts: dict[str, int]) -> pd.DataFrame:
    return pd.DataFrame([dict(utt_id=f"{s}_{k}", speaker=s, emotion=("neu", "ang")[k % 2]) for s, n in counts.items()
                         for k in range(n)])


def test_the_protocols_reached_through_make_folds_with_every_setting_and_their_defaults():
    from mlkd_lib.data.folds import (
        get_fold,
        kfold_folds,
        loso_folds,
        make_folds,
        planned_fold_names,
        speaker_groups,
        split_fold,
    )
    m = _speakers({"A": 6, "B": 5, "C": 4, "D": 3, "E": 2, "F": 1})
    # the most utterances first, each to the group with fewest so far: 6 → 1st, 5 → 2nd, 4 → 2nd, 3 → 1st, 2 → 1st
    # (a tie: the first), 1 → 2nd
    assert speaker_groups(m, 2) == [["A", "D", "E"], ["B", "C", "F"]] == speaker_groups(m, 2, seed=0)
    assert make_folds(m) == loso_folds(m, "fraction", 0.2, 1, 0)
    assert make_folds(m, "loso", 3, "speaker", 0.3, 2, 7) == loso_folds(m, "speaker", 0.3, 2, 7)
    assert make_folds(m, "loso", val_fraction=0.3, seed=7) == loso_folds(m, "fraction", 0.3, 1, 7)
    assert make_folds(m, "kfold") == kfold_folds(m, 5, "fraction", 0.2, 1, 0) == kfold_folds(m)
    assert make_folds(m, "kfold", 2, "speaker", 0.3, 2, 7) == kfold_folds(m, 2, "speaker", 0.3, 2, 7)
    k = kfold_folds(m, 2, "speaker", n_val_speakers=1, seed=5)
    order = np.random.default_rng([5, 1]).permutation(sorted("ABCDEF")).tolist()
    assert k == kfold_folds(m, 2, "speaker", n_val_speakers=1, seed=5)
    assert [f.val_speakers for f in k] == [(next(s for s in order if s in "BCF"),), (next(s for s in order if s in
                                                                                      "ADE"),)]
    split = _split_manifest([("a", "train"), ("b", "test")])
    assert make_folds(split, "split", val_fraction=0.4, seed=2) == [split_fold(split, 0.4, 2)]
    assert split_fold(split) == split_fold(split, 0.2, 0)
    assert loso_folds(m) == loso_folds(m, "fraction", 0.2, 1, 0)
    with pytest.raises(ValueError,
                       match=r"^protocol must be one of \('loso', 'kfold', 'split', 'folds'\), got 'lopo'$"):
        make_folds(m, "lopo")
    with pytest.raises(ValueError, match=r"^no fold 'Z'; the folds are \['A', 'B', 'C', 'D', 'E', 'F'\]$"):
        get_fold(m, "Z")
    with pytest.raises(ValueError, match=r"^validation must be one of \('fraction', 'speaker'\), got 'random'$"):
        loso_folds(m, "random")
    assert planned_fold_names("kfold", ["x", "y"], 3) == ["fold1", "fold2", "fold3"]
    assert planned_fold_names("split", ["x"], 3) == ["split"] and planned_fold_names("loso", ["y", "x"], 3) == ["x",
                                                                                                              "y"]


def test_speakers_needed_by_each_validation_and_the_next_speaker_validating():
    from mlkd_lib.data.folds import kfold_folds, loso_folds
    two = _speakers({"A": 2, "B": 2})
    assert len(loso_folds(two)) == 2 and len(loso_folds(two, n_val_speakers=5)) == 2  # fraction: 2 speakers do
    assert len(kfold_folds(two, 2, n_val_speakers=5)) == 2
    folds = {f.name: f for f in loso_folds(_speakers({"A": 2, "B": 2, "C": 2, "D": 2}), "speaker")}
    assert folds["B"].val_speakers == ("C",) and folds["D"].val_speakers == ("A",)  # on from the test speaker
    lone = {f.name: f for f in loso_folds(_speakers({"Ses01F": 2, "Ses02F": 2, "Ses02M": 2}), "speaker")}
    assert lone["Ses01F"].val_speakers == ("Ses02F",)  # no partner in the corpus: the next speaker


def test_validation_holds_one_of_two_at_a_small_fraction_none_at_zero_and_follows_the_folds_seed():
    from mlkd_lib.data.folds import Fold, split, validation_mask
    pair = _speakers({"A": 2, "B": 2}).assign(emotion="neu")
    assert validation_mask(pair, 0.2).tolist().count(True) == 2  # one of each speaker's two
    assert not validation_mask(pair, 0.0).any()
    assert validation_mask(pair, 0.2).tolist() == validation_mask(pair, 0.2, seed=0).tolist()
    many = _speakers({"A": 20, "B": 20})
    fold = Fold("C", ("C",), ("A", "B"), val_fraction=0.3, seed=3)
    parts = split(many, fold)
    assert set(parts["val"].utt_id) == set(many[validation_mask(many, 0.3, 3)].utt_id)
    assert set(parts["val"].utt_id) != set(many[validation_mask(many, 0.3, 0)].utt_id)
    assert list(parts["train"].columns) == list(many.columns) and list(parts["train"].index) == list(
        range(len(parts["train"])))


def _given(rows: list[tuple[str, str]]) -> pd.DataFrame:
    """A table with its own folds: (speaker, fold value) per utterance, in order; ids 0, 1, ..."""
    return pd.DataFrame([dict(utt_id=str(k), speaker=s, emotion=("neu", "ang")[k % 2], fold=f)
                         for k, (s, f) in enumerate(rows)])


# s3 is tested in fold B and trains, by its unfolded row, in fold A; s5 and s6 are tested in no fold (blank values)
GIVEN = [("s1", "A"), ("s1", "A"), ("s2", " A "), ("s2", "A"), ("s3", "B"), ("s3", ""), ("s4", "B"), ("s4", "B"),
         ("s5", " "), ("s5", ""), ("s6", ""), ("s6", "")]


def test_the_given_folds_test_on_their_rows_and_train_and_validate_on_every_other_row():
    from mlkd_lib.data.folds import given_folds, make_folds
    m = _given(GIVEN)
    a, b = given_folds(m)
    assert (a.name, a.test_speakers, a.train_speakers, a.val_speakers, a.val_fraction, a.seed, a.by_fold,
            a.by_split) == ("A", ("s1", "s2"), ("s3", "s4", "s5", "s6"), (), 0.2, 0, True, False)
    assert (b.name, b.test_speakers, b.train_speakers, b.val_speakers, b.val_fraction, b.seed, b.by_fold) == (
        "B", ("s3", "s4"), ("s1", "s2", "s3", "s5", "s6"), (), 0.2, 0, True)
    assert given_folds(m) == given_folds(m, "fraction", 0.2, 1, 0) == make_folds(m, "folds")
    assert [(f.val_fraction, f.seed) for f in make_folds(m, "folds", 3, "fraction", 0.3, 2, 7)] == [(0.3, 7)] * 2
    assert make_folds(m, "folds", 3, "fraction", 0.3, 2, 7) == given_folds(m, "fraction", 0.3, 2, 7)
    parts = split(m, b)  # fold B's rows test; s3's unfolded row trains or validates beside the rest
    assert set(parts["test"].utt_id) == {"4", "6", "7"}
    assert set(parts["train"].utt_id) | set(parts["val"].utt_id) == {"0", "1", "2", "3", "5", "8", "9", "10", "11"}


def test_given_folds_validate_on_whole_speakers_the_fold_does_not_test_in_their_seeded_order():
    from mlkd_lib.data.folds import given_folds, make_folds
    m = _given(GIVEN)
    a, b = given_folds(m, "speaker", n_val_speakers=2, seed=7)
    assert make_folds(m, "folds", 3, "speaker", 0.3, 2, 7) == [a, b]
    for fold, rest in ((a, ["s3", "s4", "s5", "s6"]), (b, ["s1", "s2", "s3", "s5", "s6"])):
        order = [s for s in np.random.default_rng([7, 1]).permutation(rest).tolist() if s not in fold.test_speakers]
        assert fold.val_speakers == tuple(order[:2]) and fold.val_fraction == 0.0 and fold.by_fold
        assert fold.train_speakers == tuple(s for s in rest if s not in order[:2])
    assert "s3" not in b.val_speakers  # a speaker it tests on never validates it
    assert [len(f.val_speakers) for f in given_folds(m, "speaker")] == [1, 1]  # one by default
    parts = split(m, b)
    by_speaker = lambda part: {u for u, s in zip(m.utt_id, m.speaker) if s in part} - {"4", "6", "7"}  # noqa: E731
    assert set(parts["test"].utt_id) == {"4", "6", "7"}
    assert set(parts["val"].utt_id) == by_speaker(b.val_speakers)
    assert set(parts["train"].utt_id) == by_speaker(b.train_speakers)


def test_a_table_without_given_folds_is_refused_in_one_line():
    from mlkd_lib.data.folds import given_folds, planned_fold_names
    m = _given(GIVEN)
    with pytest.raises(ValueError, match=r"^protocol=folds needs a fold column in the manifest \(the fold whose test "
                                         r"set holds each utterance; `mlkd data emobox` writes one\)$"):
        given_folds(m.drop(columns="fold"))
    with pytest.raises(ValueError, match="^protocol=folds: the manifest's fold column is empty$"):
        given_folds(m.assign(fold=["", " "] * 6))
    with pytest.raises(ValueError, match=r"^validation must be one of \('fraction', 'speaker'\), got 'random'$"):
        given_folds(m, "random")
    assert planned_fold_names("folds", ["s1"], 5, given=["B", "A", "", "A", 3]) == ["3", "A", "B"]


def test_speakers_of_equal_counts_are_dealt_in_the_seeded_order():
    from mlkd_lib.data.folds import kfold_folds, make_folds, speaker_groups
    m = _speakers({s: 2 for s in "ABCDEFGHIJ"})

    def dealt(seed):  # every count equal: the seeded order, dealt to the two groups in turn
        order = np.random.default_rng(seed).permutation(list("ABCDEFGHIJ")).tolist()
        return [sorted(order[0::2]), sorted(order[1::2])]
    assert dealt(0) != dealt(1) and dealt(0) != dealt(5)
    assert speaker_groups(m, 2) == dealt(0) and speaker_groups(m, 2, seed=5) == dealt(5)
    assert [list(f.test_speakers) for f in kfold_folds(m, 2, seed=5)] == dealt(5)
    assert [len(f.val_speakers) for f in kfold_folds(m, 2, "speaker")] == [1, 1]  # one by default
    assert [len(f.val_speakers) for f in make_folds(m, "kfold", 2, "speaker")] == [1, 1]


def test_validation_holds_the_lowest_hashes_of_each_stratum_unknown_speakers_in_one():
    import zlib
    strata = {("A", "neu"): [f"A_{k}" for k in range(10)], ("B", "neu"): [f"B_{k}" for k in range(10)],
              ("?", "neu"): [f"unknown-{i}_0" for i in range(4)], ("?", "ang"): [f"unknown-{i}_0" for i in (4, 5)]}
    m = pd.DataFrame([dict(utt_id=u, speaker=u.split("_")[0], emotion=e) for (_, e), ids in strata.items()
                      for u in ids])

    def by_hand(seed):  # 3 of A's ten, 3 of B's, round(0.3 · 4) = 1 of the unknowns' neu, one of their two ang
        take = {"A": 3, "B": 3, "?": 1}
        return {u for (who, _), ids in strata.items()
                for u in sorted(ids, key=lambda u: zlib.crc32(f"{seed}:{u}".encode()))[:take[who]]}
    assert by_hand(0) != by_hand(1)
    assert set(m.utt_id[validation_mask(m, 0.3)]) == by_hand(0)
    assert set(m.utt_id[validation_mask(m, 0.3, seed=1)]) == by_hand(1)
