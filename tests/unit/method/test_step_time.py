"""The step clock: each phase of a step gets the time spent in it, a step begun without a batch counts nothing,
and on a GPU only every N-th step is timed (the device synchronised for that step alone)."""

from __future__ import annotations

import time
from types import SimpleNamespace

from mlkd_lib.method.step_time import StepClock


def _steps(clock: StepClock, n: int, naps: dict[str, float]) -> None:
    for _ in range(n):
        clock.begin()
        for phase, seconds in naps.items():
            time.sleep(seconds)
            clock.lap(phase)
        clock.done()
    clock.begin()  # the epoch's last ask for a batch: none came


def test_each_phase_gets_its_own_time_and_an_empty_step_counts_nothing():
    clock = StepClock(SimpleNamespace(type="cpu"), every=50)  # the CPU times every step whatever ``every`` says
    _steps(clock, 4, {"data": 0.02, "forward": 0.01, "backward": 0.03, "optimizer": 0.0})
    time.sleep(0.2)  # after the last begin: belongs to no step (counted, it would add 0.05 s to each)
    s = clock.summary()
    assert s["timed_steps"] == 4
    for phase, seconds in (("data", 0.02), ("forward", 0.01), ("backward", 0.03)):
        assert seconds <= s[f"{phase}_s"] < seconds + 0.015  # a sleep overruns a little on a busy machine, never less
    assert 0.06 <= s["step_s"] < 0.06 + 0.03 and 0 <= s["other_s"] < 0.01


def test_on_a_gpu_only_every_nth_step_is_timed_and_synchronised(monkeypatch):
    syncs = []
    monkeypatch.setattr(StepClock, "_sync", lambda self: syncs.append(self.steps))
    clock = StepClock(SimpleNamespace(type="cuda"), every=3)
    _steps(clock, 7, {"data": 0.0, "forward": 0.001})
    assert clock.summary()["timed_steps"] == 3  # steps 1, 4 and 7
    assert sorted(set(syncs)) == [1, 4, 7]  # no synchronisation in the other steps
