"""The VAD + NMF baseline: the objective falls, the non-speech frames are dropped, enhancement helps."""

from __future__ import annotations

import numpy as np
import pytest

from mlkd_lib.data.audio import speech_like
from mlkd_lib.data.mixing import mix_at_snr
from mlkd_lib.data.vad import vad_decisions
from mlkd_lib.method.baseline import (
    ENHANCEMENT_COLUMNS,
    EPS,
    VadNmfEnhancer,
    drop_non_speech,
    enhancement_scores,
    kl_divergence,
    nmf,
    score_enhancement,
)


def test_multiplicative_updates_never_increase_the_kl_objective_and_keep_fixed_bases(rng):
    V = rng.random((40, 6), dtype=np.float32) @ rng.random((6, 60), dtype=np.float32)  # rank 6: NMF can fit it
    W0 = rng.random((40, 6), dtype=np.float32) + EPS
    W, H, hist = nmf(V, W0, rng.random((6, 60), dtype=np.float32) + EPS, 100, fixed_cols=4, track=True)
    assert np.all(np.diff(hist) <= 1e-6 * hist[0])  # monotone (Lee & Seung), up to float rounding
    assert hist[-1] < 0.2 * hist[0]
    assert hist[-1] == pytest.approx(kl_divergence(V, W @ H), rel=1e-5)
    np.testing.assert_array_equal(W[:, :4], W0[:, :4])  # the learned (speech) bases stay as given
    assert not np.allclose(W[:, 4:], W0[:, 4:])


def test_the_vad_drops_the_pauses_and_keeps_the_speech(rng):
    pause_s, sr = 0.6, 16_000
    x = speech_like(rng, seconds=1.2, pause_s=pause_s)
    kept = drop_non_speech(x, aggressiveness=2)
    speech_s = len(x) / sr - 2 * pause_s
    assert abs(len(kept) / sr - speech_s) < 0.15  # about 1.2 s of 2.4 s remain
    assert np.sum(kept ** 2) > 0.97 * np.sum(x ** 2)  # what was dropped held almost no energy
    decisions = vad_decisions(x, 2)
    assert not decisions[:10].any() and not decisions[-10:].any()


def test_with_too_little_speech_the_signal_is_kept_whole(rng):
    x = 0.001 * rng.standard_normal(16_000).astype(np.float32)
    assert np.array_equal(drop_non_speech(x), x)


def test_enhancement_improves_stoi_and_pesq_of_noisy_speech(rng):
    clean = [speech_like(rng, seconds=1.5) for _ in range(4)]
    enhancer = VadNmfEnhancer.fit(clean, speech_components=16, noise_components=4)
    x = speech_like(rng, seconds=1.5)
    hum = np.sin(2 * np.pi * 90 * np.arange(48_000) / 16_000) + 0.3 * rng.standard_normal(48_000)
    noisy = mix_at_snr(x, hum.astype(np.float32), 0.0, rng)
    enhanced, history = enhancer.enhance(noisy, track=True)
    assert len(enhanced) == len(noisy)
    assert history["fit"][-1] < history["fit"][0] and history["noise basis"][-1] < history["noise basis"][0]
    before, after = enhancement_scores(x, noisy), enhancement_scores(x, enhanced)
    assert after["stoi"] > before["stoi"]
    assert after["pesq_wb"] > before["pesq_wb"]
    assert len(enhancer([noisy])[0]) < len(noisy)  # the classifier hears the enhanced speech frames only



def test_utterances_enhanced_together_are_enhanced_as_each_alone(rng):
    """Padding frames stay zero: the batched factorisations give each utterance what it gets alone."""
    clean = [speech_like(rng, seconds=s) for s in (0.6, 1.1, 0.8)]
    enhancer = VadNmfEnhancer.fit(clean, speech_components=8, noise_components=4, iters=20)
    noisy = [mix_at_snr(x, rng.standard_normal(16_000).astype(np.float32), 5.0, rng) for x in clean]
    together = enhancer.enhance_many(noisy)
    for x, y in zip(noisy, together):
        alone = enhancer.enhance(x)
        assert len(y) == len(x) and np.max(np.abs(y - alone)) < 1e-5 * max(1.0, np.max(np.abs(alone)))


def test_no_enhancement_scoring_gives_an_empty_table_the_analysis_reads(tmp_path):
    """enhancement_per_emotion=0 (no PESQ / STOI) is a valid setting: 02b writes the columns alone and the analysis'
    enhancement table comes out empty instead of failing on a file without columns."""
    from types import SimpleNamespace

    import pandas as pd

    from mlkd_lib.analysis.tables import enhancement_table
    from mlkd_lib.config import make_config
    from mlkd_lib.layout import StudyLayout

    cfg = make_config("micro", data_dir=str(tmp_path / "data"))
    test = pd.DataFrame({"utt_id": ["a", "b"], "path": ["a.wav", "b.wav"], "emotion": ["neu", "sad"]})
    data = SimpleNamespace(test=test, noise_bank={})
    never = SimpleNamespace(enhance=lambda y: pytest.fail("nothing is to be enhanced"))
    scores = score_enhancement(never, cfg, data, per_emotion=0, progress=False)
    assert scores.empty and list(scores.columns) == ENHANCEMENT_COLUMNS
    csv = StudyLayout(tmp_path / "study").fold("Ses01F").model("baseline").enhancement
    csv.parent.mkdir(parents=True)
    scores.to_csv(csv, index=False)
    table = enhancement_table(tmp_path / "study")
    assert table.empty and {"utterances", "pesq_wb Δ", "stoi Δ"} <= set(table.columns)
