"""FaNT-like noise adding: the speech is never touched, the noise is scaled to the SNR.

Speech level is the ITU-T P.56 active speech level (method B), the level FaNT
measures; ``level="rms"`` uses the plain mean power instead. Noise level is the
RMS of the random noise segment that is added (looped when the noise is short).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.ndimage import maximum_filter1d
from scipy.signal import lfilter

from .audio import SAMPLE_RATE, AudioError, check_signal

P56_TIME_CONSTANT_S = 0.03
P56_HANGOVER_S = 0.2
P56_MARGIN_DB = 15.9
# Envelope thresholds c_j = 2^-15 … 2^0 of full scale (16-bit steps of the standard).
P56_THRESHOLDS = 2.0 ** np.arange(-15, 1)


def active_level_db(x: np.ndarray, sample_rate: int = SAMPLE_RATE) -> float:
    """ITU-T P.56 method B active speech level, in dB relative to full scale (mean power).

    Envelope: two cascaded one-pole smoothers (time constant 30 ms) of |x|. For each
    threshold c_j, a sample is active when the envelope reached c_j within the last
    200 ms (hangover). The active level is the mean power over active samples at the
    threshold where (level − threshold) falls to the 15.9 dB margin, interpolated in dB.
    """
    x = np.asarray(x, dtype=np.float64)
    energy = float(np.sum(x * x))
    if energy <= 0.0:
        raise AudioError("speech is silent (all zeros): its level, and so an SNR, is undefined")
    g = np.exp(-1.0 / (sample_rate * P56_TIME_CONSTANT_S))
    p = lfilter([1 - g], [1, -g], np.abs(x))
    q = lfilter([1 - g], [1, -g], p)
    hang = int(np.ceil(sample_rate * P56_HANGOVER_S))
    # sample k is active at threshold c when the envelope reached c within q[k-hang .. k]: when the
    # envelope's running maximum over that trailing window is at least c (one pass for all thresholds)
    size = hang + 1
    recent_peak = np.sort(maximum_filter1d(q, size=size, origin=(size - 1) // 2, mode="constant", cval=-np.inf))
    counts = (len(x) - np.searchsorted(recent_peak, P56_THRESHOLDS, side="left")).astype(np.float64)
    if counts[0] == 0:
        raise AudioError("speech is (nearly) silent: its envelope never reaches the lowest P.56 threshold "
                         f"({20 * np.log10(P56_THRESHOLDS[0]):.0f} dBFS), so its level and an SNR are undefined")
    with np.errstate(divide="ignore"):
        a_db = 10 * np.log10(energy / counts)  # inf where no sample is active
    c_db = 20 * np.log10(P56_THRESHOLDS)
    delta = a_db - c_db
    if not delta[0] >= P56_MARGIN_DB:
        # even the lowest threshold is within the margin: the signal is (nearly) all active
        return float(10 * np.log10(energy / len(x)))
    for j in range(1, len(counts)):
        if counts[j] == 0 or delta[j] <= P56_MARGIN_DB:
            if counts[j] == 0:
                return float(a_db[j - 1])
            # linear interpolation of A(c) where A − C crosses the margin
            t = (delta[j - 1] - P56_MARGIN_DB) / (delta[j - 1] - delta[j])
            return float(a_db[j - 1] + t * (a_db[j] - a_db[j - 1]))
    return float(a_db[-1])


def rms_level_db(x: np.ndarray) -> float:
    power = float(np.mean(np.asarray(x, dtype=np.float64) ** 2))
    if power <= 0.0:
        raise AudioError("signal is silent (all zeros): its level is undefined")
    return 10 * np.log10(power)


def speech_level_db(x: np.ndarray, level: str = "p56", sample_rate: int = SAMPLE_RATE) -> float:
    if level == "p56":
        return active_level_db(x, sample_rate)
    if level == "rms":
        return rms_level_db(x)
    raise ValueError(f"level must be 'p56' or 'rms', got {level!r}")


def noise_segment(noise: np.ndarray | Sequence[np.ndarray], n: int, rng: np.random.Generator) -> np.ndarray:
    """A random length-``n`` segment of ``noise``, looped from a random start when too short.

    ``noise`` may be a type's several recordings (a list): the draw first picks one, weighted by its length,
    then a segment inside it, so a segment never spans two files. Weighting by length makes every sample of
    the type equally likely to be heard, as if the files were one recording; a uniform pick would let a
    two-second clip (looped) be heard as often as a five-minute recording. One array, or a list of one,
    draws exactly as a lone recording always has.
    """
    if isinstance(noise, (list, tuple)):
        if len(noise) > 1:
            ends = np.cumsum([len(x) for x in noise])
            noise = noise[int(np.searchsorted(ends, rng.integers(0, ends[-1]), side="right"))]
        else:
            noise = noise[0]
    if len(noise) >= n:
        start = int(rng.integers(0, len(noise) - n + 1))
        return noise[start:start + n]
    start = int(rng.integers(0, len(noise)))
    return np.resize(np.roll(noise, -start), n)


def mix_at_snr(speech: np.ndarray, noise: np.ndarray | Sequence[np.ndarray], snr_db: float,
               rng: np.random.Generator | int, level: str = "p56", sample_rate: int = SAMPLE_RATE,
               speech_db: float | None = None) -> np.ndarray:
    """``speech`` + a random segment of ``noise`` scaled so that the SNR is ``snr_db``.

    The result is float32 and may exceed full scale at low SNR: it is never clipped
    (write it as a float WAV). The speech samples are added unchanged. ``speech_db``:
    the speech level if already known (it depends only on the speech, so callers cache it). ``noise``: one
    recording, or a type's several (a list; see ``noise_segment``), whose segment alone is checked for NaN
    (checking every file on every mix would cost more than the mix).
    """
    speech = check_signal(np.asarray(speech, dtype=np.float32), "speech")
    if isinstance(noise, (list, tuple)):
        noise = [np.asarray(x, dtype=np.float32) for x in noise]
        shapes = [x.shape for x in noise if x.ndim != 1 or not len(x)]
        if not noise or shapes or speech.ndim != 1:
            raise AudioError(f"mix wants mono 1-D signals, got speech {speech.shape}, noise recordings "
                             f"{shapes or 'none'}")
    else:
        noise = check_signal(np.asarray(noise, dtype=np.float32), "noise")
        if speech.ndim != 1 or noise.ndim != 1:
            raise AudioError(f"mix wants mono 1-D signals, got speech {speech.shape}, noise {noise.shape}")
    if not np.isfinite(snr_db):
        raise ValueError(f"SNR must be a finite number of dB, got {snr_db!r}")
    rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
    segment = noise_segment(noise, len(speech), rng).astype(np.float64)
    if isinstance(noise, list):
        check_signal(segment, "noise segment")
    s_db = speech_level_db(speech, level, sample_rate) if speech_db is None else speech_db
    try:
        n_db = rms_level_db(segment)
    except AudioError:
        raise AudioError("the chosen noise segment is silent: use a noise with energy throughout") from None
    gain = 10 ** ((s_db - snr_db - n_db) / 20)
    if not np.isfinite(gain):
        raise AudioError(f"noise gain for {snr_db} dB is not finite (speech {s_db:.1f} dB, noise {n_db:.1f} dB)")
    return (speech.astype(np.float64) + gain * segment).astype(np.float32)
