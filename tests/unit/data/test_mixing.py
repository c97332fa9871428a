"""FaNT-like mixing: the SNR hits its target, the speech is never rescaled, P.56 is P.56."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from mlkd_lib.data.audio import AudioError, read_audio, speech_like
from mlkd_lib.data.mixing import active_level_db, mix_at_snr, noise_segment, rms_level_db, speech_level_db

# ITU-T P.56's constants, written here from the standard (not imported from the code under test): time constant
# 0.03 s, hangover 0.2 s, margin 15.9 dB, 16 thresholds c_j = 2^-15 ... 2^0 of full scale
TIME_CONSTANT_S, HANGOVER_S, MARGIN_DB = 0.03, 0.2, 15.9
THRESHOLDS = np.array([2.0 ** -j for j in range(15, -1, -1)])


def p56_reference(x, sr=16_000):
    """ITU-T P.56 method B as the standard's flow chart states it, sample by sample."""
    g = np.exp(-1 / (sr * TIME_CONSTANT_S))
    hang_max = int(np.ceil(sr * HANGOVER_S))
    counts = np.zeros(len(THRESHOLDS))
    hang = np.full(len(THRESHOLDS), hang_max)
    p = q = 0.0
    for v in np.asarray(x, dtype=np.float64):
        p = g * p + (1 - g) * abs(v)
        q = g * q + (1 - g) * p
        for j, c in enumerate(THRESHOLDS):
            if q >= c:
                counts[j] += 1
                hang[j] = 0
            elif hang[j] < hang_max:
                counts[j] += 1
                hang[j] += 1
    energy = float(np.sum(np.asarray(x, dtype=np.float64) ** 2))
    with np.errstate(divide="ignore"):
        a = 10 * np.log10(energy / counts)
    delta = a - 20 * np.log10(THRESHOLDS)
    if delta[0] < MARGIN_DB:  # within the margin even at the lowest threshold: all of it is active speech
        return 10 * np.log10(energy / len(x))
    for j in range(1, len(counts)):
        if counts[j] == 0:  # nothing reaches this threshold: the level is that of the last one reached
            return a[j - 1]
        if delta[j] <= MARGIN_DB:
            t = (delta[j - 1] - MARGIN_DB) / (delta[j - 1] - delta[j])
            return a[j - 1] + t * (a[j] - a[j - 1])
    return a[-1]


@pytest.mark.parametrize("gain, pause_s", [(1.0, 0.3), (0.05, 0.3), (0.05, 0.0), (0.002, 1.0), (30.0, 0.5)])
def test_p56_matches_the_reference_flow_chart(rng, gain, pause_s):
    """Speech at full scale, 26 dB down, 54 dB down with a long pause (the highest thresholds never reached) and far
    over full scale (every threshold crossed without meeting the margin); the sample-by-sample flow chart's level."""
    x = gain * speech_like(rng, seconds=0.6, pause_s=pause_s)
    assert active_level_db(x) == pytest.approx(p56_reference(x), abs=1e-9)


def test_p56_of_speech_within_the_margin_of_the_lowest_threshold_is_its_mean_power():
    x = 1e-4 * np.sin(2 * np.pi * 200 * np.arange(16_000) / 16_000)  # −83 dBFS: under 15.9 dB above 2^-15
    assert active_level_db(x) == pytest.approx(10 * np.log10(np.mean(x**2)), abs=1e-12) == p56_reference(x)
    assert active_level_db(x, sample_rate=8_000) == pytest.approx(p56_reference(x, 8_000))
    padded = np.concatenate([np.zeros(8_000), 0.3 * speech_like(np.random.default_rng(1), seconds=0.5)])
    assert active_level_db(padded, 8_000) == pytest.approx(p56_reference(padded, 8_000), abs=1e-9)
    assert active_level_db(padded, 8_000) != pytest.approx(active_level_db(padded), abs=0.01)


def test_p56_ignores_pauses_where_rms_does_not(rng):
    x = speech_like(rng, pause_s=0.0)
    padded = np.concatenate([x, np.zeros(32_000, dtype=np.float32)])  # two seconds of silence
    assert rms_level_db(x) - rms_level_db(padded) > 3.0
    assert abs(active_level_db(x) - active_level_db(padded)) < 0.7  # only the 200 ms hangover counts


def test_p56_of_a_continuous_tone_is_its_rms():
    t = np.arange(32_000) / 16_000
    x = 0.3 * np.sin(2 * np.pi * 300 * t)
    assert active_level_db(x) == pytest.approx(rms_level_db(x), abs=0.1)


def test_p56_scales_with_the_signal(rng):
    x = speech_like(rng)
    assert active_level_db(0.1 * x) - active_level_db(x) == pytest.approx(-20.0, abs=0.1)


@pytest.mark.parametrize("level", ["p56", "rms"])
@pytest.mark.parametrize("snr", [-5.0, 0.0, 7.5, 20.0])
@pytest.mark.parametrize("noise_seconds", [0.5, 5.0])  # shorter than the speech: looped
def test_snr_hits_its_target(rng, level, snr, noise_seconds):
    speech = speech_like(rng)
    noise = rng.standard_normal(int(noise_seconds * 16_000)).astype(np.float32) * 0.3
    noisy = mix_at_snr(speech, noise, snr, np.random.default_rng(7), level)
    measured = speech_level_db(speech, level) - rms_level_db(noisy.astype(np.float64) - speech)
    assert measured == pytest.approx(snr, abs=0.1)


def test_speech_is_added_unchanged(rng):
    speech = speech_like(rng)
    noise = rng.standard_normal(48_000).astype(np.float32)
    noisy = mix_at_snr(speech, noise, 5.0, np.random.default_rng(3))
    segment = noise_segment(noise, len(speech), np.random.default_rng(3)).astype(np.float64)
    residual = noisy.astype(np.float64) - speech
    gain = residual @ segment / (segment @ segment)
    # the residual is exactly a scaled noise segment: no rescaled speech is left in it
    np.testing.assert_allclose(residual, gain * segment, atol=1e-6)


def test_p56_and_rms_scale_the_noise_differently_when_speech_has_pauses(rng):
    speech = speech_like(rng, pause_s=1.0)
    noise = rng.standard_normal(64_000).astype(np.float32)
    n_p56 = mix_at_snr(speech, noise, 0.0, np.random.default_rng(0), "p56") - speech
    n_rms = mix_at_snr(speech, noise, 0.0, np.random.default_rng(0), "rms") - speech
    assert rms_level_db(n_p56) - rms_level_db(n_rms) > 2.0  # pauses lower RMS, not the active level


def test_same_seed_same_mixture(rng):
    speech, noise = speech_like(rng), rng.standard_normal(40_000).astype(np.float32)
    a = mix_at_snr(speech, noise, 0.0, np.random.default_rng(5))
    b = mix_at_snr(speech, noise, 0.0, np.random.default_rng(5))
    c = mix_at_snr(speech, noise, 0.0, np.random.default_rng(6))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_looping_a_short_noise():
    noise = np.arange(10, dtype=np.float32)
    seg = noise_segment(noise, 25, np.random.default_rng(0))
    assert len(seg) == 25 and set(np.diff(seg)) <= {1.0, -9.0}  # continues cyclically


def test_low_snr_mixture_is_not_clipped(rng):
    speech = 0.9 * speech_like(rng) / np.max(np.abs(speech_like(rng)))
    noisy = mix_at_snr(speech, rng.standard_normal(40_000).astype(np.float32), -5.0, np.random.default_rng(0))
    assert np.max(np.abs(noisy)) > 1.0  # kept as float, documented: write as FLOAT WAV


@pytest.mark.parametrize("bad, msg", [(np.zeros(16_000), "silent"), (np.full(16_000, np.nan), "NaN"),
                                      (1e-5 * np.sign(np.random.default_rng(0).standard_normal(16_000)), "silent")])
def test_bad_speech_is_a_clear_error(rng, bad, msg):
    with pytest.raises(AudioError, match=msg):
        mix_at_snr(bad.astype(np.float32), rng.standard_normal(16_000).astype(np.float32), 0.0, 0)


def test_silent_noise_is_a_clear_error(rng):
    with pytest.raises(AudioError, match="silent"):
        mix_at_snr(speech_like(rng), np.zeros(48_000, dtype=np.float32), 0.0, 0)


def test_reading_wrong_rate_stereo_and_corrupt_files(tmp_path, rng):
    sf.write(tmp_path / "s8k.wav", rng.standard_normal(8000) * 0.1, 8000)
    with pytest.raises(AudioError, match="8000 Hz"):
        read_audio(tmp_path / "s8k.wav")
    assert len(read_audio(tmp_path / "s8k.wav", resample_to=True)) == 16_000
    stereo = rng.standard_normal((16_000, 2)) * 0.1
    sf.write(tmp_path / "st.wav", stereo, 16_000, subtype="FLOAT")
    np.testing.assert_allclose(read_audio(tmp_path / "st.wav"), stereo.mean(1), atol=1e-6)
    (tmp_path / "bad.wav").write_bytes(b"RIFF....not a wav")
    with pytest.raises(AudioError, match="bad.wav"):
        read_audio(tmp_path / "bad.wav")
    with pytest.raises(FileNotFoundError, match="nope.wav"):
        read_audio(tmp_path / "nope.wav")


def test_the_noise_is_added_with_its_sign_and_scaled_by_the_given_speech_level():
    speech = (0.1 * np.sin(np.arange(4_000) / 3.0)).astype(np.float32)
    noise = np.full(6_000, 0.5, np.float32)  # any segment of it is 0.5 throughout
    mix = mix_at_snr(speech, noise, 6.0, 0, "rms")
    gain = 10 ** ((10 * np.log10(np.mean(speech.astype(np.float64) ** 2)) - 6.0 - 10 * np.log10(0.25)) / 20)
    assert mix.dtype == np.float32 and np.allclose(mix - speech, 0.5 * gain, rtol=1e-5)
    told = mix_at_snr(speech, noise, 6.0, 0, "rms", speech_db=-20.0)  # the level given is the level used
    assert np.allclose(told - speech, 0.5 * 10 ** ((-20.0 - 6.0 - 10 * np.log10(0.25)) / 20), rtol=1e-5)
    varied = np.random.default_rng(1).standard_normal(6_000).astype(np.float32)
    assert np.array_equal(mix_at_snr(speech, varied, 6.0, 3), mix_at_snr(speech, varied, 6.0, 3))  # a seed, a number


def test_a_noise_as_long_as_the_speech_is_taken_whole_and_a_short_one_loops_from_its_drawn_start():
    noise = np.arange(10, dtype=np.float32)
    assert np.array_equal(noise_segment(noise, 10, np.random.default_rng(0)), noise)
    start = int(np.random.default_rng(4).integers(0, 10))
    seg = noise_segment(noise, 25, np.random.default_rng(4))
    assert seg[0] == noise[start] and seg[1] == noise[(start + 1) % 10]


@pytest.mark.parametrize("speech, noise, msg", [
    (np.full(100, np.nan), np.ones(100), "^speech: audio holds NaN or inf samples$"),
    (np.ones(100), np.full(100, np.inf), "^noise: audio holds NaN or inf samples$"),
    (np.ones(100), [np.ones(50), np.full(60, np.nan)], "^noise segment: audio holds NaN or inf samples$"),
    (np.ones((100, 2)), np.ones(100), r"^mix wants mono 1-D signals, got speech \(100, 2\), noise \(100,\)$"),
    (np.ones(100), [np.ones(100), np.ones((5, 2))], r"^mix wants mono 1-D signals, got speech \(100,\), noise "
     r"recordings \[\(5, 2\)\]$"),
    (np.ones((100, 2)), [np.ones(100)], r"^mix wants mono 1-D signals, got speech \(100, 2\), noise recordings none$"),
    (np.zeros(100), np.ones(100), r"^speech is silent \(all zeros\): its level, and so an SNR, is undefined$"),
    (np.ones(100), np.zeros(100), "^the chosen noise segment is silent: use a noise with energy throughout$"),
    (np.full(100, 1e-6), np.ones(100), r"^speech is \(nearly\) silent: its envelope never reaches the lowest P\.56 "
     r"threshold \(-90 dBFS\), so its level and an SNR are undefined$")])
def test_what_cannot_be_mixed_is_named(speech, noise, msg):
    rng = np.random.default_rng(0)
    with pytest.raises(AudioError, match=msg):
        for _ in range(20):  # a list's NaN recording: drawn within a few tries
            mix_at_snr(np.asarray(speech, np.float32), noise, 0.0, rng, "rms" if "silent" not in msg else "p56")
    with pytest.raises(ValueError, match=r"^SNR must be a finite number of dB, got nan$"):
        mix_at_snr(np.ones(100, np.float32), np.ones(100, np.float32), float("nan"), 0)
    with pytest.raises(ValueError, match=r"^level must be 'p56' or 'rms', got 'loud'$"):
        speech_level_db(np.ones(100), "loud")
    with pytest.raises(AudioError, match=r"^signal is silent \(all zeros\): its level is undefined$"):
        rms_level_db(np.zeros(10))


def test_p56_of_clicks_and_of_speech_far_over_full_scale_follow_the_flow_chart(rng):
    """Clicks: much energy, a low envelope, so the thresholds run out of active samples before the margin is
    met; speech at 300 times full scale: every threshold active and still more than the margin above it."""
    clicks = np.zeros(16_000)
    clicks[::1600] = 0.5
    loud = 300 * speech_like(rng, seconds=0.6, pause_s=0.5)
    t = np.arange(16_000) / 16_000
    low = 3e-4 * np.sin(2 * np.pi * 200 * t)  # −73 dBFS: the margin met between the first two thresholds
    faint = 7e-5 * np.sin(2 * np.pi * 200 * t)  # its envelope reaches 2^-15 but not 2^-14
    for x in (clicks, loud, low, faint):
        assert active_level_db(x) == pytest.approx(p56_reference(x), abs=1e-9)


def test_every_recording_of_a_type_can_be_drawn_and_levels_at_another_rate():
    for files in ([np.array([1.0]), np.array([2.0])], [np.array([1.0]), np.array([2.0]), np.array([3.0])]):
        drawn = {float(noise_segment(files, 1, np.random.default_rng(seed))[0]) for seed in range(60)}
        assert drawn == {float(f[0]) for f in files}  # the first and the last file too
    x = 0.3 * speech_like(np.random.default_rng(2), seconds=0.5, pause_s=0.4)
    assert speech_level_db(x, "p56", 8_000) == pytest.approx(p56_reference(x, 8_000), abs=1e-9)
    assert speech_level_db(x, "p56", 8_000) != pytest.approx(speech_level_db(x, "p56"), abs=0.01)
    assert rms_level_db(x) == pytest.approx(10 * np.log10(np.mean(x.astype(np.float64) ** 2)), abs=1e-9)
    noise = np.random.default_rng(3).standard_normal(20_000).astype(np.float32)
    at_8k = mix_at_snr(x, noise, 5.0, 0, "p56", sample_rate=8_000) - x
    assert rms_level_db(at_8k) == pytest.approx(p56_reference(x, 8_000) - 5.0, abs=1e-4)
    with pytest.raises(AudioError, match=r"^noise gain for 0\.0 dB is not finite \(speech inf dB, noise -6\.0 dB\)$"):
        mix_at_snr(x, np.full(100, 0.5, np.float32), 0.0, 0, speech_db=float("inf"))
