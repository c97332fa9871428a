"""The data step's small answers pinned: the fold settings it passes on, where the rooms go, the line that says the
unseen-noise family was left out, the study's folds, and a fold's parts at a trial's size with the noise types it
trains and tests on and the other corpora it is scored on."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from helpers.corpora import voice

from mlkd_lib.config import make_config, with_overrides
from mlkd_lib.data.folds import get_fold, split
from mlkd_lib.data.ownership import READY
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
    assert fold_names(with_overrides(study, protocol="kfold", n_folds=3)) == ["fold1", "fold2", "fold3"]
    with pytest.raises(ValueError, match=r"^folds \['Nobody'\] are not folds of the study; its folds: \["):
        fold_names(with_overrides(study, folds=[speakers[0], "Nobody"]))


def test_a_fold_at_a_trials_size_with_its_noise_and_other_corpora(study):
    cfg = with_overrides(study, protocol="kfold", n_folds=2, validation="speaker", n_val_speakers=2, seed=3,
                         fold_utterances=1)
    room = rir_bank_dir(cfg) / "rt60-0.3"  # rooms another setup of the folder made: this one scores none
    room.mkdir(parents=True)
    sf.write(room / "00.wav", np.ones(160, np.float32), 16_000)
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


def _table_corpus(folder: Path) -> Path:
    """Two speakers × neu / ang × 2 utterances of 16 kHz mono (nothing to convert), and a noise folder of three
    types."""
    rows = ["path,emotion,speaker"]
    for k, (speaker, code) in enumerate((s, c) for s in ("ann", "bob") for c in ("neu", "ang", "neu", "ang")):
        sf.write(folder / f"{speaker}{k}.wav", voice(0.5, 16_000, 140.0 + 10 * k, seed=k), 16_000)
        rows.append(f"{speaker}{k}.wav,{code},{speaker}")
    (folder / "noise").mkdir()
    for kind in ("hum", "hiss", "buzz"):
        sf.write(folder / "noise" / f"{kind}.wav", np.full(8_000, 0.01 * len(kind), np.float32), 16_000)
    (folder / "own.csv").write_text("\n".join(rows) + "\n")
    return folder / "own.csv"


def test_the_data_step_stamps_what_it_made_holds_the_folder_while_it_runs_and_remakes_rooms_only_when_asked(
        tmp_path, monkeypatch):
    from mlkd_lib.data import prepare
    from mlkd_lib.data.conditions import reverb
    from mlkd_lib.data.ownership import holds
    table = _table_corpus(tmp_path)
    other = tmp_path / "other.csv"
    other.write_text("path,emotion,speaker\nann0.wav,neu,x\n")
    cfg = make_config("micro", corpus="manifest", manifest=str(table), noise_dir=str(tmp_path / "noise"),
                      noise_types=["hum", "hiss"], conditions=["reverb"], rir_rooms=2, synth_seed=4,
                      emotions=["neu", "ang"], data_dir=str(tmp_path / "data"), test_manifests=[str(other)])
    rooms, seen = [], []
    monkeypatch.setattr(reverb, "write_rir_bank", lambda *a: rooms.append(a) or Path(a[0]).mkdir(parents=True))
    real = prepare._prepare
    monkeypatch.setattr(prepare, "_prepare", lambda c, p: seen.append(holds(c.data_dir)) or real(c, p))
    study = tmp_path / "results" / "own"
    assert prepare.prepare_data(cfg, progress=False, study=study) == {"manifest": cfg.manifest_path,
                                                                     "noise_dir": cfg.noise_bank_dir}
    assert seen[0]["state"] == "building" and seen[0]["study"] == str(study) and seen[0]["identity"] == \
        prepare.data_identity(cfg)  # the folder says, while it is made, for whom and what
    assert holds(cfg.data_dir)["state"] == READY
    stat = table.stat()
    stamp = {"corpus": "manifest", "iemocap_root": "", "manifest": str(table), "noise_dir": str(tmp_path / "noise"),
             "noisex_dir": "", "synth_per_class": cfg.synth_per_class, "synth_seed": 4,
             "noise_seconds": cfg.noise_seconds, "noise_types": ["hum", "hiss"],
             "manifest_file": [stat.st_size, stat.st_mtime_ns]}
    assert (tmp_path / "data" / "data_stamp.json").read_text() == json.dumps(stamp, indent=2)
    assert sorted(p.stem for p in cfg.noise_bank_dir.iterdir()) == ["hiss", "hum"]  # the bank's types, not buzz
    assert pd.read_csv(tmp_path / "data" / "test-corpora" / "other" / "manifest.csv").emotion.tolist() == ["neu"]
    synthetic = with_overrides(cfg, corpus="synthetic")  # a table named but not read: its file is not stamped
    assert "manifest_file" not in prepare._stamp(synthetic) and prepare._stamp(cfg)["manifest_file"] == [
        stat.st_size, stat.st_mtime_ns]
    assert rooms == [(prepare.rir_bank_dir(cfg), reverb.SEVERITIES, 2, 4, "")]
    assert json.loads((prepare.rir_bank_dir(cfg) / "stamp.json").read_text()) == {"rir_dir": "", "rooms": 2,
                                                                                  "seed": 4}
    held = (tmp_path / "data" / "data.json").stat().st_mtime_ns
    prepare.prepare_data(cfg, progress=False, study=study)  # the same again: nothing remade, the record kept
    assert len(rooms) == 1 and (tmp_path / "data" / "data.json").stat().st_mtime_ns == held
    (prepare.rir_bank_dir(cfg) / "old.wav").write_bytes(b"")
    prepare.prepare_data(with_overrides(cfg, rir_rooms=3), progress=False)  # other rooms: the old ones cleared
    assert rooms[1][2] == 3 and not (prepare.rir_bank_dir(cfg) / "old.wav").exists()
    with pytest.raises(ValueError, match=f"^{cfg.manifest_path.with_name('corpus.csv')}: no utterance of the class"):
        prepare.prepare_data(with_overrides(cfg, emotions=["neu", "sad"]), progress=False)


def test_each_corpus_is_listed_by_its_own_recipe(tmp_path, monkeypatch):
    import types

    from mlkd_lib.data import prepare
    asked = []
    monkeypatch.setattr(prepare, "make_synthetic_corpus", lambda *a, **k: asked.append((a, k)) or "synthetic")
    monkeypatch.setattr(prepare.iemocap, "build_manifest", lambda *a, **k: asked.append((a, k)) or "iemocap")
    cfg = make_config("micro", data_dir=str(tmp_path), synth_seed=3, synth_per_class=2)
    assert prepare.corpus_listing(cfg, progress=False) == "synthetic"
    assert prepare.corpus_listing(with_overrides(cfg, corpus="iemocap", iemocap_root="/c/IEMOCAP"),
                                  progress=False) == "iemocap"
    assert asked == [((tmp_path / "synthetic", 3, 2), {"progress": False}), (("/c/IEMOCAP",), {"progress": False})]
    with pytest.raises(ValueError, match=r"^corpus must be 'synthetic', 'iemocap' or 'manifest', got 'tess'$"):
        prepare.corpus_listing(types.SimpleNamespace(corpus="tess"))
    assert prepare.audio_cache_dir(cfg) == tmp_path / "synthetic" / "audio-16k"


def test_a_class_the_table_lacks_is_named_with_the_tables_labels_and_the_rows_keep_their_columns(tmp_path):
    from mlkd_lib.data.prepare import load_test_corpora, pick_classes
    rows = pd.DataFrame({"utt_id": ["a", "b", "c", "d"], "emotion": ["neu", "exc", "neu", "fru"]})
    cfg = make_config("micro", emotions=["neu", "hap", "ang", "sad"], label_map=["exc:hap"])
    with pytest.raises(ValueError) as refused:
        pick_classes(rows, cfg, "t.csv")
    assert str(refused.value) == ("t.csv: no utterance of the class(es) ang, sad of emotions=neu,hap,ang,sad; the "
                                  "manifest's labels: neu (2), hap (1), fru (1) (label_map merges RAW:CODE)")
    kept = pick_classes(rows, with_overrides(cfg, emotions=["neu", "hap"]), "t.csv")
    assert list(kept.columns) == ["utt_id", "emotion"] and kept.values.tolist() == [["a", "neu"], ["b", "hap"],
                                                                                    ["c", "neu"]]
    missing = make_config("micro", data_dir=str(tmp_path), test_manifests=[str(tmp_path / "emodb.csv")])
    with pytest.raises(FileNotFoundError) as absent:
        load_test_corpora(missing)
    assert str(absent.value) == (f"{tmp_path}/test-corpora/emodb/manifest.csv: the test corpus emodb is not prepared: "
                                 "run the study's data step")


def test_the_studys_manifest_names_itself_when_a_class_is_missing(study):
    with pytest.raises(ValueError, match=f"^{study.manifest_path}: no utterance of the class"):
        study_manifest(with_overrides(study, emotions=["neu", "fea"]))
