"""The data step's small answers pinned: the fold settings it passes on, where the rooms go, the line that says the
unseen-noise family was left out, the study's folds, and a fold's parts at a trial's size with the noise types it
trains and tests on and the other corpora it is scored on."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import soundfile as sf
from helpers.corpora import voice

from mlkd_lib.config import make_config, with_overrides
from mlkd_lib.data.folds import get_fold, split
from mlkd_lib.data.prepare import (
    _stamp,
    fold_names,
    load_fold,
    no_unseen_noise,
    planned_corpus,
    prepare_test_corpus,
    protocol_of,
    rir_bank_dir,
    study_manifest,
)
from mlkd_lib.data.prepare import test_corpus_dir as corpus_dir  # not a test


def test_the_fold_settings_the_rooms_folder_and_the_unseen_noise_line():
    cfg = make_config("micro", protocol="kfold", n_folds=3, validation="speaker", val_fraction=0.3,
                      n_val_speakers=2, seed=5, data_dir="/data/x")
    assert protocol_of(cfg) == dict(protocol="kfold", n_folds=3, validation="speaker", val_fraction=0.3,
                                    n_val_speakers=2, seed=5)
    assert rir_bank_dir(cfg) == Path("/data/x/rirs")
    assert no_unseen_noise(cfg) == ("unseen noise: none — the noise collection (the synthetic noises) has no type "
                                    "beyond noise_types (babble, factory), so the unseen-noise family is left out")
    named = with_overrides(cfg, noise_dir="/noise/musan")
    assert no_unseen_noise(named).startswith("unseen noise: none — the noise collection (/noise/musan) has no type")
    assert no_unseen_noise(with_overrides(cfg, unseen_noise_types=["music"])) is None


@pytest.fixture
def study(micro_data, tmp_path):
    """The micro corpus and noise bank (linked) under a data folder of its own, with another corpus of two neutral
    and two angry utterances prepared beside it."""
    cfg, _, _ = micro_data
    data = tmp_path / "data"
    data.mkdir()
    for name in ("synthetic", "noise"):
        (data / name).symlink_to(Path(cfg.data_dir) / name, target_is_directory=True)
    other = tmp_path / "other"
    other.mkdir()
    rows = [(f"o{k}.wav", emotion, f"x{k % 2}") for k, emotion in enumerate(["neu", "neu", "ang", "ang"])]
    for k, (name, _, _) in enumerate(rows):  # the last at 48 kHz, as a corpus may ship: converted
        rate = 48_000 if k == 3 else 16_000
        sf.write(other / name, voice(0.5, rate, 140.0 + 20 * k, seed=k), rate)
    pd.DataFrame(rows, columns=["path", "emotion", "speaker"]).to_csv(other / "other.csv", index=False)
    cfg = with_overrides(cfg, data_dir=str(data), test_manifests=[str(other / "other.csv")])
    prepare_test_corpus(cfg, other / "other.csv", progress=False)
    return cfg


def test_another_corpus_is_kept_under_test_corpora_with_the_stamp_it_is_made_again_by(study):
    table = Path(study.test_manifests[0])
    folder = Path(study.data_dir) / "test-corpora" / "other"
    assert corpus_dir(study, "other") == folder and (folder / "corpus.csv").is_file()
    stat = table.stat()
    assert json.loads((folder / "stamp.json").read_text()) == {
        "manifest": str(table), "file": [stat.st_size, stat.st_mtime_ns], "emotions": ["neu", "hap", "ang", "sad"],
        "label_map": []}
    paths = pd.read_csv(folder / "manifest.csv").path.tolist()
    assert [Path(p).parent == folder / "audio-16k" for p in paths] == [False, False, False, True]  # the 48 kHz one
    listed = (folder / "corpus.csv").stat().st_mtime_ns
    prepare_test_corpus(study, table, progress=False)
    assert (folder / "corpus.csv").stat().st_mtime_ns == listed  # nothing changed: the listing kept
    for gone in ("corpus.csv", "stamp.json"):  # either lost: made again
        (folder / gone).unlink()
        prepare_test_corpus(study, table, progress=False)
        assert (folder / "corpus.csv").is_file() and (folder / "stamp.json").is_file()
    fear = table.with_name("fear.csv")
    fear.write_text("path,emotion,speaker\no0.wav,fear,x0\n")
    with pytest.raises(ValueError, match=f"^test corpus {fear}: no utterance of the study's classes"):
        prepare_test_corpus(study, fear, progress=False)


def test_the_planned_corpus_is_the_listing_the_data_step_made_where_nothing_changed(tmp_path):
    cfg = make_config("micro", data_dir=str(tmp_path / "data"))
    assert planned_corpus(cfg) is None  # a synthetic corpus not made yet
    listing = cfg.manifest_path.with_name("corpus.csv")
    listing.parent.mkdir(parents=True)
    listing.write_text("utt_id,path,emotion,speaker,session,gender,duration_s,corpus\nu1,/a/u1.wav,neu,S1,1,F,1.5,x\n")
    cfg.manifest_path.write_text(listing.read_text())
    cfg.noise_bank_dir.mkdir(parents=True)
    (tmp_path / "data" / "data_stamp.json").write_text(json.dumps(_stamp(cfg)))
    assert planned_corpus(cfg)[["utt_id", "path", "emotion", "speaker"]].values.tolist() == [
        ["u1", "/a/u1.wav", "neu", "S1"]]


def test_the_studys_folds_are_its_protocols_or_those_named(study):
    speakers = sorted(set(study_manifest(study).speaker))
    assert fold_names(study) == speakers and len(speakers) == 10
    assert fold_names(with_overrides(study, folds=speakers[:2])) == speakers[:2]
    with pytest.raises(ValueError, match=r"^folds \['Nobody'\] are not folds of the study; its folds: \["):
        fold_names(with_overrides(study, folds=[speakers[0], "Nobody"]))


def test_a_fold_at_a_trials_size_with_its_noise_and_other_corpora(study):
    cfg = with_overrides(study, protocol="kfold", n_folds=2, validation="speaker", n_val_speakers=2, seed=3,
                         fold_utterances=1)
    data = load_fold(cfg, "fold1")
    manifest = study_manifest(cfg)
    fold = get_fold(manifest, "fold1", protocol="kfold", n_folds=2, validation="speaker", val_fraction=0.2,
                    n_val_speakers=2, seed=3)
    assert data.fold == fold and len(fold.val_speakers) == 2 and len(fold.test_speakers) == 5
    for name, whole in split(manifest, fold).items():
        part = getattr(data, name)
        assert set(part.utt_id) <= set(whole.utt_id) and part.emotion.value_counts().to_dict() == {
            e: 1 for e in ("neu", "hap", "ang", "sad")}  # one of each class: at most fold_utterances
    assert sorted(data.noise_bank) == sorted(data.train_noise) == ["babble", "factory"]  # of the 5 in the bank
    assert data.rirs == {} and list(data.test_corpora) == ["other"]
    assert data.test_corpora["other"].emotion.value_counts().to_dict() == {"neu": 1, "ang": 1}
    again = load_fold(cfg, "fold1")  # drawn by the study's seed: the same utterances each time
    assert all(list(getattr(again, k).utt_id) == list(getattr(data, k).utt_id) for k in ("train", "val", "test"))
    assert list(again.test_corpora["other"].utt_id) == list(data.test_corpora["other"].utt_id)
    whole = load_fold(with_overrides(cfg, fold_utterances=0), "fold1")
    assert len(whole.test_corpora["other"]) == 4 and len(whole.train) > 4
