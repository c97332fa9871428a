"""The readers of corpora in general forms — a Hugging Face dataset folder, an audformat database, EmoBox with its
folds — on fixtures laid out as the real forms are (tests/helpers/sources.py), each utterance's label, speaker,
split or fold pinned by hand from the fixture; and their mistakes as one line, exit 2, nothing written."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import soundfile as sf
from helpers import sources

from mlkd_lib.cli import main
from mlkd_lib.data.folds import make_folds, split
from mlkd_lib.data.manifest import read_manifest
from mlkd_lib.data.recipes import audformat, emobox, hf

# ---------------------------------------------------------------- Hugging Face: a repository's Parquet shards

def row(name, label, speaker, seconds=0.2, **more):
    return dict(name=name, label=label, speaker=speaker, seconds=seconds, **more)


HUB = {"train": [[row("spk1_0001.wav", "angry", "spk1", 0.5), row("spk1_0002.wav", "happy", "spk1", 0.25, channels=2),
                  row("spk2_0001.wav", "neutral", "spk2", 0.4)],
                 [row("spk2_0002.wav", "Sad", "spk2", 0.3), row("spk2_0003.wav", "surprised", "spk2")]],
       "test": [[row("spk3_0001.wav", "angry", "spk3", 0.35), row("spk3_0002.wav", "other", "spk3")]]}


def build(module, *args, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        df = module.build_manifest(*args, progress=False, **kwargs)
    return df, [str(w.message) for w in caught]


def test_a_hub_repository_as_downloaded(tmp_path):
    root = sources.hf_parquet(tmp_path / "emotion-speech", HUB)
    out = tmp_path / "data" / "hf.csv"
    df, said = build(hf, root, out, emotion="emotion", speaker="speaker_id", label_map=["other:-"])
    # by hand from HUB: shard by shard, the label words as codes, the split from data/{split}-NNNNN-of-NNNNN
    got = {r.utt_id: (r.emotion, r.speaker, r.split, r.duration_s) for r in df.itertuples()}
    assert got == {"spk1_0001": ("ang", "spk1", "train", 0.5), "spk1_0002": ("hap", "spk1", "train", 0.25),
                   "spk2_0001": ("neu", "spk2", "train", 0.4), "spk2_0002": ("sad", "spk2", "train", 0.3),
                   "spk2_0003": ("sur", "spk2", "train", 0.2), "spk3_0001": ("ang", "spk3", "test", 0.35)}
    assert df.attrs["left_out"] == {"labels left out by --label-map": 1} and not said
    written = {r.utt_id: sf.info(r.path) for r in df.itertuples()}
    assert {(i.samplerate, i.channels) for k, i in written.items() if k != "spk1_0002"} == {(44_100, 1)}
    assert (written["spk1_0002"].samplerate, written["spk1_0002"].channels) == (44_100, 2)  # the file as it was
    assert set(df.path.map(lambda p: p.rsplit("/", 2)[-2])) == {"train", "test"}
    assert all(p.startswith(str(tmp_path / "data" / "hf-audio")) for p in df.path)
    assert list(read_manifest(out).columns)[-1] == "split"
    stamps = {p: (tmp_path / p).stat().st_mtime_ns for p in df.path}
    build(hf, root, out, emotion="emotion", speaker="speaker_id", label_map=["other:-"])  # a rerun writes nothing
    assert {p: (tmp_path / p).stat().st_mtime_ns for p in df.path} == stamps


NAMES = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]  # a ClassLabel's


def test_a_save_to_disk_folder_with_a_class_label(tmp_path):
    in_place = sources.write(tmp_path / "clips" / "03-01-02-01-01-01-07.wav", 0.3, 48_000, 2)
    splits = {"train": [row("03-01-05-01-01-01-01.wav", 4, "1"), row("03-01-06-01-01-01-02.wav", 5, "2"),
                        row("x.wav", -1, "2"), row("03-01-02-01-01-01-07.wav", 1, "7", bytes=False,
                                                    path=str(in_place))],
              "validation": [row("03-01-03-01-01-01-03.wav", 2, "3")],
              "test": [row("03-01-08-01-01-01-04.wav", 7, "4"), row("03-01-01-01-01-01-04.wav", 0, "4")]}
    root = sources.hf_saved(tmp_path / "ravdess_hf", splits, names=NAMES)
    df, _ = build(hf, root, tmp_path / "ravdess.csv", emotion="label", speaker="actor")
    # the integers named by the ClassLabel (4 angry, 5 fearful, 1 calm, 2 happy, 7 surprised, 0 neutral); -1 is
    # a row without a label; the row without bytes is read where its path points
    got = {r.utt_id: (r.emotion, r.speaker, r.split) for r in df.itertuples()}
    assert got == {"03-01-05-01-01-01-01": ("ang", "1", "train"), "03-01-06-01-01-01-02": ("fea", "2", "train"),
                   "03-01-02-01-01-01-07": ("cal", "7", "train"), "03-01-03-01-01-01-03": ("hap", "3", "validation"),
                   "03-01-08-01-01-01-04": ("sur", "4", "test"), "03-01-01-01-01-01-04": ("neu", "4", "test")}
    assert df.set_index("utt_id").loc["03-01-02-01-01-01-07", "path"] == str(in_place)
    assert sf.info(df.set_index("utt_id").loc["03-01-05-01-01-01-01", "path"]).samplerate == 48_000
    assert df.attrs["left_out"] == {"rows without a label": 1}


def test_a_split_column_and_a_choice_of_splits(tmp_path):
    shards = {"train": [[row("a1.wav", "angry", "ann", part="train"), row("b1.wav", "sad", "bob", part="test"),
                         row("a2.wav", "happy", "ann", part="train")]],
              "extra": [[row("c1.wav", "angry", "cem", part="test")]]}
    root = sources.hf_parquet(tmp_path / "ds", shards)
    with pytest.raises(ValueError, match=r"splits 'extra' are none of train.*--splits"):
        build(hf, root, tmp_path / "m.csv", emotion="emotion", speaker="speaker_id")
    assert not (tmp_path / "m-audio").exists()  # refused before a file is written
    df, _ = build(hf, root, tmp_path / "m.csv", emotion="emotion", speaker="speaker_id", splits=["train"])
    assert dict(zip(df.utt_id, df.split)) == {"a1": "train", "b1": "train", "a2": "train"}
    df, _ = build(hf, root, tmp_path / "n.csv", emotion="emotion", speaker="speaker_id", split="part")
    assert dict(zip(df.utt_id, df.split)) == {"a1": "train", "b1": "test", "a2": "train", "c1": "test"}


def test_without_a_card_the_shards_names_or_folders_say_the_split(tmp_path):
    shards = {"train": [[row("a1.wav", "angry", "ann")], [row("a2.wav", "sad", "ann")]],
              "test": [[row("b1.wav", "happy", "bob")]]}
    named = sources.hf_parquet(tmp_path / "named", shards)
    (named / "README.md").unlink()  # data/train-00000-of-00002.parquet: the split is the name before the numbers
    converted = sources.hf_parquet(tmp_path / "converted", shards)  # the Hub's Parquet conversion's layout:
    (converted / "README.md").unlink()  # default/<split>/0000.parquet
    for name, i, n in (("train", 0, 2), ("train", 1, 2), ("test", 0, 1)):
        (converted / "default" / name).mkdir(parents=True, exist_ok=True)
        (converted / "data" / f"{name}-{i:05d}-of-{n:05d}.parquet").rename(
            converted / "default" / name / f"{i:04d}.parquet")
    for folder in (named, converted):
        df, _ = build(hf, folder, tmp_path / f"{folder.name}.csv", emotion="emotion", speaker="speaker_id")
        assert dict(zip(df.utt_id, df.split)) == {"a1": "train", "a2": "train", "b1": "test"}, folder


def test_splits_that_share_a_speaker_are_not_kept(tmp_path):
    shards = {"train": [[row("a1.wav", "angry", "ann"), row("b1.wav", "sad", "bob")]],
              "test": [[row("a2.wav", "happy", "ann"), row("u1.wav", "sad", "")]]}
    df, said = build(hf, sources.hf_parquet(tmp_path / "ds", shards), tmp_path / "m.csv", emotion="emotion",
                     speaker="speaker_id")
    assert "split" not in df and any("1 speakers are in two of its splits (ann)" in s for s in said)
    assert dict(zip(df.utt_id, df.speaker)) == {"a1": "ann", "b1": "bob", "a2": "ann", "u1": "unknown-u1"}


# ---------------------------------------------------------------- audformat: a segmented emotion table

SEGMENTS = [("audio/dialog01.wav", 0.0, 1.0, "anger", 0.8, "ann"),
            ("audio/dialog01.wav", 1.0, 2.5, "neutral", 1.0, "bob"),
            ("audio/dialog02.wav", 0.5, 1.5, "happiness", 0.6, "cem"),
            ("audio/dialog02.wav", 1.5, None, "sadness", 0.9, "ann")]
FILES = {"audio/dialog01.wav": (3.0, 48_000, 2), "audio/dialog02.wav": (3.0, 44_100, 1)}
GENDERS = {"ann": "female", "bob": "male", "cem": "female"}


@pytest.mark.parametrize("storage", ["csv", "parquet"])
def test_an_audformat_database_with_a_segmented_table(tmp_path, storage):
    root = sources.audformat_db(tmp_path / "dialogues", SEGMENTS, GENDERS, FILES, storage)
    df, _ = build(audformat, root, tmp_path / "af.csv")
    # by hand: each segment its own file, its length end - start (the last runs to the file's end, 3.0 s)
    got = {r.utt_id: (r.emotion, r.speaker, r.gender, r.confidence, r.duration_s) for r in df.itertuples()}
    assert got == {"dialog01_0_1000": ("ang", "ann", "F", 0.8, 1.0),
                   "dialog01_1000_2500": ("neu", "bob", "M", 1.0, 1.5),
                   "dialog02_500_1500": ("hap", "cem", "F", 0.6, 1.0),
                   "dialog02_1500_end": ("sad", "ann", "F", 0.9, 1.5)}
    cut = df.set_index("utt_id").loc["dialog01_1000_2500", "path"]
    assert (sf.info(cut).samplerate, sf.info(cut).channels) == (48_000, 2)
    whole, _ = sf.read(root / "audio" / "dialog01.wav", dtype="int16")
    part, _ = sf.read(cut, dtype="int16")
    assert np.array_equal(part, whole[48_000:120_000])  # samples 1.0 s · 48 kHz up to 2.5 s · 48 kHz
    assert read_manifest(tmp_path / "af.csv")["confidence"].tolist() == [0.8, 1.0, 0.9, 0.6]


def test_a_filewise_table_is_read_in_place_and_the_table_must_be_said_when_two_hold_the_column(tmp_path):
    import audformat as af
    root = tmp_path / "emodb"
    for stem in ("03a01Fa", "03a01Wa", "08a02Tb"):
        sources.write(root / "wav" / f"{stem}.wav", 0.2)
    db = af.Database("emodb")
    db.schemes["emotion"] = af.Scheme(labels=["anger", "happiness", "sadness"])
    db.schemes["speaker"] = af.Scheme("str")
    files = ["wav/03a01Fa.wav", "wav/03a01Wa.wav", "wav/08a02Tb.wav"]
    db["files"] = af.Table(af.filewise_index(files))
    db["files"]["speaker"] = af.Column(scheme_id="speaker")
    db["files"]["speaker"].set(["03", "03", "08"])
    for name, picked in (("emotion", files), ("emotion.categories.test.gold_standard", files[2:])):
        db[name] = af.Table(af.filewise_index(picked))
        db[name]["emotion"] = af.Column(scheme_id="emotion")
        db[name]["emotion"].set(["happiness", "anger", "sadness"][-len(picked):])
    db.save(str(root))
    df, _ = build(audformat, root, tmp_path / "e.csv")  # two tables hold "emotion": the one named like it
    assert {r.utt_id: (r.emotion, r.speaker, r.path) for r in df.itertuples()} == {
        "03a01Fa": ("hap", "03", str(root / "wav" / "03a01Fa.wav")),
        "03a01Wa": ("ang", "03", str(root / "wav" / "03a01Wa.wav")),
        "08a02Tb": ("sad", "08", str(root / "wav" / "08a02Tb.wav"))}
    assert "confidence" not in df
    with pytest.raises(ValueError, match=r"no column 'emotion.x' \(--column\); its columns: emotion"):
        build(audformat, root, tmp_path / "e.csv", table="emotion", column="emotion.x")
    with pytest.raises(ValueError, match=r"no table 'nope' \(--table\); its tables: .*files \(speaker\)"):
        build(audformat, root, tmp_path / "e.csv", table="nope")


# ---------------------------------------------------------------- EmoBox: IEMOCAP's folds, speakers by name

IEMOCAP = [("Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_F000.wav", "neu", 1),
           ("Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_M000.wav", "exc", 1),
           ("Session1/sentences/wav/Ses01M_script01_1/Ses01M_script01_1_F004.wav", "sad", 1),
           ("Session2/sentences/wav/Ses02F_impro05a/Ses02F_impro05a_M011.wav", "ang", 2),
           ("Session2/sentences/wav/Ses02M_impro08b/Ses02M_impro08b_F002.wav", "hap", 2),
           ("Session3/sentences/wav/Ses03M_impro03/Ses03M_impro03_M001.wav", "neu", 3)]


def test_emobox_iemocap_folds_speakers_and_merged_labels(tmp_path):
    root = sources.emobox(tmp_path / "EmoBox", "iemocap", IEMOCAP, sources.IEMOCAP_MAP)
    df, said = build(emobox, root, "iemocap", tmp_path / "emobox.csv")
    # by hand: fold k is the test file of fold_k; the speaker is the session and the letter of the last part
    # (Ses01F_impro01_M000: session 1's man); exc is Happy in EmoBox's label_map.json
    got = {r.utt_id: (r.fold, r.speaker, r.gender, r.emotion) for r in df.itertuples()}
    assert got == {"iemocap-Ses01F_impro01_F000": ("fold1", "Ses01F", "F", "neu"),
                   "iemocap-Ses01F_impro01_M000": ("fold1", "Ses01M", "M", "hap"),
                   "iemocap-Ses01M_script01_1_F004": ("fold1", "Ses01F", "F", "sad"),
                   "iemocap-Ses02F_impro05a_M011": ("fold2", "Ses02M", "M", "ang"),
                   "iemocap-Ses02M_impro08b_F002": ("fold2", "Ses02F", "F", "hap"),
                   "iemocap-Ses03M_impro03_M001": ("fold3", "Ses03M", "M", "neu")}
    assert not said and df.path.str.contains("/downloads/iemocap/Session").all()
    assert sorted(read_manifest(tmp_path / "emobox.csv").fold.unique()) == ["fold1", "fold2", "fold3"]


def test_given_folds_test_on_their_rows_and_validate_on_the_others_only():
    import pandas as pd
    rows = [dict(utt_id=f"{s}-{e}-{i}", speaker=s, emotion=e, fold=f) for s, f in
            (("a", "fold1"), ("b", "fold1"), ("c", "fold2"), ("d", "fold3"), ("e", "")) for e in ("neu", "ang")
            for i in range(5)]
    manifest = pd.DataFrame(rows)
    folds = make_folds(manifest, protocol="folds", val_fraction=0.2)
    assert [f.name for f in folds] == ["fold1", "fold2", "fold3"]
    for f in folds:
        parts = split(manifest, f)
        tested = {"fold1": {"a", "b"}, "fold2": {"c"}, "fold3": {"d"}}[f.name]  # by hand from the rows above
        assert set(parts["test"].speaker) == tested and len(parts["test"]) == 10 * len(tested)
        assert not (set(parts["train"].speaker) | set(parts["val"].speaker)) & tested
        assert "e" in set(parts["train"].speaker)  # in no fold's test set: trains in every fold
        # a fifth of each speaker × emotion validates: one of five
        assert (parts["val"].groupby(["speaker", "emotion"]).size() == 1).all()
        assert len(parts["val"]) == 2 * (5 - len(tested))


def test_emobox_without_speakers_validates_by_utterance(tmp_path):
    utterances = [(f"{'OAF' if k < 6 else 'YAF'}_word{k}_{e}.wav", e, 1 + k % 2) for k in range(12)
                  for e in ("angry", "sad")]
    root = sources.emobox(tmp_path / "EmoBox", "tess", utterances, {"angry": "Angry", "sad": "Sad"})
    df, _ = build(emobox, root, "tess", tmp_path / "tess.csv")
    assert df.speaker.str.startswith("unknown-tess-").all() and len(set(df.speaker)) == 24
    fold1 = next(f for f in make_folds(df, protocol="folds") if f.name == "fold1")
    parts = split(df, fold1)
    # fold 2's 12 utterances train: 6 of each emotion, a fifth of each (round(1.2) = 1) validates
    assert len(parts["test"]) == 12 and parts["val"].emotion.value_counts().to_dict() == {"ang": 1, "sad": 1}


def test_emobox_folds_that_share_speakers_are_run_as_given_and_said(tmp_path):
    utterances = [("wav/03a01Wa.wav", "anger", 1), ("wav/03a02Wb.wav", "anger", 2), ("wav/08a01Ta.wav", "sad", 1)]
    root = sources.emobox(tmp_path / "EmoBox", "emodb", utterances, {"anger": "Angry", "sad": "Sad"})
    df, said = build(emobox, root, "emodb", tmp_path / "emodb.csv")
    assert dict(zip(df.utt_id, zip(df.speaker, df.fold))) == {
        "emodb-03a01Wa": ("03", "fold1"), "emodb-03a02Wb": ("03", "fold2"), "emodb-08a01Ta": ("08", "fold1")}
    assert any("fold1: 1 of its test speakers also train in it (03)" in s for s in said)


# ---------------------------------------------------------------- mistakes: one line, exit 2, nothing written

def _folders(t):
    sources.hf_parquet(t / "hub", HUB)
    sources.audformat_db(t / "af", SEGMENTS[:2], GENDERS, {"audio/dialog01.wav": (3.0, 48_000, 2)})
    root = sources.emobox(t / "EmoBox", "iemocap", IEMOCAP[:2] + IEMOCAP[3:4], sources.IEMOCAP_MAP)
    (root / "data" / "iemocap" / "label_map.json").write_text(json.dumps({"neu": "Neutral", "exc": "Excited",
                                                                          "ang": "Angry"}))
    sources.emobox(t / "EmoBox2", "iemocap", IEMOCAP[:1] + IEMOCAP[3:4], sources.IEMOCAP_MAP)
    (t / "EmoBox2" / "data" / "iemocap" / "fold_2" / "iemocap_train_fold_2.jsonl").unlink()
    (t / "plain").mkdir()
    (t / "plain" / "notes.csv").write_text("a,b\n")


HUB_ARGS = ["data", "hf", "--root", "T/hub", "--out", "T/o.csv", "--speaker", "speaker_id"]
MISTAKES = [
    (["data", "hf", "--root", "T/plain", "--out", "T/o.csv", "--emotion", "e", "--speaker", "s"], "Parquet shards"),
    (HUB_ARGS + ["--emotion", "label"], "no column 'label' (--emotion); its columns: audio, emotion, speaker_id"),
    (HUB_ARGS + ["--emotion", "emotion"], "labels 'other' (1) are not emotion codes"),
    (HUB_ARGS + ["--emotion", "emotion", "--label-map", "other:xyz"], "other:xyz"),
    (HUB_ARGS + ["--emotion", "emotion", "--splits", "dev"], "no split dev (--splits); its splits: test, train"),
    (["data", "audformat", "--root", "T/plain", "--out", "T/o.csv"], "no db.yaml inside"),
    (["data", "audformat", "--root", "T/af", "--out", "T/o.csv", "--column", "mood"],
     "no table has a column 'mood' (--column); its tables: emotion (emotion, emotion.confidence, speaker)"),
    (["data", "emobox", "--root", "T/plain", "--corpus", "iemocap", "--out", "T/o.csv"], "no data inside"),
    (["data", "emobox", "--root", "T/EmoBox", "--corpus", "cremad", "--out", "T/o.csv"], "its corpora: iemocap"),
    (["data", "emobox", "--root", "T/EmoBox", "--corpus", "iemocap", "--out", "T/o.csv"],
     "labels 'Excited' (1) are not emotion codes"),
    (["data", "emobox", "--root", "T/EmoBox2", "--corpus", "iemocap", "--out", "T/o.csv"],
     "data/iemocap/fold_2/iemocap_train_fold_2.jsonl"),
]


@pytest.mark.parametrize("args, named", MISTAKES, ids=[f"{a[1]} [{n[:30]}]" for a, n in MISTAKES])
def test_a_mistake_is_one_line_and_exit_2_and_writes_nothing(args, named, tmp_path, capsys):
    _folders(tmp_path)
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(SystemExit) as exit_:
        main([a.replace("T/", f"{tmp_path}/") for a in args])
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and len(err.splitlines()) == 1 and named in err, err
    assert sorted(tmp_path.rglob("*")) == before
