"""What every family shares: the seeded random source of a test utterance's one version under a condition, and the
check of a family's input."""

from __future__ import annotations

import zlib

import numpy as np

from ..audio import AudioError, check_signal


def stable_hash(text: str) -> int:
    return zlib.crc32(text.encode())


def condition_rng(seed: int, utt_id: str, noise: str, snr_db: float) -> np.random.Generator:
    """The generator for the one test version of ``utt_id`` under (noise, SNR) — or (family, severity) — so that
    every model compared hears the same."""
    return np.random.default_rng([seed, stable_hash(utt_id), stable_hash(noise), int(round(snr_db * 100)) + 10_000])


def speech(x: np.ndarray, family: str) -> np.ndarray:
    """A family's input as float64 (a copy: the caller's array is never touched), checked to be mono audio."""
    x = np.asarray(x)
    if x.ndim != 1:
        raise AudioError(f"{family}: wants mono 1-D speech, got shape {x.shape}")
    return check_signal(x.astype(np.float64), f"{family} input")
