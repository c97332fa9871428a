"""Pretraining the demo encoder on emotion-free synthetic speech by voices outside the study.

The paper's teacher starts from wav2vec 2.0 pretrained on 960 h of speech; the demo's tiny
encoder starts here. The corpus is spoken by espeak-ng voices that none of the 10 study
speakers uses, says other sentences, and draws every prosodic setting independently from a
broad range: there are no emotions in it and no emotion labels are ever read.

Objectives (``objective=``):

- ``"masked"``: HuBERT-style masked prediction. Each 20 ms frame gets a unit, its k-means
  cluster over MFCCs + deltas of the pretraining corpus; spans of the encoder's input are
  replaced by the learned mask embedding and the encoder predicts the units of the masked
  frames. Self-supervised: the targets come from the audio alone.
- ``"prosody"``: a pretext task; the pooled last layer regresses the synthesis settings
  (pitch, pitch range, rate, breathiness, tension) of each utterance.
- ``"masked+prosody"``: both losses, summed.
- ``"contrastive"``: wav2vec 2.0's own objective (``Wav2Vec2ForPreTraining``: contrastive
  loss over Gumbel-quantised targets plus the codebook diversity loss).

The result is a ``save_pretrained`` folder, loaded by the teacher through ``model=PATH``
exactly like a local wav2vec2-base, with ``provenance.json`` beside it.
"""

from __future__ import annotations

import json
import math
import os
import random
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torchaudio
from scipy.cluster.vq import kmeans2
from torch import nn
from tqdm.auto import tqdm
from transformers import Wav2Vec2Config, Wav2Vec2ForPreTraining, Wav2Vec2Model

from ..data.audio import SAMPLE_RATE, read_audio
from ..data.pretrain_corpus import PRETRAIN_SENTENCES, PROSODY_RANGES, PROSODY_TARGETS, make_pretrain_corpus
from ..paths import git_commit
from .models import TINY, normalize_waveforms
from .pretrain_settings import PRETRAIN_OBJECTIVES, PretrainSettings

UNIT_HOP, UNIT_WIN = 320, 400  # the CNN's stride and receptive field: one unit per encoder frame


# ------------------------------------------------------------------ targets

def frame_features(x: np.ndarray) -> torch.Tensor:
    """MFCC (13) + deltas + delta-deltas per encoder frame, normalised per utterance: (frames, 39)."""
    mfcc = torchaudio.transforms.MFCC(SAMPLE_RATE, n_mfcc=13, melkwargs=dict(
        n_fft=512, win_length=UNIT_WIN, hop_length=UNIT_HOP, n_mels=40, center=False))
    c = mfcc(torch.from_numpy(np.asarray(x, dtype=np.float32)))
    d1 = torchaudio.functional.compute_deltas(c)
    f = torch.cat([c, d1, torchaudio.functional.compute_deltas(d1)]).T
    return (f - f.mean(0)) / (f.std(0) + 1e-5)


def kmeans_units(waves: list[np.ndarray], k: int, seed: int, max_frames: int = 60_000) -> list[np.ndarray]:
    """Each utterance's frames as k-means cluster ids (HuBERT's first-iteration targets)."""
    feats = [frame_features(w).numpy().astype(np.float64) for w in waves]
    pool = np.concatenate(feats)
    rng = np.random.default_rng(seed)
    if len(pool) > max_frames:
        pool = pool[rng.choice(len(pool), max_frames, replace=False)]
    centroids, _ = kmeans2(pool, k, iter=25, minit="++", seed=rng)
    return [np.argmin(((f[:, None, :] - centroids[None]) ** 2).sum(-1), axis=1) for f in feats]


def span_mask(lengths: list[int], frames: int, prob: float, span: int, gen: torch.Generator) -> torch.Tensor:
    """(batch, frames) bool: about ``prob`` of each utterance's real frames, in spans of ``span``."""
    mask = torch.zeros(len(lengths), frames, dtype=torch.bool)
    for i, n in enumerate(lengths):
        if n <= span:
            continue
        k = max(1, round(prob * n / span))
        for s in torch.randperm(n - span + 1, generator=gen)[:k].tolist():
            mask[i, s:s + span] = True
    return mask


# ------------------------------------------------------------------ the models

def encoder_config(**changes) -> Wav2Vec2Config:
    """The demo's encoder (``models.TINY``). ``mask_time_prob`` > 0 gives it the learned mask
    embedding, as wav2vec2-base has; whether a fine-tuning run applies SpecAugment is the
    study's ``mask_time_prob`` setting, not this file's."""
    return Wav2Vec2Config(**{**TINY, "mask_time_prob": 0.05, "mask_time_length": 5, **changes})


class MaskedProsodyPretrainer(nn.Module):
    """The encoder with the heads of the masked-unit and/or the prosody objective."""

    def __init__(self, config: Wav2Vec2Config, n_units: int, masked: bool, prosody: bool):
        super().__init__()
        self.wav2vec2 = Wav2Vec2Model(config)
        self.unit_head = nn.Linear(config.hidden_size, n_units) if masked else None
        self.prosody_head = nn.Linear(config.hidden_size, len(PROSODY_TARGETS)) if prosody else None

    def forward(self, x, lengths, mask, units, prosody) -> tuple[torch.Tensor, dict]:
        valid = torch.arange(x.shape[1])[None, :] < lengths[:, None]
        x = normalize_waveforms(x, valid)
        out = self.wav2vec2(x, attention_mask=valid.long(), mask_time_indices=mask if self.unit_head else None)
        h = out.last_hidden_state
        n = self.wav2vec2._get_feat_extract_output_lengths(lengths).clamp(max=h.shape[1])
        real = torch.arange(h.shape[1])[None, :] < n[:, None]
        parts = {}
        if self.unit_head is not None:
            pick = mask & real & (units >= 0)
            parts["units"] = nn.functional.cross_entropy(self.unit_head(h[pick]), units[pick])
        if self.prosody_head is not None:
            m = real.unsqueeze(-1).to(h.dtype)
            pooled = (h * m).sum(1) / m.sum(1).clamp(min=1.0)
            parts["prosody"] = nn.functional.mse_loss(self.prosody_head(pooled), prosody)
        return sum(parts.values()), {k: v.item() for k, v in parts.items()}


class ContrastivePretrainer(nn.Module):
    """wav2vec 2.0's objective via ``Wav2Vec2ForPreTraining``, sized for the tiny encoder."""

    def __init__(self, config: Wav2Vec2Config):
        super().__init__()
        config.update(dict(codevector_dim=32, proj_codevector_dim=32, num_codevector_groups=2,
                           num_codevectors_per_group=64, num_negatives=20, diversity_loss_weight=0.1,
                           feat_quantizer_dropout=0.0))
        self.model = Wav2Vec2ForPreTraining(config)
        self.wav2vec2 = self.model.wav2vec2

    def forward(self, x, lengths, mask, units, prosody) -> tuple[torch.Tensor, dict]:
        from transformers.models.wav2vec2.modeling_wav2vec2 import _sample_negative_indices
        valid = torch.arange(x.shape[1])[None, :] < lengths[:, None]
        x = normalize_waveforms(x, valid)
        neg = _sample_negative_indices(tuple(mask.shape), self.model.config.num_negatives, mask.numpy())
        out = self.model(x, attention_mask=valid.long(), mask_time_indices=mask,
                         sampled_negative_indices=torch.from_numpy(neg))
        return out.loss, {"contrastive": out.contrastive_loss.item() / max(1, int(mask.sum())),
                          "diversity": out.diversity_loss.item()}


# ------------------------------------------------------------------ the loop

def _corpus(s: PretrainSettings, out_dir: Path, corpus_dir: str | Path | None, progress: bool):
    """The pretraining corpus (made, or reused when made with the same seed and size) and its audio."""
    corpus_dir = Path(corpus_dir) if corpus_dir else out_dir.parent / f"{out_dir.name}-corpus"
    recipe = {"seed": s.seed, "utterances": s.utterances}
    stamp = corpus_dir / "recipe.json"
    if not stamp.is_file() or json.loads(stamp.read_text()) != recipe:
        make_pretrain_corpus(corpus_dir, s.seed, s.utterances, progress)
        stamp.write_text(json.dumps(recipe))
    corpus = pd.read_csv(corpus_dir / "manifest.csv")
    return corpus, [read_audio(corpus_dir / p) for p in corpus.path]


def _batch(model, waves, units, s: PretrainSettings, gen: torch.Generator):
    """A random batch: its zero-padded audio, lengths, span mask, frame units (-1: none) and the indices drawn."""
    lengths_all = np.array([len(w) for w in waves])
    idx = torch.randint(len(waves), (s.batch_size,), generator=gen).numpy()
    lens = lengths_all[idx]
    x = torch.zeros(len(idx), int(lens.max()))
    for i, j in enumerate(idx):
        x[i, :lens[i]] = torch.from_numpy(waves[j])
    lengths = torch.from_numpy(lens)
    frames = int(model.wav2vec2._get_feat_extract_output_lengths(torch.tensor(x.shape[1])))
    n_frames = model.wav2vec2._get_feat_extract_output_lengths(lengths).tolist()
    mask = span_mask(n_frames, frames, s.mask_prob, s.mask_span, gen)
    u = torch.full((len(idx), frames), -1, dtype=torch.long)
    for i, j in enumerate(idx):
        k = min(frames, len(units[j]))
        u[i, :k] = torch.from_numpy(units[j][:k])
    return x, lengths, mask, u, idx


def _provenance(s: PretrainSettings, corpus: pd.DataFrame, log: list, t0: float) -> dict:
    return {
        "command": " ".join(["mlkd", *sys.argv[1:]]) if sys.argv and sys.argv[0].endswith("mlkd") else None,
        "settings": asdict(s), "git_commit": git_commit(), "wall_s": round(time.time() - t0, 1),
        "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
        "corpus": {"utterances": len(corpus), "voices": sorted(corpus.voice.unique()),
                   "sentences": len(PRETRAIN_SENTENCES), "prosody_ranges": PROSODY_RANGES,
                   "hours": round(corpus.duration_s.sum() / 3600, 3),
                   "note": "emotion-free: every prosodic setting drawn independently; no study voice, "
                           "no study sentence, no emotion label"},
        "loss_log": log,
    }


def pretrain(out_dir: str | Path, settings: PretrainSettings | None = None, corpus_dir: str | Path | None = None,
             progress: bool = True) -> dict:
    """Make (or reuse) the pretraining corpus, pretrain the encoder, write it to ``out_dir``."""
    s = settings or PretrainSettings()
    if s.objective not in PRETRAIN_OBJECTIVES:
        raise ValueError(f"objective must be one of {PRETRAIN_OBJECTIVES}, got {s.objective!r}")
    t0 = time.time()
    torch.set_num_threads(s.threads or os.cpu_count() or 1)
    out_dir = Path(out_dir)
    corpus, waves = _corpus(s, out_dir, corpus_dir, progress)
    torch.manual_seed(s.seed)
    np.random.seed(s.seed)  # Wav2Vec2ForPreTraining samples its negatives with numpy's global generator
    random.seed(s.seed)
    masked, prosodic = "masked" in s.objective, "prosody" in s.objective
    units = kmeans_units(waves, s.units, s.seed) if masked else [np.zeros(0, dtype=np.int64)] * len(waves)
    targets = corpus[list(PROSODY_TARGETS)].to_numpy(dtype=np.float32)
    targets = (targets - targets.mean(0)) / targets.std(0)
    config = encoder_config()
    model = ContrastivePretrainer(config) if s.objective == "contrastive" else \
        MaskedProsodyPretrainer(config, s.units, masked, prosodic)
    opt = torch.optim.AdamW(model.parameters(), lr=s.lr, weight_decay=0.01)
    warm = max(1, int(s.warmup_frac * s.steps))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda k: min((k + 1) / warm, 0.5 * (1 + math.cos(math.pi * min(1.0, k / s.steps)))))
    gen = torch.Generator().manual_seed(s.seed)
    log, sums = [], {}
    model.train()
    for step in tqdm(range(s.steps), desc=f"pretrain ({s.objective})", disable=not progress):
        if s.objective == "contrastive":  # Gumbel temperature 2 → 0.5, as wav2vec 2.0 anneals it
            model.model.set_gumbel_temperature(max(0.5, 2.0 * 0.9995 ** step))
        x, lengths, mask, u, idx = _batch(model, waves, units, s, gen)
        loss, parts = model(x, lengths, mask, u, torch.from_numpy(targets[idx]))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        sched.step()
        for k, v in dict(parts, loss=loss.item()).items():
            sums[k] = sums.get(k, 0.0) + v
        if (step + 1) % 100 == 0 or step + 1 == s.steps:
            log.append({"step": step + 1, **{k: round(v / ((step % 100) + 1), 5) for k, v in sums.items()}})
            sums = {}
    out_dir.mkdir(parents=True, exist_ok=True)
    model.wav2vec2.save_pretrained(out_dir)
    provenance = _provenance(s, corpus, log, t0)
    (out_dir / "provenance.json").write_text(json.dumps(provenance, indent=2))
    return provenance
