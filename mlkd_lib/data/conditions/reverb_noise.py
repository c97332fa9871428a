"""Far field: speech heard across a room with noise in it — the reverberant speech of ``reverb`` plus the study's
reference noise (factory where the study has it, else its first noise type) at ``reverb_noise_snr`` dB.

Severity: the room's RT60 in seconds, as for ``reverb``. The noise is added at the far-field speech's level (its
P.56 active level after the room), from the same seeded random source that drew the room.
"""

from __future__ import annotations

import numpy as np

from ...names import reference_noise
from ..mixing import mix_at_snr
from . import reverb

FAMILY = "reverb_noise"
RANK = 3
SEVERITIES = reverb.SEVERITIES
UNIT = reverb.UNIT
WORSE = "higher"
ROOMS = True


def conditions(cfg, levels=None) -> list:
    from .families import Condition
    noise = reference_noise(cfg.noise_types)
    return [Condition(noise, float(cfg.reverb_noise_snr), FAMILY, float(v)) for v in levels or SEVERITIES]


def audio(clean: np.ndarray, condition, rng: np.random.Generator, noise_bank: dict, rirs: dict | None,
          level: str) -> np.ndarray:
    far = reverb.audio(clean, condition, rng, noise_bank, rirs, level)
    return mix_at_snr(far, noise_bank[condition.noise], condition.snr_db, rng, level)
