"""The test conditions: ``Condition``, the registry of families (every module of this package with a ``FAMILY``),
which conditions a study scores, and the one audio each makes of a test utterance.

The audio of a condition depends only on (seed, utterance, noise, SNR) — or (seed, utterance, family, severity)
for a signal family — so every model compared hears the same, and a notebook, the explorer and the evaluation
make the same. The conditions touch the test utterances only: the students' training mixes draw from the trained
noise types alone."""

from __future__ import annotations

import pkgutil
from dataclasses import dataclass
from functools import lru_cache
from importlib import import_module
from pathlib import Path
from types import ModuleType

import numpy as np

from ...names import CLEAN, NOISE
from ..mixing import mix_at_snr
from .base import condition_rng


@lru_cache(maxsize=1)
def registry() -> dict[str, ModuleType]:
    """Every family of the package, by name, in ``RANK`` order (the order of tables, plots and ``conditions``)."""
    found = []
    for info in pkgutil.iter_modules([str(Path(__file__).parent)]):
        module = import_module(f"{__package__}.{info.name}")
        if hasattr(module, "FAMILY"):
            found.append(module)
    return {m.FAMILY: m for m in sorted(found, key=lambda m: m.RANK)}


def family(name: str) -> ModuleType:
    """The module of a family."""
    if name not in registry():
        raise ValueError(f"no test condition family {name!r}; the families: {', '.join(registry())}")
    return registry()[name]


def chosen_by_conditions() -> tuple[str, ...]:
    """The families a study picks with its ``conditions`` key (every one but those another key turns on)."""
    return tuple(n for n, m in registry().items() if getattr(m, "CHOSEN_BY", "conditions") == "conditions")


def mixes(name: str) -> bool:
    """Whether a family mixes a noise into speech (unseen noise, another corpus) rather than processing it."""
    return getattr(family(name), "MIXES", False)


@dataclass(frozen=True)
class Condition:
    """A test condition: clean speech (noise 'clean', snr None), a trained noise type at an SNR, or a test-only
    ``family`` at a ``severity``: an unseen noise type (noise and SNR as for the trained ones), a signal family's
    processing (noise: the family's name, or the reference noise of the far field), or another corpus
    (``corpus``: its utterances clean, or under a trained noise type at an SNR, the severity)."""
    noise: str
    snr_db: float | None = None
    family: str | None = None
    severity: float | None = None
    corpus: str | None = None

    @property
    def condition(self) -> str:
        """metrics.csv's ``condition``: clean, noise, or the test-only family."""
        return self.family or (CLEAN if self.noise == CLEAN else NOISE)

    @property
    def level(self) -> float | None:
        """metrics.csv's ``severity``: the SNR of a noise, the family's severity, none for clean speech."""
        return self.severity if self.family else self.snr_db

    @property
    def is_signal(self) -> bool:
        """Whether its audio is made by a family's processing (reverb, far field, telephone, codec, clipping), not
        by mixing a noise into speech."""
        return self.family is not None and not mixes(self.family)

    @property
    def noise_name(self) -> str:
        """metrics.csv's ``noise``: the noise type (or the family), prefixed by another corpus's name (``emodb/clean``,
        ``emodb/babble``)."""
        return f"{self.corpus}/{self.noise}" if self.corpus else self.noise

    @property
    def label(self) -> str:
        if self.is_signal:
            where = "" if self.noise == self.family else f" + {self.noise} {self.snr_db:g} dB"
            return f"{self.family} {self.severity:g}{where}"
        heard = CLEAN if self.noise == CLEAN else f"{self.noise} {self.snr_db:g} dB"
        return f"{self.corpus}: {heard}" if self.corpus else heard


def heard(clean: np.ndarray, utt_id: str, condition: Condition, noise_bank: dict, rirs: dict | None, seed: int,
          level: str = "p56", speech_db: float | None = None) -> np.ndarray:
    """The one test version of ``utt_id`` under ``condition``, what every compared model, the notebooks and the
    explorer hear: the clean speech, a noise mixed in at its SNR (``speech_db``: the speech level, where known), or
    a signal family's processing."""
    if condition.is_signal:
        rng = condition_rng(seed, utt_id, condition.family, condition.severity)
        module = family(condition.family)
        if hasattr(module, "audio"):
            return module.audio(clean, condition, rng, noise_bank, rirs, level)
        return module.apply(clean, condition.severity, rng)
    if condition.noise == CLEAN:
        return clean
    rng = condition_rng(seed, utt_id, condition.noise, condition.snr_db)
    return mix_at_snr(clean, noise_bank[condition.noise], condition.snr_db, rng, level, speech_db=speech_db)


def trained_conditions(noise_types, snrs) -> list[Condition]:
    """Clean speech and every trained noise type at every SNR: the paper's conditions."""
    return [Condition(CLEAN)] + [Condition(n, float(s)) for n in noise_types for s in snrs]


def family_conditions(cfg, rir_severities=None) -> list[Condition]:
    """The study's test-only conditions, in ``cfg.conditions``' order (``rir_severities``: the RT60s the RIR bank
    holds, where it was built from real RIRs)."""
    out = []
    for name in cfg.conditions:
        module = family(name)
        levels = rir_severities if getattr(module, "ROOMS", False) and rir_severities else None
        if hasattr(module, "conditions"):
            out += module.conditions(cfg, levels)
        else:
            out += [Condition(name, None, name, float(v)) for v in levels or module.SEVERITIES]
    return out


def corpus_conditions(cfg, corpus: str) -> list[Condition]:
    """What another corpus of ``test_manifests`` (its stem) is scored under (``corpus.py``)."""
    return family("corpus").conditions(cfg, corpus)


def condition_count(cfg) -> int:
    """What each model is scored under on a fold's test utterances: clean, every trained noise at every SNR, and the
    test-only conditions."""
    return 1 + len(cfg.noise_types) * len(cfg.snrs) + len(family_conditions(cfg))


def needs_rirs(cfg) -> bool:
    """Whether the study scores a family that draws from its room impulse responses."""
    return any(getattr(family(name), "ROOMS", False) for name in cfg.conditions)


def unit(name: str) -> str:
    return family(name).UNIT
