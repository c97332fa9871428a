"""The frozen teacher's targets for MLKD: the hidden states of the layers the student learns from,
and its logits, for each training utterance's clean audio.

One setting, ``storage``: "memory" (computed once per utterance and kept unpadded as fp32 tensors),
"disk" (the same, one fp16 ``.npy`` per layer and utterance under ``cache_dir``, read back as real
memory maps) or "off" (recomputed for every batch). Every mode gives the student the same
targets: a group-norm teacher (wav2vec2-base) sees no attention mask, so padding would change its
statistics, and for it the live targets are computed one utterance at a time, like the cache."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..device import autocast
from .models import EmotionClassifier

Targets = tuple[dict[int, torch.Tensor], torch.Tensor]  # {layer: (frames, hidden)}, logits
STORAGES = ("memory", "disk", "off")


class TeacherTargets:
    def __init__(self, teacher: EmotionClassifier, layers: list[int], device: torch.device,
                 storage: str = "memory", cache_dir: Path | None = None, amp: bool = False):
        if storage not in STORAGES:
            raise ValueError(f"teacher cache storage must be one of {STORAGES}, got {storage!r}")
        self.teacher = teacher.to(device).eval()  # its targets are computed where the inputs are sent
        self.layers, self.device, self.amp = sorted(set(layers)), device, amp
        self.storage, self.cache_dir = storage, cache_dir
        self._mem: dict[str, Targets] = {}
        if storage == "disk":
            if cache_dir is None:
                raise ValueError("a disk teacher cache needs cache_dir")
            cache_dir.mkdir(parents=True, exist_ok=True)

    def _dir(self, utt_id: str) -> Path:
        return self.cache_dir / utt_id

    @torch.no_grad()
    def compute(self, clean: np.ndarray) -> Targets:
        """One utterance's targets, unpadded."""
        x = torch.from_numpy(np.asarray(clean, dtype=np.float32))[None].to(self.device)
        with autocast(self.device, self.amp):
            out = self.teacher(x, output_hidden_states=True)
        return ({t: out.hidden_states[t][0].float().cpu() for t in self.layers}, out.logits[0].float().cpu())

    @torch.no_grad()
    def compute_many(self, cleans: list[np.ndarray], batch_size: int = 16) -> list[Targets]:
        """Each utterance's targets, unpadded. A teacher that honours the attention mask ignores padding,
        so it runs in batches of similar length; one that cannot, one utterance at a time."""
        if not self.teacher.uses_attention_mask():
            return [self.compute(c) for c in cleans]
        out: list[Targets | None] = [None] * len(cleans)
        order = sorted(range(len(cleans)), key=lambda i: len(cleans[i]))
        for s in range(0, len(order), batch_size):
            idx = order[s:s + batch_size]
            x = torch.zeros(len(idx), max(len(cleans[i]) for i in idx))
            for j, i in enumerate(idx):
                x[j, : len(cleans[i])] = torch.from_numpy(np.asarray(cleans[i], dtype=np.float32))
            lengths = torch.tensor([len(cleans[i]) for i in idx])
            with autocast(self.device, self.amp):
                res = self.teacher(x.to(self.device), lengths.to(self.device), output_hidden_states=True)
            frames = res.frame_mask.sum(1).tolist()
            for j, i in enumerate(idx):
                out[i] = ({t: res.hidden_states[t][j, : frames[j]].float().cpu() for t in self.layers},
                          res.logits[j].float().cpu())
        return out

    def fill(self, utterances, progress: bool = True) -> None:
        """Compute and keep the targets of each ``(utt_id, clean waveform)`` not cached yet (with
        storage "off", nothing: they are computed batch by batch)."""
        if self.storage == "off":
            return
        todo = [(u, c) for u, c in utterances
                if u not in self._mem and not (self.storage == "disk" and (self._dir(u) / "logits.npy").exists())]
        chunks = [todo[s:s + 256] for s in range(0, len(todo), 256)]  # bounded memory, progress per chunk
        for chunk in tqdm(chunks, desc="teacher targets", disable=not progress, leave=False):
            for (utt_id, _), (hidden, logits) in zip(chunk, self.compute_many([c for _, c in chunk])):
                self._keep(utt_id, hidden, logits)

    def _keep(self, utt_id: str, hidden: dict, logits: torch.Tensor) -> None:
        if self.storage == "memory":
            self._mem[utt_id] = (hidden, logits)
            return
        d = self._dir(utt_id)
        d.mkdir(exist_ok=True)
        for t, h in hidden.items():
            np.save(d / f"h{t}.npy", h.half().numpy())
        tmp = d / "logits.tmp.npy"
        np.save(tmp, logits.numpy())
        os.replace(tmp, d / "logits.npy")  # written last: its presence means the utterance is complete

    def get(self, utt_id: str) -> Targets:
        if self.storage == "disk":
            d = self._dir(utt_id)
            return ({t: torch.from_numpy(np.load(d / f"h{t}.npy", mmap_mode="r").astype(np.float32))
                     for t in self.layers}, torch.from_numpy(np.load(d / "logits.npy")))
        return self._mem[utt_id]

    def batch(self, utt_ids: list[str], num_frames: int, clean: torch.Tensor | None = None,
              lengths: torch.Tensor | None = None) -> Targets:
        """Targets for a batch, zero-padded to the student's ``num_frames``: from the store, or with
        storage "off" computed now from the padded ``clean`` batch and its ``lengths`` (one unpadded
        utterance at a time for a teacher that cannot take an attention mask)."""
        if self.storage == "off":
            if clean is None or lengths is None:
                raise ValueError("teacher targets with storage 'off' are computed from the clean batch")
            if self.teacher.uses_attention_mask():
                with torch.no_grad():
                    out = self.teacher(clean.to(self.device), lengths.to(self.device), output_hidden_states=True)
                return {t: out.hidden_states[t] for t in self.layers}, out.logits
            got = [self.compute(w[:n].numpy()) for w, n in zip(clean, lengths)]
        else:
            got = [self.get(u) for u in utt_ids]
        hidden = {}
        for t in self.layers:
            h = torch.zeros(len(got), num_frames, got[0][0][t].shape[-1])
            for i, (hs, _) in enumerate(got):
                n = min(num_frames, hs[t].shape[0])
                h[i, :n] = hs[t][:n]
            hidden[t] = h.to(self.device)
        return hidden, torch.stack([lg for _, lg in got]).to(self.device)
