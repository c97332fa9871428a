"""Warm kernels: a step in a reused kernel sees what it would in a new one (an empty namespace, torch's
generator not where the previous step left it), and a failed step's kernel is never reused."""

from __future__ import annotations

import json

import pytest
from helpers.notebooks import failing_notebook, tiny_notebook

from mlkd_lib.study.kernels import KernelPool
from mlkd_lib.study.steps import Step, execute

PROBE = """import json, os, pathlib, torch
p = pathlib.Path(done_dir); p.mkdir(parents=True)
leftover = 'secret' in globals()
secret = 1
(p / 'probe.json').write_text(json.dumps({'pid': os.getpid(), 'seed': torch.initial_seed(), 'leftover': leftover}))
torch.manual_seed(0)  # a step that seeds: the next step must not start from it
(p / 'done.json').write_text('{}')"""


def _steps(tmp_path, names, notebook):
    return [Step(n, notebook, {"done_dir": str(tmp_path / n)}, tmp_path / n, tmp_path / "out" / f"{n}.ipynb")
            for n in names]


@pytest.mark.slow
def test_a_reused_kernel_looks_new_and_a_failed_one_is_replaced(tmp_path):
    probe, bad = tiny_notebook(tmp_path / "probe.ipynb", PROBE), failing_notebook(tmp_path / "bad.ipynb")
    steps = _steps(tmp_path, ["a", "b"], probe) + _steps(tmp_path, ["bad"], bad) + _steps(tmp_path, ["c"], probe)
    pool = KernelPool(1)
    try:
        out = execute(steps, 1, tmp_path, force=False, kernels=pool)
    finally:
        pool.close()
    assert {k: o.status for k, o in out.items()} == {"a": "ok", "b": "ok", "bad": "failed", "c": "ok"}
    seen = {n: json.loads((tmp_path / n / "probe.json").read_text()) for n in "abc"}
    assert seen["a"]["pid"] == seen["b"]["pid"] != seen["c"]["pid"]  # reused; replaced after the failure
    assert not any(s["leftover"] for s in seen.values())  # the namespace of a new kernel
    assert len({s["seed"] for s in seen.values()} | {0}) == 4  # seeded anew each time, as a new process is
    assert "the corpus is on fire" in (tmp_path / "out" / "bad.ipynb").read_text()  # papermill's record stays
