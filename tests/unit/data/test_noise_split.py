"""The noise split: students train on the start of each noise recording, the test conditions
draw from its end, so no test segment was heard in training."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from mlkd_lib.data import mixing, prepare
from mlkd_lib.data.audio import SAMPLE_RATE, write_audio
from mlkd_lib.data.conditions.families import Condition, heard
from mlkd_lib.data.dataset import NoisyPairDataset
from mlkd_lib.data.noise.bank import split_noise
from mlkd_lib.layout import ModelDir, StudyLayout
from mlkd_lib.study import notebook


def ramp(seconds: float) -> np.ndarray:
    """A 'recording' whose every sample says where it is (1, 2, 3, ...), exact in float32."""
    return np.arange(1, int(seconds * SAMPLE_RATE) + 1, dtype=np.float32)


@pytest.fixture
def segments(monkeypatch):
    """Every noise segment mixed in, as drawn."""
    drawn, real = [], mixing.noise_segment

    def spy(noise, n, rng):
        drawn.append(real(noise, n, rng))
        return drawn[-1]

    monkeypatch.setattr(mixing, "noise_segment", spy)
    return drawn


def test_split_cuts_each_recording_at_the_fraction_without_overlap():
    bank = {"factory": ramp(6.0), "babble": ramp(3.0)}
    train, test = split_noise(bank, 2 / 3)
    assert len(train["factory"]) == 4 * SAMPLE_RATE and len(test["factory"]) == 2 * SAMPLE_RATE
    assert train["babble"].max() < test["babble"].min()
    np.testing.assert_array_equal(np.concatenate([train["factory"], test["factory"]]), bank["factory"])
    same_train, same_test = split_noise(bank, 1.0)
    assert same_train["factory"] is bank["factory"] and same_test["factory"] is bank["factory"]
    with pytest.raises(ValueError, match="too short"):
        split_noise({"f16": ramp(1.2)}, 2 / 3)


def test_a_fold_trains_on_the_start_and_tests_on_the_end_of_each_recording(micro_data, tmp_path, segments):
    cfg, manifest, _ = micro_data
    noise_dir = tmp_path / "noise"
    for kind in cfg.noise_types:
        write_audio(noise_dir / f"{kind}.wav", ramp(5.0) / 1e6, subtype="FLOAT")  # positions, scaled into range
    corpus = cfg.manifest_path.parent
    cfg = dataclasses.replace(cfg, data_dir=str(tmp_path), conditions=[])  # the trained noise only
    (tmp_path / "synthetic").symlink_to(corpus)  # the same corpus, with the ramp noises
    data = prepare.load_fold(cfg, "Ses01F")
    cut = int(round(cfg.noise_train_fraction * 5 * SAMPLE_RATE))
    train_ds = NoisyPairDataset(data.train.head(8), data.train_noise, "random", cfg.snrs, cfg.seed)
    for i in range(len(train_ds)):
        train_ds[i]
    heard_in_training = np.concatenate(segments)
    segments.clear()
    for r in data.test.head(8).itertuples():
        clean = train_ds.audio.get(r.utt_id, r.path)
        for kind in cfg.noise_types:
            heard(clean, r.utt_id, Condition(kind, 0.0), data.noise_bank, None, cfg.seed, cfg.level)
    heard_in_test = np.concatenate(segments)
    trained, tested = (np.rint(x * 1e6).astype(int) for x in (heard_in_training, heard_in_test))  # sample positions
    assert trained.max() <= cut < tested.min()


def test_a_students_step_trains_on_the_training_part(micro_data, tmp_path, monkeypatch):
    cfg, _, _ = micro_data
    step = notebook.FoldStep(cfg, StudyLayout(tmp_path), ModelDir(tmp_path / "student_unsup"),
                             prepare.load_fold(cfg, "Ses01F"))
    seen = {}
    monkeypatch.setattr(notebook, "train", lambda *a, noise_bank=None, teacher=None, **_: seen.update(bank=noise_bank))
    step.train(teacher="a teacher")
    assert seen["bank"] is step.data.train_noise and seen["bank"] is not step.data.noise_bank
