"""``mlkd study``: the whole study as papermill batches of the numbered notebooks.

Plan: data preparation once; per fold the teacher, then (in parallel where
``--jobs`` allows) the VAD + NMF baseline and the two students; the analysis last.
Each step is one notebook executed by papermill in its own process; its executed
copy is kept under the study folder, failed or not. A step whose ``done.json``
exists is skipped, so a killed study resumes (and training inside a step resumes
from its last epoch checkpoint). A failed step does not stop the steps that do not
depend on it; the command exits non-zero with a summary at the end. The plan is run
here by the local executor (``execute``) or as Ray tasks (``executors.py``, ``--executor ray``).
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from tqdm.auto import tqdm

from .config import StudyConfig, load_config, make_config, with_absolute_paths
from .markers import is_done, step_dir
from .paths import NOTEBOOKS, git_commit, resolve

# pipeline (torch) is imported only where the plan needs the corpus: a Ray worker that only runs
# papermill or skips a step should not pay for it (4 s per worker on 2 cores)

# keys that may change between runs of one study without invalidating finished steps
RUNTIME_KEYS = {"folds", "threads", "device", "eval_batch_size"}


@dataclass
class Step:
    name: str
    notebook: str
    params: dict
    done_dir: Path
    output: Path
    deps: list[str] = field(default_factory=list)
    always_last: bool = False
    gpu: bool = False  # runs a model: an executor with GPUs gives it one (Ray's num_gpus)


@dataclass
class Outcome:
    status: str  # "ok", "skipped" (already complete), "failed", "blocked" (a dependency failed)
    wall_s: float = 0.0
    error: str = ""


def plan_fold_steps(study: Path, preset: str, folds: list[str]) -> list[Step]:
    steps = []
    for fold in folds:
        base = dict(study_dir=str(study), preset=preset, fold=fold)
        fdir = study / "folds" / fold
        teacher = f"{fold}/teacher"
        steps.append(Step(teacher, "02_train_teacher.ipynb", base, step_dir(study, fold, "teacher"),
                          fdir / "02_train_teacher.ipynb", gpu=True))
        steps.append(Step(f"{fold}/baseline", "02b_baseline_vad_nmf.ipynb", base, step_dir(study, fold, "baseline"),
                          fdir / "02b_baseline_vad_nmf.ipynb", [teacher], gpu=True))
        for sup, model in ((True, "student_sup"), (False, "student_unsup")):
            steps.append(Step(f"{fold}/{model}", "03_distill_student.ipynb", dict(base, supervision=sup),
                              step_dir(study, fold, model), fdir / f"03_distill_student_{model}.ipynb", [teacher],
                              gpu=True))
    return steps


def run_notebook(step: Step, log_dir: Path, cwd: str | None = None) -> Outcome:
    """Execute one notebook with papermill (its kernel is a process of its own); keep the
    executed copy, which holds the error at the top when a cell fails. ``cwd``: the kernel's
    working directory (a Ray worker's own may differ from the one the study was started in)."""
    import papermill as pm
    step.output.parent.mkdir(parents=True, exist_ok=True)
    (log_dir / f"{step.name.replace('/', '_')}.params.json").write_text(json.dumps(step.params))
    t0 = time.time()
    try:
        pm.execute_notebook(str(NOTEBOOKS / step.notebook), str(step.output), parameters=step.params,
                            kernel_name="python3", progress_bar=False, log_output=False, cwd=cwd,
                            # the kernel's own log lines would clutter the progress display;
                            # cell errors still land in the executed notebook
                            extra_arguments=["--IPKernelApp.log_level=CRITICAL"])
    except pm.PapermillExecutionError as err:
        return Outcome("failed", time.time() - t0, f"{err.ename}: {err.evalue}")
    except Exception as err:  # a kernel that died, a notebook that could not be read: still one step
        return Outcome("failed", time.time() - t0, f"{type(err).__name__}: {err}")
    wall = time.time() - t0
    if not is_done(step.done_dir):
        return Outcome("failed", wall, f"notebook finished without writing {step.done_dir / 'done.json'}")
    return Outcome("ok", wall)


def _versions() -> dict:
    pkgs = ["torch", "torchaudio", "transformers", "numpy", "scipy", "pandas", "papermill", "webrtcvad-wheels"]
    out = {"python": platform.python_version(), "platform": platform.platform()}
    for p in pkgs:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            out[p] = None
    return out




def _check_same_study(path: Path, cfg: StudyConfig) -> None:
    if not path.is_file():
        return
    old = load_config(path).to_json()
    changed = sorted(k for k, v in cfg.to_json().items() if k not in RUNTIME_KEYS and old.get(k) != v)
    if changed:
        raise ValueError(f"{path.parent} holds a study run with other settings ({', '.join(changed)}): "
                         f"use another --out, or --force to rerun every step with the new settings")


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


def execute(steps: list[Step], jobs: int, log_dir: Path, force: bool, on_done=None) -> dict[str, Outcome]:
    """The local executor: run ``steps`` respecting dependencies, ``jobs`` at a time in a pool of
    threads that each wait on a papermill process; skip complete ones."""
    progress = Progress(steps, on_done)
    outcomes = progress.outcomes
    pending = [s for s in steps if not s.always_last]
    last = [s for s in steps if s.always_last]
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        running = {}
        while pending or running:
            for s in list(pending):
                deps = [outcomes.get(d) for d in s.deps]
                failed = any(o is not None and o.status in ("failed", "blocked") for o in deps)
                if failed or all(o is not None for o in deps):
                    out = settle(s, [o for o in deps if o is not None], force)
                    if out is not None:
                        pending.remove(s)
                        progress.finish(s, out)
                    elif len(running) < max(1, jobs):
                        pending.remove(s)
                        running[pool.submit(run_notebook, s, log_dir)] = s
            if running:
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in finished:
                    progress.finish(running.pop(fut), fut.result())
    for s in last:
        out = settle(s, list(outcomes.values()), force)
        progress.finish(s, out or run_notebook(s, log_dir))
    return progress.close()


def run_study(preset: str = "demo", out: str | None = None, folds: str = "all", overrides: dict | None = None,
              jobs: int = 1, force: bool = False, executor: str = "local", ray_settings=None) -> int:
    """Plan and run a study; write ``run.json``; return the exit code (0: every step ok).
    ``executor``: "local" or "ray" (``executors.open_executor``; ``ray_settings``: its options)."""
    from .executors import RaySettings, local_cpus_per_step, open_executor, ray_cpus_per_step
    study = resolve(out or f"results/{preset}")
    overrides = dict(overrides or {})
    if folds and folds != "all":
        overrides["folds"] = folds
    if "threads" not in overrides:
        # a step's torch and BLAS threads: what it is given of the cores (one step alone: all of them)
        if executor == "ray":  # what a step asks Ray for
            overrides["threads"] = max(1, int(ray_cpus_per_step(ray_settings or RaySettings(), jobs)))
        elif jobs > 1:
            overrides["threads"] = local_cpus_per_step(jobs)
    cfg = make_config(preset, **overrides)
    cfg = with_absolute_paths(cfg)
    config_path = study / "config.json"
    if not force:
        _check_same_study(config_path, cfg)
    study.mkdir(parents=True, exist_ok=True)
    cfg.save(config_path)
    log_dir = study / "logs"
    log_dir.mkdir(exist_ok=True)
    t0 = time.time()
    base = dict(study_dir=str(study), preset=cfg.preset)
    data_step = Step("data", "01_data_prep.ipynb", base, study / "data", study / "01_data_prep.ipynb")
    if cfg.threads:
        # kernels inherit this: numpy's BLAS (the NMF baseline) then does not oversubscribe the cores
        os.environ.update({v: str(cfg.threads) for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")})
    steps = [data_step]
    with open_executor(executor, jobs, [study, Path(cfg.data_dir)], ray_settings) as (run, info):
        outcomes = run([data_step], log_dir, force)
        if outcomes["data"].status in ("ok", "skipped"):
            from .pipeline import fold_names
            fold_steps = plan_fold_steps(study, cfg.preset, fold_names(cfg))
            # every teacher first: their dependents then fill both job slots to the end, no idle tail
            steps += sorted(fold_steps, key=lambda s: bool(s.deps))
            # a model step too: its Table 3 times inference on the step's device
            steps.append(Step("analysis", "04_analysis.ipynb", dict(study_dir=str(study)), study / "analysis",
                              study / "04_analysis.ipynb", always_last=True, gpu=True))

            def record(done):
                write_run_json(study, cfg, {**outcomes, **done}, steps, time.time() - t0, info)

            outcomes.update(run(steps[1:], log_dir, force, on_done=record))
    wall = time.time() - t0
    write_run_json(study, cfg, outcomes, steps, wall, info)
    failed = {k: o for k, o in outcomes.items() if o.status in ("failed", "blocked")}
    print(f"\nstudy {study}: {len(outcomes)} steps in {wall:.0f} s — "
          f"{sum(o.status == 'ok' for o in outcomes.values())} run, "
          f"{sum(o.status == 'skipped' for o in outcomes.values())} already complete, {len(failed)} failed or blocked")
    for name, o in failed.items():
        nb = next(s.output for s in steps if s.name == name)
        print(f"  {name}: {o.status}" + (f" — {o.error}\n    executed notebook: {nb}" if o.status == "failed" else ""))
    return 1 if failed else 0


def write_run_json(study: Path, cfg: StudyConfig, outcomes: dict[str, Outcome], steps: list[Step], wall: float,
                   executor: dict | None = None) -> None:
    """``run.json``: config, versions, seeds, git commit, executor and wall time per step and in all.
    Wall times of steps skipped in this run are kept from the run that did them."""
    path = study / "run.json"
    old = json.loads(path.read_text()).get("steps", {}) if path.is_file() else {}
    record = {}
    for s in steps:
        o = outcomes.get(s.name)
        if o is None:
            continue
        if o.status == "skipped" and s.name in old:
            record[s.name] = dict(old[s.name], status="skipped (complete)")
        else:
            record[s.name] = {"status": o.status, "wall_s": round(o.wall_s, 2), "notebook": str(s.output),
                              **({"error": o.error} if o.error else {})}
    work = sum(r.get("wall_s", 0.0) for r in record.values())
    path.write_text(json.dumps({
        "study": str(study), "preset": cfg.preset, "wall_s": round(wall, 2), "steps_wall_s_sum": round(work, 2),
        "seeds": {"seed": cfg.seed, "synth_seed": cfg.synth_seed}, "git_commit": git_commit(),
        "versions": _versions(), "executor": executor or {"kind": "local"}, "config": cfg.to_json(), "steps": record,
        "command": " ".join(sys.argv)}, indent=2))


ABLATION_KEYS = {"alpha", "beta", "temperature"}


def run_ablation(base: str | Path, out: str | Path, overrides: dict, jobs: int = 1) -> int:
    """The MLKD student retrained with other loss settings (``alpha``, ``beta``, ``temperature``),
    reusing a finished study's data, teachers, baselines and CE-only students (linked, not copied):
    only the MLKD students and the analysis run, so every fold's comparison is paired."""
    unknown = set(overrides) - ABLATION_KEYS
    if unknown:
        raise ValueError(f"an ablation changes only {sorted(ABLATION_KEYS)}, not {sorted(unknown)}")
    base, out = resolve(base), resolve(out)
    cfg = load_config(base / "config.json")
    folds = sorted(p.parent.parent.name for p in base.glob("folds/*/teacher/done.json"))
    if not folds:
        raise FileNotFoundError(f"{base}: no fold with a finished teacher to reuse")
    (out / "folds").mkdir(parents=True, exist_ok=True)
    for shared in ["data", *(f"folds/{f}/{m}" for f in folds for m in ("teacher", "baseline", "student_unsup"))]:
        link = out / shared
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists() and (base / shared).exists():
            link.symlink_to(base / shared, target_is_directory=True)
    settings = {k: v for k, v in cfg.to_json().items() if k not in ("preset", "folds")}
    return run_study(cfg.preset, str(out), ",".join(folds), {**settings, **overrides}, jobs)
