"""Synthetic corpus, noise bank, folds and the noisy-pair dataset."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import scipy.io

from mlkd_lib.data.conditions.families import Condition
from mlkd_lib.data.dataset import NoisyPairDataset, collate
from mlkd_lib.data.mixing import rms_level_db, speech_level_db
from mlkd_lib.data.noise.bank import load_noise_bank, write_noise_bank
from mlkd_lib.data.noise.collection import read_noise_file
from mlkd_lib.data.noise.synthetic import NOISE_TYPES, synthetic_bank
from mlkd_lib.data.synthetic import SPEAKERS, make_synthetic_corpus
from mlkd_lib.names import EMOTIONS


def _digest(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_synthetic_corpus_is_byte_identical_for_a_seed(tmp_path):
    two = SPEAKERS[:2]
    make_synthetic_corpus(tmp_path / "a", seed=3, per_class=1, speakers=two, progress=False)
    make_synthetic_corpus(tmp_path / "b", seed=3, per_class=1, speakers=two, progress=False)
    make_synthetic_corpus(tmp_path / "c", seed=4, per_class=1, speakers=two, progress=False)
    a, b, c = _digest(tmp_path / "a"), _digest(tmp_path / "b"), _digest(tmp_path / "c")
    assert a == b and len(a) == 2 * 4 + 1
    assert a != c


def test_synthetic_corpus_layout(micro_data):
    _, manifest, _ = micro_data
    assert manifest.speaker.nunique() == 10 and set(manifest.emotion) == set(EMOTIONS)
    assert (manifest.groupby(["speaker", "emotion"]).size() == 2).all()
    assert set(manifest.session) == {1, 2, 3, 4, 5}
    # emotions differ in prosody: sad is spoken slowest, angry fastest (on average)
    dur = manifest.groupby("emotion").duration_s.mean()
    assert dur["sad"] > dur["neu"] > dur["ang"]


def test_synthetic_noise_bank_has_the_character_of_its_namesakes():
    bank = synthetic_bank(seconds=4.0, seed=0)
    assert sorted(bank) == sorted(NOISE_TYPES)

    def band_share(x, lo, hi):
        spec = np.abs(np.fft.rfft(x)) ** 2
        f = np.fft.rfftfreq(len(x), 1 / 16_000)
        return spec[(f >= lo) & (f < hi)].sum() / spec.sum()

    assert band_share(bank["volvo"], 0, 500) > 0.9  # car cabin: low-frequency rumble
    assert band_share(bank["hfchannel"], 250, 3600) > 0.9  # radio channel: band-limited
    assert band_share(bank["f16"], 500, 8000) > 0.5  # cockpit: broadband
    assert band_share(bank["babble"], 100, 3000) > 0.8  # speech band


def test_noisex_mat_and_wav_files_are_read_and_resampled(tmp_path, rng):
    n = 19_980  # one second at NOISEX's rate
    noisex = tmp_path / "NOISEX-92"
    noisex.mkdir()
    for stem in ("babble", "f16", "factory1", "hfchannel"):
        scipy.io.savemat(noisex / f"{stem}.mat", {stem: (rng.standard_normal((n, 1)) * 3000).round()})
    import soundfile as sf
    sf.write(noisex / "volvo.wav", rng.standard_normal(n) * 0.1, n)
    sf.write(noisex / "pink.wav", rng.standard_normal(n) * 0.1, n)  # not one of the five: not written
    written = write_noise_bank(tmp_path / "bank", noisex, types=NOISE_TYPES)
    bank = load_noise_bank(tmp_path / "bank")
    assert sorted(bank) == sorted(written) == sorted(NOISE_TYPES)  # factory1 serves as factory
    assert all(abs(len(x) - 16_000) <= 1 for x in bank.values())
    assert np.max(np.abs(read_noise_file(noisex / "babble.mat"))) < 1.0  # 16-bit values scaled
    (noisex / "volvo.wav").unlink()
    with pytest.raises(ValueError, match="volvo"):
        write_noise_bank(tmp_path / "bank", noisex, types=NOISE_TYPES)


def test_noise_bank_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_noise_bank(tmp_path / "none")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="factory"):
        load_noise_bank(tmp_path / "empty", ["factory"])


def test_training_noise_is_deterministic_per_seed_epoch_index(micro_data):
    cfg, manifest, bank = micro_data
    ds = NoisyPairDataset(manifest.head(6), bank, "random", cfg.snrs, seed=1)
    first = [ds[i]["noisy"] for i in range(6)]
    again = NoisyPairDataset(manifest.head(6), bank, "random", cfg.snrs, seed=1)
    assert all(np.array_equal(a, again[i]["noisy"]) for i, a in enumerate(first))
    ds.set_epoch(1)
    assert any(not np.array_equal(a, ds[i]["noisy"]) for i, a in enumerate(first))
    item = ds[0]
    assert item["noise"] in bank and item["snr_db"] in cfg.snrs
    assert np.array_equal(item["clean"], again[0]["clean"])  # clean is the same utterance


def test_test_conditions_hit_their_snr_and_are_shared(micro_data):
    cfg, manifest, bank = micro_data
    cond = Condition("factory", 5.0)
    a = NoisyPairDataset(manifest.head(3), bank, cond, seed=0)
    b = NoisyPairDataset(manifest.head(3).iloc[::-1], bank, cond, seed=0)  # other order, same audio per utterance
    for i in range(3):
        it = a[i]
        other = next(b[j] for j in range(3) if b[j]["utt_id"] == it["utt_id"])
        assert np.array_equal(it["noisy"], other["noisy"])
        snr = speech_level_db(it["clean"]) - rms_level_db(it["noisy"].astype(np.float64) - it["clean"])
        assert snr == pytest.approx(5.0, abs=0.1)


def test_collate_pads_and_keeps_lengths(micro_data):
    cfg, manifest, bank = micro_data
    ds = NoisyPairDataset(manifest.head(4), bank, "random", cfg.snrs)
    b = collate([ds[i] for i in range(4)])
    assert b["clean"].shape == b["noisy"].shape and b["clean"].shape[1] == int(b["lengths"].max())
    for i in range(4):
        assert float(b["clean"][i, int(b["lengths"][i]):].abs().sum()) == 0.0
