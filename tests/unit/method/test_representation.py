"""The representation measure on cases with a known answer: identical states give 0, the teacher's
per-dimension mean gives 1."""

from __future__ import annotations

import pytest
import torch

from mlkd_lib.data.conditions.families import Condition
from mlkd_lib.method.representation import LayerDistance


class Reference:
    """Stands in for ``TeacherTargets``: fixed states per utterance and layer."""

    def __init__(self, states):
        self.states = states

    def get(self, utt_id):
        return self.states[utt_id], torch.zeros(4)


def _batch(states, ids, layer, frames):
    """HF-style hidden states for a batch, zero-padded to ``frames``, and the frame mask."""
    h = torch.zeros(len(ids), frames, 3)
    mask = torch.zeros(len(ids), frames, dtype=torch.bool)
    for i, u in enumerate(ids):
        n = states[u][layer].shape[0]
        h[i, :n], mask[i, :n] = states[u][layer], True
    return {layer: h}, mask


def test_identical_states_are_at_distance_zero_and_the_teachers_mean_at_one():
    torch.manual_seed(0)
    states = {u: {4: torch.randn(n, 3) * torch.tensor([1.0, 5.0, 0.2]) + 2} for u, n in (("a", 7), ("b", 5))}
    d = LayerDistance(Reference(states), {2: 4}, ["a", "b"])
    same, noisy = Condition("clean"), Condition("factory", 0.0)
    hidden, mask = _batch(states, ["a", "b"], 4, frames=9)  # padding frames must not count
    d.add(same, ["a", "b"], {2: hidden[4]}, mask)
    mean = torch.cat([states[u][4] for u in "ab"]).mean(0)
    as_mean = {u: {4: mean.expand_as(states[u][4]).clone()} for u in "ab"}
    hidden, mask = _batch(as_mean, ["a", "b"], 4, frames=7)
    d.add(noisy, ["a"], {2: hidden[4][:1]}, mask[:1])  # batches add up
    d.add(noisy, ["b"], {2: hidden[4][1:]}, mask[1:])
    rows = {(r["noise"], r["layer"]): r for r in d.rows()}
    assert rows[("clean", 2)]["value"] == 0.0 and rows[("clean", 2)]["teacher_layer"] == 4
    assert abs(rows[("factory", 2)]["value"] - 1.0) < 1e-6


def test_each_utterance_counts_its_real_frames_only_whichever_side_is_shorter():
    """Utterance a: the teacher has 4 frames, the model's mask 6 (the model heard it longer); b: the teacher 6, the
    model 3. Only min(real frames) count; the model's padding holds garbage, which must not count either."""
    states = {"a": {2: torch.ones(4, 3)}, "b": {2: torch.zeros(6, 3)}}
    d = LayerDistance(Reference(states), {1: 2}, ["a", "b"])
    assert d.covers("a") and not d.covers("z")
    h = torch.full((2, 8, 3), 100.0)  # padding garbage everywhere ...
    h[0, :6], h[1, :3] = 3.0, 1.0  # ... then the real frames: a is 2 off per value, b is 1 off
    mask = torch.zeros(2, 8, dtype=torch.bool)
    mask[0, :6], mask[1, :3] = True, True
    d.add(Condition("factory", 0.0), ["a", "b", "unknown"], {1: torch.cat([h, torch.zeros(1, 8, 3)])},
          torch.cat([mask, torch.ones(1, 8, dtype=torch.bool)]))
    # sse: a 4 frames × 3 dims × 2², b 3 × 3 × 1²; spread of the teacher's 10 frames (4 ones, 6 zeros) per dim:
    # 4 × 0.6² + 6 × 0.4² = 2.4, × 3 dims = 7.2
    (row,) = d.rows()
    assert row == {"condition": "noise", "severity": 0.0, "noise": "factory", "snr_db": 0.0, "layer": 1,
                   "teacher_layer": 2, "value": pytest.approx((4 * 3 * 4 + 3 * 3 * 1) / 7.2)}
