"""`mlkd bench --study-steps`: where a study's time goes — the wall time of each kind of step (data, teacher,
baseline, each student arm, analysis) and of each notebook cell that takes time, the import time a new kernel
would pay, and a kernel's start — so that a change that slows the study shows here, measured, never in a timed
test. Torch-free itself: the imports are timed in fresh interpreters."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

# what a step's kernel imports (kernels.PRELOAD), each timed alone in a new interpreter
IMPORTS = ("torch", "transformers", "matplotlib.pyplot", "scipy.signal", "mlkd_lib.study.notebook",
           "mlkd_lib.analysis.plots")


def step_times(run_json: str | Path) -> pd.DataFrame:
    """Per kind of step: how many ran, mean, max and total wall seconds (from a study's ``run.json``)."""
    steps = json.loads(Path(run_json).read_text())["steps"]
    rows = [dict(kind=name.split("/")[-1], wall_s=s["wall_s"]) for name, s in steps.items() if s.get("wall_s")]
    if not rows:
        raise ValueError(f"{run_json}: no step with a wall time (did the study run?)")
    out = pd.DataFrame(rows).groupby("kind", sort=False).wall_s.agg(["count", "mean", "max", "sum"])
    return out.round(2)


def cell_times(run_json: str | Path, at_least_s: float = 0.5) -> pd.DataFrame:
    """Per kind of step, the mean seconds of each code cell that takes ``at_least_s`` or more (papermill's record
    in the executed notebooks that ``run.json`` names), the cell named by its first line of code."""
    rows = []
    for name, step in json.loads(Path(run_json).read_text())["steps"].items():
        path = Path(step.get("notebook", ""))
        if not path.is_file():
            continue
        for cell in json.loads(path.read_text())["cells"]:
            seconds = cell.get("metadata", {}).get("papermill", {}).get("duration")
            code = [line for line in "".join(cell["source"]).splitlines()
                    if line.strip() and not line.startswith(("#", "from ", "import "))]
            if cell["cell_type"] == "code" and seconds is not None and code:
                rows.append(dict(kind=name.split("/")[-1], cell=code[0][:60], seconds=seconds))
    if not rows:
        return pd.DataFrame(columns=["kind", "cell", "mean_s"])
    out = pd.DataFrame(rows).groupby(["kind", "cell"], sort=False).seconds.mean().rename("mean_s").reset_index()
    return out[out.mean_s >= at_least_s].round(2).reset_index(drop=True)


def import_seconds(module: str) -> float:
    """Seconds to import ``module`` in a new interpreter (``-X importtime``: its cumulative time)."""
    run = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"], capture_output=True,
                         text=True, check=True)
    cumulative = [int(m.group(1)) for m in re.finditer(r"\|\s*(\d+)\s*\|\s*(\S+)\s*$", run.stderr, re.M)
                  if m.group(2) == module]
    return cumulative[-1] / 1e6 if cumulative else float("nan")


def kernel_start_seconds() -> float:
    """Seconds from asking for a notebook kernel to its answering (no imports of ours)."""
    from jupyter_client import KernelManager

    from .kernels import KERNEL_ARGS
    t0 = time.perf_counter()
    km = KernelManager(kernel_name="python3")
    km.start_kernel(extra_arguments=KERNEL_ARGS)
    kc = km.blocking_client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=120)
        return time.perf_counter() - t0
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def bench_study_steps(study: str | Path | None = None, preset: str = "micro", jobs: int = 2) -> dict:
    """Time a study's steps: those of ``study`` (a finished study folder), or of a new ``preset`` study run here
    with ``jobs`` (micro: about a minute and a half on two cores)."""
    if study is None:
        from .runner import run_study
        study = Path(tempfile.mkdtemp(prefix="mlkd-bench-")) / "study"
        t0 = time.perf_counter()
        if run_study(preset, str(study), jobs=jobs) != 0:
            raise RuntimeError(f"the {preset} study in {study} failed: see its executed notebooks")
        wall = time.perf_counter() - t0
    else:
        wall = json.loads((Path(study) / "run.json").read_text())["wall_s"]
    steps = step_times(Path(study) / "run.json")
    cells = cell_times(Path(study) / "run.json")
    imports = {m: round(import_seconds(m), 2) for m in IMPORTS}
    kernel = round(kernel_start_seconds(), 2)
    executor = json.loads((Path(study) / "run.json").read_text()).get("executor", {})
    summary = "\n".join([
        f"study {study}: {wall:.0f} s wall, {steps['sum'].sum():.0f} s of step time "
        f"({executor.get('kind', '?')} executor, jobs {executor.get('jobs', '?')}, warm kernels "
        f"{executor.get('warm_kernels', False)})",
        "step wall time by kind (s):", steps.to_string(),
        "where a step's time goes (mean s of each cell of 0.5 s or more):", cells.to_string(index=False),
        "import time in a new interpreter (s): " + ", ".join(f"{m} {s}" for m, s in imports.items()),
        f"a new kernel answers in {kernel} s (warm kernels pay it and the imports once a job, not once a step)"])
    return {"study": str(study), "wall_s": wall, "steps": steps.reset_index().to_dict("records"),
            "cells": cells.to_dict("records"),
            "imports_s": imports, "kernel_start_s": kernel, "summary": summary}
