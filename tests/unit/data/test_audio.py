"""The one resampler for audio as it ships (soxr): what its docstring claims, measured with tones."""

from __future__ import annotations

import numpy as np
import pytest

from mlkd_lib.data.audio import SAMPLE_RATE, resample, resample_stream, speech_like

RATES = [48_000, 44_100, 24_414, 22_050, 19_980, 8_000]  # RAVDESS/DEMAND, SAVEE, TESS, espeak, NOISEX, telephone


def tone_db(rate: int, hz: float) -> float:
    """Level (dB) of a full-scale tone at ``hz`` after resampling from ``rate``, relative to its level before."""
    t = np.arange(2 * rate) / rate
    y = resample(np.sin(2 * np.pi * hz * t).astype(np.float32), rate)
    middle = y[SAMPLE_RATE // 4:-SAMPLE_RATE // 4]  # away from the filter's edges
    return 10 * np.log10(np.mean(middle.astype(np.float64) ** 2) / 0.5)


@pytest.mark.parametrize("rate", RATES)
def test_the_speech_band_passes_flat(rate):
    for hz in (100, 1000, 3400, 7000):
        if hz < rate / 2:
            assert abs(tone_db(rate, hz)) < 0.01, hz


@pytest.mark.parametrize("rate", [r for r in RATES if r > 2 * 9_000])
def test_what_would_alias_is_removed(rate):
    """Above 8 kHz (the new Nyquist) a tone would fold back into the speech band: more than 150 dB down from 9 kHz."""
    assert tone_db(rate, 9_000) < -150
    assert tone_db(rate, 0.45 * rate) < -150


@pytest.mark.parametrize("rate", RATES)
def test_length_follows_the_ratio(rate, rng):
    x = speech_like(rng, seconds=1.0, pause_s=0.1, sample_rate=rate)
    assert len(resample(x, rate)) == round(len(x) * SAMPLE_RATE / rate)


def test_resampling_at_the_study_rate_is_the_identity(rng):
    x = speech_like(rng)
    assert np.array_equal(resample(x, SAMPLE_RATE), x)


def test_a_recording_resampled_in_blocks_equals_it_resampled_whole(rng):
    """``mlkd predict --segments`` reads a long recording in blocks: the blocks join without a seam."""
    x = speech_like(rng, seconds=3.0, sample_rate=48_000)
    stream = resample_stream(48_000)
    blocks = [x[i:i + 30_000] for i in range(0, len(x), 30_000)]
    y = np.concatenate([stream.resample_chunk(b, last=k == len(blocks) - 1) for k, b in enumerate(blocks)])
    whole = resample(x, 48_000)
    assert len(y) == len(whole)
    assert np.max(np.abs(y - whole)) < 1e-5
