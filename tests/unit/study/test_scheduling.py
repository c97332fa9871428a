"""The local executor's order: a step after the steps it needs, an analysis after the steps it waits for whatever
their outcome — and no later, so that in a run of several studies one study's analysis overlaps another's
training. Notebooks are stood in for by a function that records when each step ran."""

from __future__ import annotations

import threading
import time

import pytest

from mlkd_lib.study import steps as steps_module
from mlkd_lib.study.steps import Outcome, Step, execute


class Ran(dict):
    """Each step's (start, end) times; a step named in ``fail`` fails, one in ``slow`` takes longer."""

    def __init__(self):
        super().__init__()
        self.fail, self.slow, self.lock = set(), set(), threading.Lock()

    def notebook(self, step, cwd=None, kernel=None):
        start = time.monotonic()
        time.sleep(0.4 if step.name in self.slow else 0.05)
        with self.lock:
            self[step.name] = (start, time.monotonic())
        if step.name in self.fail:
            return Outcome("failed", 0.0, "planted")
        step.done_dir.mkdir(parents=True, exist_ok=True)
        (step.done_dir / "done.json").write_text("{}")
        return Outcome("ok", 0.05)


@pytest.fixture
def ran(monkeypatch):
    record = Ran()
    monkeypatch.setattr(steps_module, "run_notebook", record.notebook)
    return record


def _step(tmp_path, name, deps=(), last=False):
    return Step(name, "x.ipynb", {}, tmp_path / name.replace("/", "_"), tmp_path / "out" / f"{name}.ipynb",
                list(deps), always_last=last)


def _study(tmp_path, prefix):
    t = f"{prefix}/teacher"
    students = [f"{prefix}/s{i}" for i in (1, 2)]
    return ([_step(tmp_path, t)] + [_step(tmp_path, s, [t]) for s in students]
            + [_step(tmp_path, f"{prefix}/analysis", [t, *students], last=True)])


def test_an_analysis_waits_for_its_own_study_only_and_runs_whatever_their_outcome(ran, tmp_path):
    a, b = _study(tmp_path, "A"), _study(tmp_path, "B")
    ran.slow.add("B/s2")
    ran.fail.add("B/s1")
    out = execute(a[:1] + b[:1] + a[1:] + b[1:], jobs=2, force=False)
    assert out["B/s1"].status == "failed" and out["B/s2"].status == "ok"
    assert out["A/analysis"].status == "ok" and out["B/analysis"].status == "ok"  # a failed arm loses no table
    for prefix in "AB":
        done = max(ran[f"{prefix}/{s}"][1] for s in ("teacher", "s1", "s2"))
        assert ran[f"{prefix}/analysis"][0] >= done  # never before what it reports on
    assert ran["A/analysis"][0] < ran["B/s2"][1]  # A's analysis ran beside B's training, not after it


def test_a_step_after_a_failed_one_is_blocked_and_never_run(ran, tmp_path):
    steps = _study(tmp_path, "A")
    ran.fail.add("A/teacher")
    out = execute(steps, jobs=2, force=False)
    assert {k: o.status for k, o in out.items()} == {"A/teacher": "failed", "A/s1": "blocked", "A/s2": "blocked",
                                                    "A/analysis": "ok"}
    assert set(ran) == {"A/teacher", "A/analysis"}


def test_an_analysis_naming_no_step_waits_for_every_other(ran, tmp_path):
    steps = _study(tmp_path, "A")
    steps[-1].deps = []
    ran.slow.add("A/s1")
    execute(steps, jobs=2, force=False)
    assert ran["A/analysis"][0] >= max(end for name, (_, end) in ran.items() if name != "A/analysis")


def test_a_step_waiting_for_a_step_that_is_not_planned_is_an_error(ran, tmp_path):
    with pytest.raises(ValueError, match="not planned.*A/s1"):
        execute([_step(tmp_path, "A/s1", ["A/teacher"])], jobs=1, force=False)


def test_studies_run_together_need_folders_of_distinct_names(tmp_path):
    from mlkd_lib.config import make_config
    from mlkd_lib.study.runner import run_studies
    cfg = make_config("micro", data_dir=str(tmp_path / "data"))
    folders = [tmp_path / "a" / "point", tmp_path / "b" / "point"]
    for f in folders:
        f.mkdir(parents=True)
    with pytest.raises(ValueError, match="distinct names"):
        run_studies([(f, cfg) for f in folders], jobs=1)
    assert not any((f / "config.json").exists() for f in folders)  # refused before anything is written


class FakeKernel:
    started = 0

    def __init__(self):
        FakeKernel.started += 1

    def ready(self):
        return True


@pytest.mark.parametrize("announced, started", [
    ([1], 1),  # the data step alone: one kernel, no spare
    ([1, 6], 2),  # then a micro fold's six steps on two jobs: a kernel a job, the spare not worth its start
    ([1, 15], 2),  # seven and a half steps a job: still not
    ([1, 16], 3),  # a run of eight steps a job: the spare too
    ([0], 0),  # every step complete: nothing started
    ([], 3),  # nobody announced the steps (a step simply asks): a kernel a job and the spare
])
def test_warm_kernels_are_started_for_the_steps_announced(monkeypatch, announced, started):
    from mlkd_lib.study import kernels
    monkeypatch.setattr(kernels, "WarmKernel", FakeKernel)
    FakeKernel.started = 0
    pool = kernels.KernelPool(2)
    for n in announced:
        pool.expect(n)
    if not announced:
        pool.take()
    time.sleep(0.2)  # the spares start on a thread of their own
    assert FakeKernel.started == started


def test_a_run_with_every_step_complete_starts_no_kernel(monkeypatch, tmp_path):
    from mlkd_lib.study import kernels
    monkeypatch.setattr(kernels, "WarmKernel", FakeKernel)
    FakeKernel.started = 0
    steps = _study(tmp_path, "A")
    for s in steps:
        s.done_dir.mkdir(parents=True)
        (s.done_dir / "done.json").write_text("{}")
    out = execute(steps, jobs=2, force=False, kernels=kernels.KernelPool(2))
    assert {o.status for o in out.values()} == {"skipped"} and FakeKernel.started == 0


def test_a_step_takes_the_kernel_that_is_ready_not_a_spare_still_starting(monkeypatch):
    """After the data step the folds' steps announce themselves and a spare starts (seconds of importing torch); the
    data step's kernel, reset in under a second, must serve the next step rather than the step waiting for the
    spare."""
    from mlkd_lib.study import kernels
    made = []

    class SlowKernel:
        def __init__(self):
            self.up = threading.Event()
            made.append(self)

        def ready(self):
            self.up.wait()
            return True

        def reset(self):
            return True

        def shutdown(self):
            self.up.set()

    monkeypatch.setattr(kernels, "WarmKernel", SlowKernel)
    pool = kernels.KernelPool(1)
    pool.expect(1)  # the data step
    (first,) = made
    first.up.set()
    assert pool.take() is first
    pool.expect(8)  # eight steps: worth a spare
    deadline = time.monotonic() + 5
    while len(made) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(made) == 2 and not made[1].up.is_set()  # the spare, still starting
    pool.give_back(first, ok=True)
    taken = []
    taker = threading.Thread(target=lambda: taken.append(pool.take()), daemon=True)
    taker.start()
    taker.join(timeout=5)
    pool.close()
    assert taken == [first]
