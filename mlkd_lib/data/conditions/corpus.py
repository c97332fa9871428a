"""Another corpus: its utterances of the study's classes (``test_manifests``), which no fold trains on — other
speakers, often another language and other microphones — clean (no severity) and, with ``test_corpus_noise``,
under the trained noise types at the study's SNRs (the severity), mixed as the fold's own test utterances are.
A change of corpus is not a corruption: Table 4 gives its CE but leaves it out of the mCE.
"""

from __future__ import annotations

from ...names import CLEAN

FAMILY = "corpus"
RANK = 7
UNIT = "dB SNR"
WORSE = "lower"
MIXES = True
CHOSEN_BY = "test_manifests"  # on where the study names other corpora, not through `conditions`


def conditions(cfg, corpus: str) -> list:
    """What ``corpus`` (a stem of ``test_manifests``) is scored under."""
    from .families import Condition
    noisy = [Condition(n, float(s), FAMILY, float(s), corpus) for n in cfg.noise_types for s in cfg.snrs]
    return [Condition(CLEAN, None, FAMILY, None, corpus)] + (noisy if cfg.test_corpus_noise else [])
