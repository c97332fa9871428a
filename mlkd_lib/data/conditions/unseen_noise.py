"""Unseen noise: noise types no model trains on (``unseen_noise_types``; by default the noise collection's types
that ``noise_types`` does not name), mixed into the test speech exactly as the trained types are, at the study's
SNRs (the severity). Their recordings' test parts only: no training mix ever draws them.
"""

from __future__ import annotations

FAMILY = "unseen_noise"
RANK = 1
UNIT = "dB SNR"
WORSE = "lower"
MIXES = True


def conditions(cfg, levels=None) -> list:
    from .families import Condition
    return [Condition(n, float(s), FAMILY, float(s)) for n in cfg.unseen_noise_types for s in cfg.snrs]
