"""Warm kernels: a step in a reused kernel sees what it would in a new one (an empty namespace, torch's
generator not where the previous step left it), and a failed step's kernel is never reused."""

from __future__ import annotations

import json

import pytest
from helpers.notebooks import tiny_notebook

from mlkd_lib.study.kernels import KernelPool
from mlkd_lib.study.steps import Step, execute

pytestmark = pytest.mark.slow  # notebooks, Ray or a browser: make test, not make test-fast

PROBE = """import json, os, pathlib, torch
p = pathlib.Path(done_dir); p.mkdir(parents=True)
leftover = 'secret' in globals()
secret = 1
(p / 'probe.json').write_text(json.dumps({'pid': os.getpid(), 'seed': torch.initial_seed(), 'leftover': leftover}))
torch.manual_seed(0)  # a step that seeds: the next step must not start from it
"""
DONE = "\n(p / 'done.json').write_text('{}')"
FAIL = "\nraise RuntimeError('the corpus is on fire')"


def _steps(tmp_path, names, notebook):
    return [Step(n, notebook, {"done_dir": str(tmp_path / n)}, tmp_path / n, tmp_path / "out" / f"{n}.ipynb")
            for n in names]


def test_a_reused_kernel_looks_new_and_a_failed_one_is_replaced(tmp_path):
    probe = tiny_notebook(tmp_path / "probe.ipynb", PROBE + DONE)
    bad = tiny_notebook(tmp_path / "bad.ipynb", PROBE + FAIL)
    names = ["a", "b", "bad", "c", "d"]
    steps = [s for n in names for s in _steps(tmp_path, [n], bad if n == "bad" else probe)]
    pool = KernelPool(1)
    try:
        out = execute(steps, 1, force=False, kernels=pool)
    finally:
        pool.close()
    assert {k: o.status for k, o in out.items()} == {"a": "ok", "b": "ok", "bad": "failed", "c": "ok", "d": "ok"}
    seen = {n: json.loads((tmp_path / n / "probe.json").read_text()) for n in names}
    pids = {n: s["pid"] for n, s in seen.items()}
    # which kernel serves which step follows the timing (the first one ready); the spare's order: the unit tier
    assert len(set(pids.values())) < len(pids)  # kernels reused …
    assert pids["bad"] not in (pids["c"], pids["d"])  # … but never the one a step failed in
    assert not any(s["leftover"] for s in seen.values())  # the namespace of a new kernel
    assert len({s["seed"] for s in seen.values()} | {0}) == 6  # seeded anew each time, as a new process is
    assert "the corpus is on fire" in (tmp_path / "out" / "bad.ipynb").read_text()  # papermill's record stays
