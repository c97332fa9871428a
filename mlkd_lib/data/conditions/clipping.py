"""Hard clipping: a recording made with too much gain, its peaks cut flat at a threshold.

Severity: the share of the utterance's samples that are clipped (0.01, 0.05, 0.2), pauses included. The
threshold is the magnitude exceeded by that share of samples (the ``1 − share`` quantile of ``|x|``), so a
severity means the same damage whatever the input's level or peak; samples beyond it, of either sign, are set
to it. ``rng`` is unused: clipping is deterministic.

The clipped signal is not rescaled: its peak is the threshold and its level falls with the severity (on
speech-like test signals with pauses: 0.05, 1 and 6 dB at 0.01, 0.05 and 0.2), as a clipped recording that
nobody normalised afterwards. A model that normalises its input sees the
clipping alone; one that does not also sees the lower level.
"""

from __future__ import annotations

import numpy as np

from .base import speech

FAMILY = "clipping"
RANK = 6
SEVERITIES = (0.01, 0.05, 0.2)
UNIT = "share clipped"
WORSE = "higher"


def threshold(x: np.ndarray, share: float) -> float:
    """The magnitude at which clipping ``x`` clips ``share`` of its samples: its ``round(share·n)``-th largest
    magnitude (the samples at it count as clipped: they are cut to it, flat)."""
    if not 0.0 < share < 1.0:
        raise ValueError(f"{FAMILY} severity is the share of samples clipped, in (0, 1); got {share!r}")
    magnitude = np.abs(np.asarray(x, dtype=np.float64))
    k = min(max(int(round(share * magnitude.size)), 1), magnitude.size)
    return float(np.partition(magnitude, magnitude.size - k)[magnitude.size - k])


def apply(x: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    """``x`` with its largest ``severity`` share of samples clipped to the threshold (not rescaled)."""
    x = speech(x, FAMILY)
    limit = threshold(x, float(severity))
    return np.clip(x, -limit, limit).astype(np.float32)
