"""A fold's test audio under the signal conditions, made by its first step and read back by the others: a model hears
the same arrays either way, a file made otherwise is never used, and the folder goes with the fold's last step."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from transformers import Wav2Vec2Config

from mlkd_lib.arms import study_arms
from mlkd_lib.data import dataset
from mlkd_lib.data.audio import read_audio
from mlkd_lib.data.conditions.families import Condition, heard
from mlkd_lib.data.kept_audio import KeptAudio, keeps
from mlkd_lib.layout import StudyLayout, is_done
from mlkd_lib.method.evaluate import predict_condition
from mlkd_lib.method.models import MICRO, EmotionClassifier
from mlkd_lib.names import BASELINE, TEACHER
from mlkd_lib.study.notebook import FoldStep

FAR_FIELD = Condition("factory", 10.0, "reverb_noise", 0.6)
CODEC = Condition("codec", None, "codec", 8.0)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return EmotionClassifier(Wav2Vec2Config(**MICRO)).eval()


def _predict(model, cfg, data, condition, kept=None, transform=None):
    return predict_condition({"m": model}, data.test, condition, data.noise_bank, cfg.seed, cfg.level,
                             transform=transform, rirs=data.rirs, kept=kept)["m"]


def _store(cfg, folder, **changed):
    settings = dict(seed=cfg.seed, level=cfg.level, max_seconds=cfg.max_seconds) | changed
    return KeptAudio(folder, **settings)


def test_only_the_signal_conditions_are_kept():
    assert keeps(FAR_FIELD) and keeps(CODEC) and keeps(Condition("clipping", None, "clipping", 0.05))
    assert not keeps(Condition("clean")) and not keeps(Condition("factory", 5.0))
    assert not keeps(Condition("music", 5.0, "unseen_noise", 5.0))  # mixing costs less than reading it back


@pytest.mark.parametrize("condition", [FAR_FIELD, CODEC], ids=["far field", "codec"])
def test_a_model_hears_the_same_audio_whether_made_or_read_back(study_data, model, tmp_path, monkeypatch, condition):
    cfg, data = study_data
    made_here = _predict(model, cfg, data, condition)
    store = _store(cfg, tmp_path)
    first = _predict(model, cfg, data, condition, kept=store)  # makes the audio and keeps it
    assert store.path(condition).is_file()
    kept = store.load(condition, list(data.test.utt_id))
    for wave, r in zip(kept, data.test.itertuples()):
        clean = read_audio(r.path)[: int(cfg.max_seconds * 16_000)]
        fresh = heard(clean, r.utt_id, condition, data.noise_bank, data.rirs, cfg.seed, cfg.level)
        assert wave.dtype == fresh.dtype and np.array_equal(wave, fresh)

    def no_making(*_, **__):
        raise AssertionError("the kept audio was made again")

    monkeypatch.setattr(dataset, "heard", no_making)
    given = []
    read_back = _predict(model, cfg, data, condition, kept=store,
                         transform=lambda xs: given.extend(xs) or xs)  # the baseline's path reads it too
    for a in (first, read_back):
        assert a.equals(made_here)
    assert all(np.array_equal(h, k) for h, k in zip(given, kept))


def test_audio_kept_under_other_settings_or_for_other_utterances_is_not_used(study_data, tmp_path):
    cfg, data = study_data
    utts = list(data.test.utt_id)
    store = _store(cfg, tmp_path)
    store.save(CODEC, utts, [np.zeros(3, np.float32)] * len(utts))
    assert store.load(CODEC, utts) is not None
    assert _store(cfg, tmp_path, seed=cfg.seed + 1).load(CODEC, utts) is None
    assert _store(cfg, tmp_path, max_seconds=1.0).load(CODEC, utts) is None
    assert store.load(CODEC, utts[::-1]) is None and store.load(CODEC, utts[:-1]) is None
    assert store.load(Condition("codec", None, "codec", 16.0), utts) is None  # none made
    store.path(CODEC).write_bytes(b"half a file")  # damaged: made again, not a crash
    assert store.load(CODEC, utts) is None
    assert not list(tmp_path.glob(".*tmp*"))  # written under another name first, then renamed


def test_the_fold_s_kept_audio_goes_with_its_last_step(study_data, tmp_path):
    cfg, _ = study_data
    study = StudyLayout(tmp_path)
    fold = study.fold("Ses01F")
    models = [TEACHER, BASELINE, *study_arms(cfg)]
    data = SimpleNamespace(fold=SimpleNamespace(name="Ses01F"))
    for k, name in enumerate(models):
        for folder in fold.shared:  # the kept audio and the shared CNN outputs
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "x.npz").write_bytes(b"x")
        FoldStep(cfg, study, fold.model(name), data).finish()
        assert is_done(fold.model(name).path)
        assert fold.test_audio.exists() is fold.cnn_features.exists() is (k < len(models) - 1), name
    off = dataclasses.replace(cfg, keep_test_audio=False)
    assert FoldStep(off, study, fold.model(TEACHER), data).kept_audio() is None
