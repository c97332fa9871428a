"""Torch dataset of (clean, noisy) versions of the same utterance, and its collate.

Which noise and SNR an item gets is decided by a generator seeded with
(seed, epoch, index) during training — every epoch draws new noise, yet a rerun
draws the same — and by (seed, utterance, noise, SNR) for evaluation conditions,
so every model compared hears the same noisy test audio.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from ..names import CLEAN, CORPUS, EMOTIONS, NOISE, UNSEEN_NOISE
from .audio import SAMPLE_RATE, read_audio
from .mixing import mix_at_snr, speech_level_db


def stable_hash(text: str) -> int:
    return zlib.crc32(text.encode())


def condition_rng(seed: int, utt_id: str, noise: str, snr_db: float) -> np.random.Generator:
    """The generator for the one noisy test version of ``utt_id`` under (noise, SNR) — or (family, severity)."""
    return np.random.default_rng([seed, stable_hash(utt_id), stable_hash(noise), int(round(snr_db * 100)) + 10_000])


def condition_audio(clean: np.ndarray, utt_id: str, noise: str, snr_db: float | None, noise_bank: dict,
                    seed: int, level: str = "p56", speech_db: float | None = None) -> np.ndarray:
    """The one noisy test version of ``utt_id`` under (noise, SNR), or the clean speech for
    ``noise == "clean"``: what every compared model, the notebooks and the explorer hear."""
    if noise == CLEAN:
        return clean
    rng = condition_rng(seed, utt_id, noise, snr_db)
    return mix_at_snr(clean, noise_bank[noise], snr_db, rng, level, speech_db=speech_db)


@dataclass(frozen=True)
class Condition:
    """A test condition: clean speech (noise 'clean', snr None), a trained noise type at an SNR, or a test-only
    ``family`` (data/robustness.py) at a ``severity``: an unseen noise type (noise and SNR as for the trained
    ones), a signal corruption (noise: the family's name, or the reference noise of the far field), or another
    corpus (``corpus``: its utterances clean, or under a trained noise type at an SNR, the severity)."""
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
        """Whether the audio is made by a signal family's processing (reverb, far field, telephone, codec, clipping),
        not by mixing a noise into speech."""
        return self.family not in (None, UNSEEN_NOISE, CORPUS)

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


def all_conditions(noise_types, snrs) -> list[Condition]:
    return [Condition(CLEAN)] + [Condition(n, float(s)) for n in noise_types for s in snrs]


class AudioCache:
    """Utterance audio read once and kept (truncated to ``max_seconds``), and its speech
    level, which mixing needs every epoch and which depends on the speech alone."""

    def __init__(self, max_seconds: float | None = None):
        self.max_samples = int(max_seconds * SAMPLE_RATE) if max_seconds else None
        self._store: dict[str, np.ndarray] = {}
        self._levels: dict[tuple[str, str], float] = {}

    def level_db(self, utt_id: str, path: str, level: str) -> float:
        key = (utt_id, level)
        if key not in self._levels:
            self._levels[key] = speech_level_db(self.get(utt_id, path), level)
        return self._levels[key]

    def get(self, utt_id: str, path: str) -> np.ndarray:
        if utt_id not in self._store:
            x = read_audio(path)
            self._store[utt_id] = x[: self.max_samples] if self.max_samples else x
        return self._store[utt_id]


class NoisyPairDataset(Dataset):
    """Items: ``clean`` and ``noisy`` waveforms of one utterance, its label, noise and SNR.

    ``mode``: ``"clean"`` (noisy = clean, for the teacher), ``"random"`` (a noise type and
    an SNR drawn per utterance and epoch, as in the paper) or a fixed ``Condition``. ``labels``: the
    study's classes in logit order (``emotions``); an item's label is its index there.
    """

    def __init__(self, manifest: pd.DataFrame, noise_bank: dict[str, np.ndarray] | None = None,
                 mode: str | Condition = "clean", snrs=(0, 5, 10, 15, 20), seed: int = 0,
                 level: str = "p56", audio: AudioCache | None = None, labels: Sequence[str] = EMOTIONS,
                 rirs: dict | None = None, made: list[np.ndarray] | None = None):
        self.rows = manifest.reset_index(drop=True)
        self.noise_bank = noise_bank or {}
        self.mode, self.snrs, self.seed, self.level = mode, [float(s) for s in snrs], seed, level
        self.rirs = rirs  # {RT60: [RIR]}: what a reverberant test condition draws from
        self.made = made  # a fixed condition's audio made before (data/kept_audio.py), in the manifest's order
        self.audio = audio or AudioCache()
        self.epoch = 0
        if mode == "random" and not self.noise_bank:
            raise ValueError("mode='random' needs a noise bank")
        if isinstance(mode, Condition) and mode.noise not in (CLEAN, mode.family) and mode.noise not in self.noise_bank:
            raise ValueError(f"noise type {mode.noise!r} is not in the bank {sorted(self.noise_bank)}")
        self.labels = list(labels)
        unknown = sorted(set(self.rows["emotion"]) - set(self.labels))
        if unknown:
            raise ValueError(f"emotion labels {unknown} are not among the study's classes {self.labels}")

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict:
        row = self.rows.iloc[index]
        clean = self.audio.get(row.utt_id, row.path)
        noise, snr, noisy = CLEAN, None, clean
        if self.mode == "random":
            rng = np.random.default_rng([self.seed, self.epoch, index])
            noise = sorted(self.noise_bank)[int(rng.integers(len(self.noise_bank)))]
            snr = self.snrs[int(rng.integers(len(self.snrs)))]
            noisy = mix_at_snr(clean, self.noise_bank[noise], snr, rng, self.level,
                               speech_db=self.audio.level_db(row.utt_id, row.path, self.level))
        elif isinstance(self.mode, Condition) and self.made is not None:
            noise, snr, noisy = self.mode.noise, self.mode.snr_db, self.made[index]
        elif isinstance(self.mode, Condition) and self.mode.is_signal:
            from .robustness import corrupt
            noise, snr = self.mode.noise, self.mode.snr_db
            noisy = corrupt(clean, row.utt_id, self.mode, self.noise_bank, self.rirs, self.seed, self.level)
        elif isinstance(self.mode, Condition):
            noise, snr = self.mode.noise, self.mode.snr_db
            speech_db = None if noise == CLEAN else self.audio.level_db(row.utt_id, row.path, self.level)
            noisy = condition_audio(clean, row.utt_id, noise, snr, self.noise_bank, self.seed, self.level, speech_db)
        elif self.mode != "clean":
            raise ValueError(f"mode must be 'clean', 'random' or a Condition, got {self.mode!r}")
        return dict(utt_id=row.utt_id, clean=clean, noisy=noisy, label=self.labels.index(row.emotion),
                    noise=noise, snr_db=snr)


def _pad(waves: list[np.ndarray]) -> torch.Tensor:
    out = torch.zeros(len(waves), max(len(w) for w in waves))
    for i, w in enumerate(waves):
        out[i, : len(w)] = torch.from_numpy(np.asarray(w, dtype=np.float32))
    return out


def collate(items: list[dict]) -> dict:
    """Zero-padded clean and noisy batches (same lengths), lengths and labels."""
    return dict(
        utt_id=[it["utt_id"] for it in items],
        clean=_pad([it["clean"] for it in items]),
        noisy=_pad([it["noisy"] for it in items]),
        lengths=torch.tensor([len(it["clean"]) for it in items]),
        label=torch.tensor([it["label"] for it in items]),
        noise=[it["noise"] for it in items],
        snr_db=[it["snr_db"] for it in items],
    )
