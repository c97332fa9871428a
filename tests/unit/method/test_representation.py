"""The representation measure on cases with a known answer: identical states give 0, the teacher's
per-dimension mean gives 1."""

from __future__ import annotations

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
