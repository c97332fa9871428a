"""Test conditions beyond the training noise: which a study scores (``extra_conditions``), the audio each makes
(``corrupt``) and the room impulse responses reverberation draws from (``write_rir_bank``).

Every trained model of every fold is scored under them without retraining. Each family has severity levels
(its module in ``data/conditions/`` says what a level means): unseen noise types at the study's SNRs,
reverberation (RT60), reverberation plus the study's reference noise at ``reverb_noise_snr`` (far field), a
telephone channel, a lossy codec (kbps) and clipping (share of samples clipped). The audio of a condition
depends only on (seed, utterance, family, severity), like the noisy test sets, so every model hears the same.
They touch the test utterances only: the students' training mixes draw from the trained noise types alone.
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path

import numpy as np

from ..names import CLEAN, CORPUS, REVERB, REVERB_NOISE, UNSEEN_NOISE, reference_noise
from .audio import read_audio, write_audio
from .mixing import mix_at_snr

SIGNAL_FAMILIES = ("reverb", "telephone", "codec", "clipping")  # one module each in data/conditions/


def family_module(family: str):
    """The module of a signal family (reverb_noise is reverb's)."""
    name = REVERB if family == REVERB_NOISE else family
    if name not in SIGNAL_FAMILIES:
        raise ValueError(f"no signal processing for condition family {family!r}")
    return import_module(f".conditions.{name}", __package__)


def severity_unit(family: str) -> str:
    return "dB SNR" if family == UNSEEN_NOISE else family_module(family).UNIT


def extra_conditions(cfg, rir_severities=None) -> list:
    """The study's test-only conditions, in ``cfg.conditions``' order (``rir_severities``: the RT60s the RIR bank
    holds, where it was built from real RIRs)."""
    from .dataset import Condition
    out = []
    for family in cfg.conditions:
        if family == UNSEEN_NOISE:
            out += [Condition(n, float(s), family, float(s)) for n in cfg.unseen_noise_types for s in cfg.snrs]
            continue
        levels = rir_severities if family in (REVERB, REVERB_NOISE) and rir_severities else \
            family_module(family).SEVERITIES
        if family == REVERB_NOISE:
            noise = reference_noise(cfg.noise_types)
            out += [Condition(noise, float(cfg.reverb_noise_snr), family, float(v)) for v in levels]
        else:
            out += [Condition(family, None, family, float(v)) for v in levels]
    return out


def corpus_conditions(cfg, corpus: str) -> list:
    """What another corpus (``test_manifests``) is scored under: its clean speech, and with ``test_corpus_noise``
    every trained noise type at every SNR (the severity), mixed exactly as the fold's own test utterances are."""
    from .dataset import Condition
    noisy = [Condition(n, float(s), CORPUS, float(s), corpus) for n in cfg.noise_types for s in cfg.snrs]
    return [Condition(CLEAN, None, CORPUS, None, corpus)] + (noisy if cfg.test_corpus_noise else [])


def condition_count(cfg) -> int:
    """What each model is scored under: clean, every trained noise at every SNR, and the test-only conditions."""
    return 1 + len(cfg.noise_types) * len(cfg.snrs) + len(extra_conditions(cfg))


def corrupt(clean: np.ndarray, utt_id: str, condition, noise_bank: dict, rirs: dict | None, seed: int,
            level: str = "p56") -> np.ndarray:
    """The one test version of ``utt_id`` under a test-only signal condition (reverb, far field, telephone,
    codec, clipping): seeded by (seed, utterance, family, severity)."""
    from .dataset import condition_rng
    rng = condition_rng(seed, utt_id, condition.family, condition.severity)
    if condition.family in (REVERB, REVERB_NOISE):
        if not rirs or condition.severity not in rirs:
            raise ValueError(f"no room impulse responses for RT60 {condition.severity} s (the RIR bank holds "
                             f"{sorted(rirs or {})}): run the study's data step")
        room = rirs[condition.severity]
        x = family_module(REVERB).apply_rir(clean, room[int(rng.integers(len(room)))])
        if condition.family == REVERB_NOISE:  # the noise is added at the far-field speech's level
            x = mix_at_snr(x, noise_bank[condition.noise], condition.snr_db, rng, level)
        return x
    return family_module(condition.family).apply(clean, condition.severity, rng)


def write_rir_bank(out_dir: str | Path, rt60s, rooms: int, seed: int, rir_dir: str = "") -> dict[float, int]:
    """The RIRs reverberation draws from, as ``<out_dir>/rt60-<s>/NN.wav``: ``rooms`` simulated shoebox rooms per
    RT60 (seeded), or the real RIRs of ``rir_dir``, each filed under the RT60 of ``rt60s`` nearest its measured
    one. Returns the count per RT60."""
    reverb = family_module(REVERB)
    out_dir = Path(out_dir)
    if rir_dir:
        bank: dict[float, list] = {float(t): [] for t in rt60s}
        for rir in reverb.load_rirs(rir_dir):
            measured = reverb.rt60_s(rir)
            bank[min(bank, key=lambda t: abs(t - measured))].append(rir)
        bank = {t: v for t, v in bank.items() if v}
        if not bank:
            raise ValueError(f"{rir_dir}: no usable room impulse response")
    else:
        bank = {float(t): [reverb.simulate_rir(float(t), np.random.default_rng([seed, int(round(t * 1000)), i]))[0]
                           for i in range(rooms)] for t in rt60s}
    for t, rirs in bank.items():
        for i, rir in enumerate(rirs):
            peak = float(np.max(np.abs(rir))) or 1.0
            write_audio(out_dir / f"rt60-{t:g}" / f"{i:02d}.wav", rir / peak, subtype="FLOAT")
    return {t: len(v) for t, v in bank.items()}


def load_rir_bank(bank_dir: str | Path) -> dict[float, list[np.ndarray]]:
    """{RT60: [RIR, ...]} from ``write_rir_bank``'s folder (empty when there is none)."""
    bank_dir = Path(bank_dir)
    if not bank_dir.is_dir():
        return {}
    return {float(d.name.split("-", 1)[1]): [read_audio(f) for f in sorted(d.glob("*.wav"))]
            for d in sorted(bank_dir.glob("rt60-*")) if d.is_dir()}


def needs_rirs(cfg) -> bool:
    return bool({REVERB, REVERB_NOISE} & set(cfg.conditions))
