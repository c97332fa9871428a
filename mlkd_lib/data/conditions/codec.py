"""Lossy codec: speech through MP3 at a constant bitrate (LAME to encode, mpg123 to decode, both via libsndfile).

Severity: the bitrate in kbps (32, 16, 8: the fewer the bits, the narrower the band LAME keeps and the coarser
its quantisation). At 16 kHz MP3 is MPEG-2 Layer III, whose constant bitrates run 8–160 kbps; libsndfile sets
LAME's bitrate to 160 − 152·c kbps (truncated) for a compression level c, so ``compression_level`` asks for
exactly the severity (``BITRATES_KBPS`` lists the rates the format has). The stream's measured bitrate
(bytes·8 / duration) is the asked one plus the frames that hold the encoder's delay and padding: 2 % over on a
3 s utterance. libsndfile also writes Opus, but maps its compression level to a bitrate only loosely (and Opus
at 8 kbps sounds far better than MP3 at 8 kbps, so a severity would mean different damage by codec): MP3's
constant bitrate makes the severity exact.

The encoder delays the speech (LAME's 576 + 529 samples) and pads it to whole frames. The decoder removes both
where the stream carries LAME's gapless tag; at 32 kbps and below (measured) it does not, and the decoded signal
comes back 1105 samples late and a frame or more longer. Either way the output is aligned to the input by
cross-correlation (the lag that best matches, within ``MAX_LAG``) and cut or zero-padded to the input's length.
``rng`` is unused: the codec is deterministic.

A signal above full scale is divided by its peak before the encoder and multiplied back after, so nothing is
clipped; the decoded signal may exceed full scale.
"""

from __future__ import annotations

import io

import numpy as np
import soundfile as sf
from scipy.signal import correlate

from ..audio import SAMPLE_RATE, AudioError
from .base import speech

FAMILY = "codec"
RANK = 5
SEVERITIES = (8, 16, 32)
UNIT = "kbps"
WORSE = "lower"  # fewer bits

BITRATES_KBPS = (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)  # MPEG-2 Layer III at 16 kHz
MAX_LAG = 4096  # samples: above LAME's delay plus a frame of padding (576 at 16 kHz)


def compression_level(kbps: float) -> float:
    """libsndfile's compression level that gives MP3 at 16 kHz the constant bitrate ``kbps``."""
    if kbps not in BITRATES_KBPS:
        raise ValueError(f"{FAMILY}: MP3 at 16 kHz has no constant bitrate {kbps!r} kbps "
                         f"(it has {', '.join(map(str, BITRATES_KBPS))})")
    # libsndfile: bitrate = int(160 - 152 * level); half a kbps over the target survives the truncation
    return (160.0 - (kbps + 0.5)) / 152.0


def encode(x: np.ndarray, kbps: float) -> bytes:
    """16 kHz samples (within full scale) as an MP3 stream of constant bitrate ``kbps``."""
    buffer = io.BytesIO()
    sf.write(buffer, np.asarray(x, dtype=np.float32), SAMPLE_RATE, format="MP3", subtype="MPEG_LAYER_III",
             compression_level=compression_level(kbps), bitrate_mode="CONSTANT")
    return buffer.getvalue()


def decode(stream: bytes) -> np.ndarray:
    """An MP3 stream's samples, at 16 kHz (the rate it was encoded at; checked)."""
    y, rate = sf.read(io.BytesIO(stream), dtype="float64")
    if rate != SAMPLE_RATE:
        raise AudioError(f"{FAMILY}: decoded MP3 at {rate} Hz, expected {SAMPLE_RATE} Hz")
    return y


def align(y: np.ndarray, x: np.ndarray, max_lag: int = MAX_LAG) -> np.ndarray:
    """``y`` moved by the lag (within ``max_lag`` samples) at which it best matches ``x``, at ``x``'s length."""
    corr = correlate(y, x, mode="full", method="fft")  # index i is lag i - (len(x) - 1): y[n + lag] ~ x[n]
    zero = x.size - 1
    lo, hi = max(zero - max_lag, 0), min(zero + max_lag, corr.size - 1)
    lag = int(np.argmax(corr[lo:hi + 1])) + lo - zero if np.any(corr[lo:hi + 1] > 0) else 0
    if lag >= 0:
        out = y[lag:lag + x.size]
    else:
        out = np.concatenate([np.zeros(-lag), y[:x.size + lag]])
    return np.pad(out, (0, x.size - out.size))


def apply(x: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    """``x`` encoded as MP3 at ``severity`` kbps and decoded, aligned to ``x``."""
    x = speech(x, FAMILY)
    peak = float(np.max(np.abs(x)))
    scale = peak / 0.999 if peak > 0.999 else 1.0  # keep the encoder's input within full scale: nothing clips
    y = decode(encode(x / scale, severity)) * scale
    return align(y, x).astype(np.float32)
