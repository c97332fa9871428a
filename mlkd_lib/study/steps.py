"""A study's steps and the local executor: one notebook per step, run by papermill in a process
of its own, its executed copy kept failed or not; ``done.json`` says a step is complete.

``settle`` (skip / block) and ``Progress`` are shared with the Ray executor (executors.py), so a
study started with one can be resumed with the other.
"""

from __future__ import annotations

import json
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from tqdm.auto import tqdm

from ..layout import is_done
from ..paths import NOTEBOOKS
from .kernels import KERNEL_ARGS, KernelPool


@dataclass
class Step:
    """One notebook run of a study: which notebook with which parameters, the folder whose
    ``done.json`` says it is complete, where its executed copy goes, and the steps it needs first."""
    name: str  # e.g. "Ses01F/teacher"
    notebook: str  # a file in mlkd_lib/notebooks
    params: dict  # papermill parameters
    done_dir: Path
    output: Path  # the executed notebook, kept failed or not
    deps: list[str] = field(default_factory=list)  # names of the steps that must be ok first
    always_last: bool = False  # the analysis: after its deps (none named: every other step), whatever their outcome
    gpu: bool = False  # runs a model: an executor with GPUs gives it one (Ray's num_gpus)
    log_dir: Path | None = None  # where its parameters (and a Ray worker's whereabouts) are logged


def waits_for(step: Step, steps: list[Step]) -> list[str]:
    """The steps ``step`` waits for: its deps; an ``always_last`` step that names none waits for every other."""
    if step.always_last and not step.deps:
        return [s.name for s in steps if not s.always_last]
    return step.deps


Status = Literal["ok", "skipped", "failed", "blocked"]  # skipped: already complete; blocked: a dependency failed


@dataclass
class Outcome:
    status: Status
    wall_s: float = 0.0
    error: str = ""
    node: str = ""  # the Ray node that ran it (empty for the local executor)


def run_notebook(step: Step, cwd: str | None = None, kernel=None) -> Outcome:
    """Execute one notebook with papermill (its kernel is a process of its own: a new one, or ``kernel``,
    a warm one from ``kernels.KernelPool``); keep the executed copy, which holds the error at the top when
    a cell fails. ``cwd``: a new kernel's working directory (a Ray worker's own may differ from the one
    the study was started in)."""
    import papermill as pm
    step.output.parent.mkdir(parents=True, exist_ok=True)
    if step.log_dir is not None:
        (step.log_dir / f"{step.name.replace('/', '_')}.params.json").write_text(json.dumps(step.params))
    t0 = time.time()
    warm = {"km": kernel.km} if kernel is not None else {}
    try:
        pm.execute_notebook(str(NOTEBOOKS / step.notebook), str(step.output), parameters=step.params,
                            kernel_name="python3", progress_bar=False, log_output=False, cwd=cwd,
                            # cell errors land in the executed notebook, not in the progress display
                            extra_arguments=KERNEL_ARGS, **warm)
    except pm.PapermillExecutionError as err:
        return Outcome("failed", time.time() - t0, f"{err.ename}: {err.evalue}")
    except Exception as err:  # a kernel that died, a notebook that could not be read: still one step
        return Outcome("failed", time.time() - t0, f"{type(err).__name__}: {err}")
    wall = time.time() - t0
    if not is_done(step.done_dir):
        return Outcome("failed", wall, f"notebook finished without writing {step.done_dir / 'done.json'}")
    return Outcome("ok", wall)


def settle(step: Step, deps: list[Outcome], force: bool) -> Outcome | None:
    """The outcome of ``step`` that needs no notebook run, else None. ``deps``: the outcomes of
    the steps it needs (for an ``always_last`` step: of every other step). One rule for both
    executors, so a local run and a Ray run skip and block the same steps."""
    if step.always_last:  # the analysis reports on whatever finished, so one failed fold loses no table
        stale = any(o.status == "ok" for o in deps)
        return Outcome("skipped") if not force and not stale and is_done(step.done_dir) else None
    if any(o.status in ("failed", "blocked") for o in deps):
        return Outcome("blocked")
    if not force and is_done(step.done_dir):
        return Outcome("skipped")
    return None


class Progress:
    """Step k/n, elapsed and ETA, one line per finished step; ``on_done`` sees every outcome so far."""

    def __init__(self, steps: list[Step], on_done=None):
        self.total, self.on_done, self.outcomes = len(steps), on_done, {}
        self.bar = tqdm(total=self.total, desc="study", unit="step", file=sys.stdout)
        self.t_start = time.time()

    def finish(self, step: Step, out: Outcome) -> None:
        self.outcomes[step.name] = out
        self.bar.update(1)
        done, elapsed = len(self.outcomes), time.time() - self.t_start
        eta = elapsed / done * (self.total - done)
        msg = {"ok": f"done in {out.wall_s:.0f} s", "skipped": "already complete", "failed": f"FAILED: {out.error}",
               "blocked": "not run: a step it needs failed"}[out.status]
        tqdm.write(f"[{done}/{self.total}] {step.name}: {msg}  (elapsed {elapsed:.0f} s, ~{eta:.0f} s left)",
                   file=sys.stdout)
        if self.on_done:
            self.on_done(self.outcomes)

    def close(self) -> dict[str, Outcome]:
        self.bar.close()
        return self.outcomes


def _run_warm(pool: KernelPool | None, step: Step) -> Outcome:
    """``step`` in a warm kernel of ``pool`` (a new kernel without one), the kernel reset or replaced after."""
    kernel = pool.take() if pool is not None else None
    out = run_notebook(step, kernel=kernel)
    if pool is not None:
        pool.give_back(kernel, out.status == "ok")
    return out


def execute(steps: list[Step], jobs: int, force: bool, on_done=None, kernels: KernelPool | None = None
            ) -> dict[str, Outcome]:
    """The local executor: run ``steps`` respecting dependencies, ``jobs`` at a time in a pool of
    threads that each wait on a papermill process (in a warm kernel of ``kernels`` where given); skip
    complete ones. An ``always_last`` step starts once every step it waits for has an outcome, whatever it is."""
    progress = Progress(steps, on_done)
    outcomes = progress.outcomes

    def known(s: Step) -> list[Outcome] | None:
        """The outcomes ``s`` starts from, or None while it must wait."""
        deps = [outcomes[d] for d in waits_for(s, steps) if d in outcomes]
        broken = not s.always_last and any(o.status in ("failed", "blocked") for o in deps)
        return deps if broken or len(deps) == len(waits_for(s, steps)) else None

    if kernels is not None:  # the steps that will ask for a kernel: an analysis runs when anything else did
        body = sum(force or not is_done(s.done_dir) for s in steps if not s.always_last)
        kernels.expect(body + sum(force or body > 0 or not is_done(s.done_dir) for s in steps if s.always_last))
    pending, running = list(steps), {}
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        while pending or running:
            for s in list(pending):
                deps = known(s)
                if deps is None:
                    continue
                out = settle(s, deps, force)
                if out is not None:
                    pending.remove(s)
                    progress.finish(s, out)
                elif len(running) < max(1, jobs):
                    pending.remove(s)
                    running[pool.submit(_run_warm, kernels, s)] = s
            if running:
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in finished:
                    progress.finish(running.pop(fut), fut.result())
            elif pending and all(known(s) is None for s in pending):
                raise ValueError(f"steps wait for steps that are not planned: {[s.name for s in pending]}")
    return progress.close()
