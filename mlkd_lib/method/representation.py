"""A look inside (beyond the paper): does a student extract *clean* features from noisy speech?

For each layer k of a model and each test condition, the distance between its states on the test
audio and the fold teacher's layer-2k states on the clean version of the same utterances:

    D = Σ (S − T)² / Σ (T − T̄)²        over every real frame and dimension of the test utterances,

T̄ the teacher's per-dimension mean over those frames. D is 1 − R² of the model's states as a
prediction of the teacher's clean ones: 0 when they are equal, 1 when they are no better than the
teacher's mean. The paper's claim predicts a lower D for the MLKD student than for the CE-only
students at low SNR; the teacher's own row (its noisy states against its clean ones) shows what
noise does to the states a student is asked to match.
"""

from __future__ import annotations

from collections import defaultdict

import torch

from .teacher_cache import TeacherTargets


class LayerDistance:
    """Accumulates D per (condition, layer) over the batches of an evaluation pass."""

    def __init__(self, reference: TeacherTargets, layer_map: dict[int, int], utt_ids: list[str]):
        self.layer_map = dict(layer_map)
        self.ref = {u: reference.get(u)[0] for u in utt_ids}  # {utt: {teacher layer: (frames, dims)}}
        self.spread = {}
        for t in set(self.layer_map.values()):
            states = torch.cat([self.ref[u][t].float() for u in utt_ids])
            self.spread[t] = float(((states - states.mean(0)) ** 2).sum())
        self.sse: dict[tuple, float] = defaultdict(float)

    def covers(self, utt_id: str) -> bool:
        return utt_id in self.ref

    def add(self, condition, utt_ids: list[str], hidden_states, frame_mask: torch.Tensor) -> None:
        """Add a batch: ``hidden_states`` in Hugging Face indexing, ``frame_mask`` True on real frames."""
        keep = [i for i, u in enumerate(utt_ids) if u in self.ref]
        if not keep:
            return
        frames, layer = frame_mask.shape[1], next(iter(self.layer_map.values()))  # all layers: one frame count
        lengths = [min(int(frame_mask[i].sum()), self.ref[utt_ids[i]][layer].shape[0], frames) for i in keep]
        real = torch.arange(frames)[None, :] < torch.tensor(lengths)[:, None]
        for k, t in self.layer_map.items():
            h = hidden_states[k][keep].float().cpu()
            ref = torch.zeros_like(h)
            for j, i in enumerate(keep):
                ref[j, : lengths[j]] = self.ref[utt_ids[i]][t][: lengths[j]].float()
            self.sse[(condition, k)] += float((((h - ref) ** 2).sum(-1) * real).sum())

    def rows(self) -> list[dict]:
        """One row per condition and layer: condition, severity, noise, snr_db, layer, teacher_layer, value (D)."""
        return [dict(condition=c.condition, severity=c.level, noise=c.noise, snr_db=c.snr_db, layer=k,
                     teacher_layer=self.layer_map[k],
                     value=sse / self.spread[self.layer_map[k]]) for (c, k), sse in self.sse.items()]
