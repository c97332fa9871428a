"""The frozen teacher's targets for MLKD: the hidden states of the layers the student learns from,
and its logits, for each training utterance's clean audio.

One setting, ``storage``: "memory" (computed once and kept as fp32 arrays), "disk" (the same as fp16 memory maps
under ``cache_dir``) or "off" (recomputed for every batch). Stored targets are one array per layer, the
utterances' frames one after another, with an index of where each utterance starts: a batch's targets are read
in one gather per layer, not one file per layer and utterance. A disk store is used only once its
``index.json`` — written last — says it is complete, so a run killed while filling it fills it again. Every mode
gives the student the same targets: a group-norm teacher (wav2vec2-base) sees no attention mask, so padding
would change its statistics, and for it the live targets are computed one utterance at a time, like the cache."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..device import autocast
from .models import EmotionClassifier

Targets = tuple[dict[int, torch.Tensor], torch.Tensor]  # {layer: (frames, hidden)}, logits
STORAGES = ("memory", "disk", "off")
INDEX = "index.json"
CHUNK = 256  # utterances computed at a time: bounded memory, progress per chunk


class TeacherTargets:
    def __init__(self, teacher: EmotionClassifier, layers: list[int], device: torch.device,
                 storage: str = "memory", cache_dir: Path | None = None, amp: bool = False):
        if storage not in STORAGES:
            raise ValueError(f"teacher cache storage must be one of {STORAGES}, got {storage!r}")
        if storage == "disk" and cache_dir is None:
            raise ValueError("a disk teacher cache needs cache_dir")
        self.teacher = teacher.to(device).eval()  # its targets are computed where the inputs are sent
        self.layers, self.device, self.amp = sorted(set(layers)), device, amp
        self.storage, self.cache_dir = storage, Path(cache_dir) if cache_dir else None
        self._index: dict[str, tuple[int, int, int]] = {}  # utterance -> (row, first frame, frames)
        self._hidden: dict[int, np.ndarray] = {}  # layer -> (all frames, hidden)
        self._logits = np.zeros((0, 0), np.float32)
        if storage == "disk":
            self._open()

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

    def _frames(self, samples: int) -> int:
        return int(self.teacher.encoder._get_feat_extract_output_lengths(torch.tensor(samples)))

    def _open(self) -> None:
        """A complete disk store of the same layers, read as memory maps; else nothing (it is filled anew)."""
        try:
            meta = json.loads((self.cache_dir / INDEX).read_text())
        except (OSError, ValueError):
            return
        if meta.get("layers") != self.layers:
            return
        self._index = {u: tuple(v) for u, v in meta["utterances"].items()}
        self._hidden = {t: np.load(self.cache_dir / f"h{t}.npy", mmap_mode="r") for t in self.layers}
        self._logits = np.load(self.cache_dir / "logits.npy", mmap_mode="r")

    def _allocate(self, utt_ids: list[str], frames: list[int], classes: int) -> None:
        starts = np.concatenate([[0], np.cumsum(frames)[:-1]]).astype(int)
        self._index = {u: (row, int(s), n) for row, (u, s, n) in enumerate(zip(utt_ids, starts, frames))}
        shape = (int(sum(frames)), self.teacher.config.hidden_size)
        if self.storage == "memory":
            self._hidden = {t: np.zeros(shape, np.float32) for t in self.layers}
            self._logits = np.zeros((len(utt_ids), classes), np.float32)
            return
        shutil.rmtree(self.cache_dir, ignore_errors=True)
        self.cache_dir.mkdir(parents=True)
        open_map = np.lib.format.open_memmap
        self._hidden = {t: open_map(self.cache_dir / f"h{t}.npy", "w+", np.float16, shape) for t in self.layers}
        self._logits = open_map(self.cache_dir / "logits.npy", "w+", np.float32, (len(utt_ids), classes))

    def fill(self, utterances, progress: bool = True) -> None:
        """Compute and keep the targets of every ``(utt_id, clean waveform)`` (with storage "off", nothing: they
        are computed batch by batch); a store that already holds them all is kept."""
        if self.storage == "off":
            return
        items = list(utterances)
        if items and all(u in self._index for u, _ in items):
            return
        self._allocate([u for u, _ in items], [self._frames(len(c)) for _, c in items], len(self.teacher.labels))
        chunks = [items[s:s + CHUNK] for s in range(0, len(items), CHUNK)]
        for chunk in tqdm(chunks, desc="teacher targets", disable=not progress, leave=False):
            for (utt_id, _), (hidden, logits) in zip(chunk, self.compute_many([c for _, c in chunk])):
                row, start, n = self._index[utt_id]
                for t, h in hidden.items():
                    if h.shape[0] != n:
                        raise RuntimeError(f"teacher gave {h.shape[0]} frames for {utt_id}, expected {n}")
                    self._hidden[t][start:start + n] = h.numpy()
                self._logits[row] = logits.numpy()
        if self.storage == "disk":
            for array in (*self._hidden.values(), self._logits):
                array.flush()
            meta = {"layers": self.layers, "utterances": {u: list(v) for u, v in self._index.items()}}
            tmp = self.cache_dir / f".{INDEX}.tmp"
            tmp.write_text(json.dumps(meta))
            os.replace(tmp, self.cache_dir / INDEX)  # written last: its presence means the store is complete

    def get(self, utt_id: str) -> Targets:
        row, start, n = self._index[utt_id]
        return ({t: torch.from_numpy(np.asarray(self._hidden[t][start:start + n], dtype=np.float32))
                 for t in self.layers}, torch.from_numpy(np.array(self._logits[row], dtype=np.float32)))

    def batch(self, utt_ids: list[str], num_frames: int, clean: torch.Tensor | None = None,
              lengths: torch.Tensor | None = None) -> Targets:
        """Targets for a batch, zero-padded to the student's ``num_frames``: from the store (one gather per layer),
        or with storage "off" computed now from the padded ``clean`` batch and its ``lengths`` (one unpadded
        utterance at a time for a teacher that cannot take an attention mask)."""
        if self.storage == "off":
            return self._live(clean, lengths, num_frames)
        spans = [self._index[u] for u in utt_ids]
        keep = [min(n, num_frames) for _, _, n in spans]
        rows = np.concatenate([np.arange(s, s + k) for (_, s, _), k in zip(spans, keep)])
        where = (np.concatenate([np.full(k, i) for i, k in enumerate(keep)]),  # (utterance, frame) of each row
                 np.concatenate([np.arange(k) for k in keep]))
        hidden = {}
        for t in self.layers:
            h = np.zeros((len(spans), num_frames, self._hidden[t].shape[1]), np.float32)
            h[where] = self._hidden[t][rows]
            hidden[t] = torch.from_numpy(h).to(self.device)
        logits = np.asarray(self._logits[[r for r, _, _ in spans]], dtype=np.float32)
        return hidden, torch.from_numpy(logits).to(self.device)

    def _live(self, clean: torch.Tensor | None, lengths: torch.Tensor | None, num_frames: int) -> Targets:
        if clean is None or lengths is None:
            raise ValueError("teacher targets with storage 'off' are computed from the clean batch")
        if self.teacher.uses_attention_mask():
            with torch.no_grad():
                out = self.teacher(clean.to(self.device), lengths.to(self.device), output_hidden_states=True)
            return {t: out.hidden_states[t] for t in self.layers}, out.logits
        got = [self.compute(w[:n].numpy()) for w, n in zip(clean, lengths)]
        hidden = {}
        for t in self.layers:
            h = torch.zeros(len(got), num_frames, got[0][0][t].shape[-1])
            for i, (hs, _) in enumerate(got):
                n = min(num_frames, hs[t].shape[0])
                h[i, :n] = hs[t][:n]
            hidden[t] = h.to(self.device)
        return hidden, torch.stack([lg for _, lg in got]).to(self.device)
