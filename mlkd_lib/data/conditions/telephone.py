"""Telephone channel: narrowband G.711 μ-law, the way a landline or a PSTN gateway carries speech.

The speech is resampled to 8 kHz, limited to the telephone band (300–3400 Hz, ITU-T G.712) by an elliptic
filter run forwards and backwards (zero phase: the output stays aligned with the input, as every family's
does), μ-law encoded and decoded by libsndfile (a WAV of subtype ULAW in memory: libsndfile implements G.711),
and resampled back to 16 kHz (torchaudio's windowed sinc both ways: ``audio.resample_sinc``).

One severity, ``1``: the channel itself. A graded severity would not be honest here: added line noise would
repeat the noise families' SNR axis, and tandem μ-law codings add next to nothing (decoding and re-encoding
at the same level gives back the same code words). ``rng`` is unused: the channel is deterministic.

G.711 overloads at full scale. A signal above it (the study's mixtures may be) is divided by its peak before
the coder and multiplied back after, so nothing is clipped; μ-law's error is relative to the level, so the
scaling hardly changes it.
"""

from __future__ import annotations

import io
from functools import lru_cache

import numpy as np
import soundfile as sf
from scipy.signal import iirdesign, sosfiltfilt

from ..audio import SAMPLE_RATE, resample_sinc
from .base import speech

FAMILY = "telephone"
RANK = 4
SEVERITIES = (1,)
UNIT = "G.711"
WORSE = None  # one severity: the channel itself

PHONE_RATE = 8_000
PASS_HZ = (300.0, 3400.0)
STOP_HZ = (230.0, 3550.0)  # transition bands: the filter is 40 dB down beyond them
RIPPLE_DB = 0.25  # per pass: the band's ripple is 0.5 dB forwards and backwards
STOP_DB = 20.0  # per pass: 40 dB forwards and backwards


@lru_cache(maxsize=1)
def _band_filter() -> np.ndarray:
    """The telephone band's elliptic band-pass at 8 kHz (second-order sections), designed on first use."""
    return iirdesign(PASS_HZ, STOP_HZ, RIPPLE_DB, STOP_DB, ftype="ellip", output="sos", fs=PHONE_RATE)


def g711(x: np.ndarray) -> np.ndarray:
    """8 kHz samples (within full scale) through G.711 μ-law: encoded and decoded by libsndfile."""
    buffer = io.BytesIO()
    sf.write(buffer, np.asarray(x, dtype=np.float32), PHONE_RATE, format="WAV", subtype="ULAW")
    buffer.seek(0)
    y, _ = sf.read(buffer, dtype="float64")
    return y


def apply(x: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    """``x`` through the telephone channel (severity 1, the only one)."""
    if severity != 1:
        raise ValueError(f"{FAMILY} has the one severity 1 (the G.711 channel), got {severity!r}")
    x = speech(x, FAMILY)
    narrow = resample_sinc(x.astype(np.float32), SAMPLE_RATE, PHONE_RATE).astype(np.float64)
    sos = _band_filter()
    # scipy's edge padding (3 samples per filter coefficient pair), shortened for a signal shorter than that
    narrow = sosfiltfilt(sos, narrow, padlen=min(3 * (2 * len(sos) + 1), narrow.size - 1))
    peak = float(np.max(np.abs(narrow)))
    scale = peak / 0.999 if peak > 0.999 else 1.0  # keep the coder below its overload point: nothing clips
    coded = g711(narrow / scale) * scale
    y = resample_sinc(coded.astype(np.float32), PHONE_RATE, SAMPLE_RATE)[:x.size]
    return np.pad(y, (0, x.size - y.size)).astype(np.float32)
