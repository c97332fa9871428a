"""Where a training step's time goes: waiting for the batch (``data``), the forward pass with the objective
(``forward``), the backward pass, the optimizer step, and the rest (``other``: bookkeeping, the progress bar).

On the CPU the work is synchronous, so every step is timed by the wall clock at no cost. On a GPU the phases run
asynchronously, so only every ``every``-th step is timed, the device synchronised at its phase boundaries: the
other steps pay nothing for the accounting. ``StepClock.summary`` gives per-step averages in seconds, which
``train`` writes to ``history.csv`` each epoch and ``mlkd bench --train-step`` and ``--plan`` report
(``step_bench.py``).
"""

from __future__ import annotations

import time

PHASES = ("data", "forward", "backward", "optimizer")


class StepClock:
    def __init__(self, device, every: int = 50):
        self.cuda = getattr(device, "type", "cpu") == "cuda"
        self.every = every if self.cuda else 1
        self.totals = dict.fromkeys((*PHASES, "step"), 0.0)
        self.steps = self.timed = 0
        self._on = False
        self._t = self._start = 0.0

    def _sync(self) -> None:
        if self.cuda:
            import torch
            torch.cuda.synchronize()

    def begin(self) -> None:
        """A step starts (before its batch is asked for). A step begun but never ``done`` (no batch came) counts
        nothing."""
        self._on = self.steps % self.every == 0
        self.steps += 1
        if self._on:
            self._sync()
            self._t = self._start = time.perf_counter()

    def lap(self, phase: str) -> None:
        """``phase`` of the current step is done."""
        if self._on:
            self._sync()
            now = time.perf_counter()
            self.totals[phase] += now - self._t
            self._t = now

    def done(self) -> None:
        """The current step is done: its whole time counts."""
        if self._on:
            self._sync()
            self.totals["step"] += time.perf_counter() - self._start
            self.timed += 1
            self._on = False

    def summary(self) -> dict[str, float]:
        """Per timed step: ``data_s, forward_s, backward_s, optimizer_s, other_s, step_s`` (seconds), and how many
        steps were timed."""
        n = max(self.timed, 1)
        out = {f"{p}_s": self.totals[p] / n for p in PHASES}
        out["step_s"] = self.totals["step"] / n
        out["other_s"] = max(0.0, out["step_s"] - sum(out[f"{p}_s"] for p in PHASES))
        return {**out, "timed_steps": self.timed}
