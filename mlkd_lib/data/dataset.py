"""Torch dataset of (clean, noisy) versions of the same utterance, and its collate.

Which noise and SNR an item gets is decided by a generator seeded with (seed, epoch, index) during training —
every epoch draws new noise, yet a rerun draws the same — and, for a test condition, by the condition itself
(``conditions/families.py``: ``heard``), so every model compared hears the same test audio.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from ..names import CLEAN, EMOTIONS
from .audio import SAMPLE_RATE, read_audio
from .conditions.families import Condition, heard
from .mixing import mix_at_snr, speech_level_db


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

    def __getitem__(self, index: int | tuple[int, int]) -> dict:
        """Item ``index``, or ``(epoch, index)``: the epoch its training noise is drawn for (a loader's workers
        live across epochs and never see ``set_epoch``; the batch sampler tells them)."""
        epoch, index = index if isinstance(index, tuple) else (self.epoch, index)
        row = self.rows.iloc[index]
        clean = self.audio.get(row.utt_id, row.path)
        noise, snr, noisy = CLEAN, None, clean
        if self.mode == "random":
            rng = np.random.default_rng([self.seed, epoch, index])
            noise = sorted(self.noise_bank)[int(rng.integers(len(self.noise_bank)))]
            snr = self.snrs[int(rng.integers(len(self.snrs)))]
            noisy = mix_at_snr(clean, self.noise_bank[noise], snr, rng, self.level,
                               speech_db=self.audio.level_db(row.utt_id, row.path, self.level))
        elif isinstance(self.mode, Condition) and self.made is not None:
            noise, snr, noisy = self.mode.noise, self.mode.snr_db, self.made[index]
        elif isinstance(self.mode, Condition):
            noise, snr = self.mode.noise, self.mode.snr_db
            speech_db = None if noise == CLEAN else self.audio.level_db(row.utt_id, row.path, self.level)
            noisy = heard(clean, row.utt_id, self.mode, self.noise_bank, self.rirs, self.seed, self.level, speech_db)
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
    """Zero-padded clean and noisy batches, the lengths of what the model hears (the noisy audio: the clean one's
    length, except after an evaluation's ``transform``, which may shorten it) and labels."""
    return dict(
        utt_id=[it["utt_id"] for it in items],
        clean=_pad([it["clean"] for it in items]),
        noisy=_pad([it["noisy"] for it in items]),
        lengths=torch.tensor([len(it["noisy"]) for it in items]),
        label=torch.tensor([it["label"] for it in items]),
        noise=[it["noise"] for it in items],
        snr_db=[it["snr_db"] for it in items],
    )
