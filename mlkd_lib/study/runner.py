"""``mlkd study``: the whole study as papermill batches of the numbered notebooks.

Plan: data preparation once; per fold the teacher, then (in parallel where
``--jobs`` allows) the VAD + NMF baseline and every student arm; the analysis last.
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
from importlib import metadata
from pathlib import Path

from ..arms import ablation_keys, retrained, study_arms
from ..config import StudyConfig, load_config, make_config, read_setup, with_overrides
from ..data.prepare import follow_data
from ..device import thread_env
from ..layout import FolderLock, StudyLayout
from ..names import BASELINE, TEACHER
from ..paths import git_commit, resolve, with_absolute_paths
from .executors import RaySettings, local_cpus_per_step, open_executor, ray_cpus_per_step
from .preflight import data_notes, preflight
from .steps import Outcome, Step

DATA_NB, TEACHER_NB, BASELINE_NB = "01_data_prep.ipynb", "02_train_teacher.ipynb", "02b_baseline_vad_nmf.ipynb"
STUDENT_NB, ANALYSIS_NB = "03_distill_student.ipynb", "04_analysis.ipynb"

# keys that may change between runs of one study without invalidating finished steps
RUNTIME_KEYS = {"folds", "threads", "device", "eval_batch_size", "loader_workers", "keep_checkpoints",
                "keep_test_audio", "share_cnn_features", "profile_every"}


def plan_fold_steps(study: Path, cfg: StudyConfig, folds: list[str]) -> list[Step]:
    """Per fold: the teacher, then the baseline and every student arm (each needs the fold's teacher:
    for its weights, its targets, or as the reference of the representation measure)."""
    steps, layout = [], StudyLayout(study)
    for fold in folds:
        base, f = dict(study_dir=str(study), preset=cfg.preset, fold=fold), layout.fold(fold)
        teacher = f"{fold}/{TEACHER}"
        steps.append(Step(teacher, TEACHER_NB, base, f.model(TEACHER).path, f.notebook(TEACHER_NB), gpu=True))
        steps.append(Step(f"{fold}/{BASELINE}", BASELINE_NB, base, f.model(BASELINE).path, f.notebook(BASELINE_NB),
                          [teacher], gpu=True))
        for model in study_arms(cfg):
            steps.append(Step(f"{fold}/{model}", STUDENT_NB, dict(base, student=model), f.model(model).path,
                              f.notebook(STUDENT_NB, model), [teacher], gpu=True))
    return steps


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
    """Refuse a study folder made with other settings. A key its config.json lacks counts as changed:
    that study predates the key, and its old behaviour need not be the key's default."""
    if not path.is_file():
        return
    written = json.loads(path.read_text())
    old = load_config(path).to_json()
    changed = sorted(k for k, v in cfg.to_json().items()
                     if k not in RUNTIME_KEYS and (k not in written or old.get(k) != v))
    if changed:
        raise ValueError(f"{path.parent} holds a study run with other settings ({', '.join(changed)}): "
                         f"use another --out, or --force to rerun every step with the new settings")


def run_study(preset: str | None = "demo", out: str | None = None, folds: str = "all", overrides: dict | None = None,
              jobs: int = 1, force: bool = False, executor: str = "local", ray_settings=None,
              plan_only: bool = False, config_file: str | None = None) -> int:
    """Check the inputs, plan and run a study; write ``run.json``; return the exit code (0: every step
    ok; 2: the pre-flight found problems and nothing started). ``executor``: "local" or "ray"
    (``executors.open_executor``; ``ray_settings``: its options). ``plan_only``: print the plan
    (steps, disk, hours from training steps measured here), write it to ``plan.json`` and stop. ``config_file``: a
    setup file (YAML or JSON of study keys, its ``preset`` used where ``preset`` is None); ``overrides`` go on top
    of it."""
    setup = read_setup(config_file) if config_file else {}
    preset = preset or setup.pop("preset", "demo")
    setup.pop("preset", None)
    study = resolve(out or f"results/{preset}")
    overrides = {**setup, **(overrides or {})}
    if folds and folds != "all":
        overrides["folds"] = folds
    if "threads" not in overrides:
        # a step's torch and BLAS threads: what it is given of the cores (one step alone: all of them)
        if executor == "ray":  # what a step asks Ray for
            overrides["threads"] = max(1, int(ray_cpus_per_step(ray_settings or RaySettings(), jobs)))
        elif jobs > 1:
            overrides["threads"] = local_cpus_per_step(jobs)
    cfg = follow_data(with_absolute_paths(make_config(preset, **overrides)))
    problems = preflight(cfg, study, jobs)
    if len(problems) == 1:
        print(f"mlkd study: error: {problems[0]} (nothing was started)", file=sys.stderr)
        return 2
    if problems:
        print(f"mlkd study: the pre-flight found {len(problems)} problems; nothing was started:\n"
              + "\n".join(f"  - {p}" for p in problems), file=sys.stderr)
        return 2
    notes = data_notes(cfg)  # what the data step will convert, what the noise collection leaves out
    if plan_only:
        from .plan import make_plan  # torch: only for the plan's timed steps
        plan = make_plan(cfg, cfg.folds, jobs)
        plan.save(StudyLayout(study).plan)  # the one file --plan writes: the measured steps it projects from
        print("\n".join([plan.render(), f"written: {StudyLayout(study).plan}", *notes]))
        return 0
    for line in notes:
        print(f"mlkd study: {line}", file=sys.stderr)
    layout = StudyLayout(study)
    config_path = layout.config
    if not force:
        _check_same_study(config_path, cfg)
    with FolderLock(study).acquire():  # one runner per study folder, released however this process ends
        return _run_locked(study, cfg, layout, jobs, force, executor, ray_settings)


def _run_locked(study: Path, cfg: StudyConfig, layout: StudyLayout, jobs: int, force: bool, executor: str,
                ray_settings) -> int:
    config_path = layout.config
    cfg.save(config_path)
    log_dir = layout.logs
    log_dir.mkdir(exist_ok=True)
    t0 = time.time()
    base = dict(study_dir=str(study), preset=cfg.preset)
    data_step = Step("data", DATA_NB, base, layout.data_step, study / DATA_NB)
    if cfg.threads:
        # kernels inherit this: numpy's BLAS (the NMF baseline) then does not oversubscribe the cores
        os.environ.update(thread_env(cfg.threads))
    steps = [data_step]
    with open_executor(executor, jobs, [study, Path(cfg.data_dir)], ray_settings) as (run, info):
        outcomes = run([data_step], log_dir, force)
        if outcomes["data"].status in ("ok", "skipped"):
            from ..data.prepare import fold_names
            fold_steps = plan_fold_steps(study, cfg, fold_names(cfg))
            # every teacher first: their dependents then fill both job slots to the end, no idle tail
            steps += sorted(fold_steps, key=lambda s: bool(s.deps))
            # on the CPU even where GPUs are: Table 3 times CPU inference, as the paper did
            steps.append(Step("analysis", ANALYSIS_NB, dict(study_dir=str(study)), layout.analysis_step,
                              study / ANALYSIS_NB, always_last=True))

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
    path = StudyLayout(study).run_json
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
                              **({"error": o.error} if o.error else {}), **({"node": o.node} if o.node else {})}
    work = sum(r.get("wall_s", 0.0) for r in record.values())
    path.write_text(json.dumps({
        "study": str(study), "preset": cfg.preset, "wall_s": round(wall, 2), "steps_wall_s_sum": round(work, 2),
        "seeds": {"seed": cfg.seed, "synth_seed": cfg.synth_seed}, "git_commit": git_commit(),
        "versions": _versions(), "executor": executor or {"kind": "local"}, "config": cfg.to_json(), "steps": record,
        "command": " ".join(sys.argv)}, indent=2))


def run_ablation(base: str | Path, out: str | Path, overrides: dict, jobs: int = 1, executor: str = "local",
                 ray_settings=None) -> int:
    """A finished study rerun with other student settings: the arms a changed key concerns are retrained,
    everything else (data, teachers, baselines, untouched arms) is linked from ``base``, not copied, so
    every fold's comparison stays paired. E.g. ``beta`` retrains only the MLKD students, ``student_epochs``
    every student arm, ``student_layers`` every arm at another depth. ``executor``, ``ray_settings``: as
    :func:`run_study`'s."""
    unknown = set(overrides) - ablation_keys()
    if unknown:
        raise ValueError(f"an ablation changes only {sorted(ablation_keys())}, not {sorted(unknown)}")
    base, out = StudyLayout(resolve(base)), StudyLayout(resolve(out))
    cfg = load_config(base.config)
    new = with_overrides(cfg, **overrides).to_json()
    changed = {k for k, v in new.items() if cfg.to_json()[k] != v}
    folds = [m.fold for m in base.models(TEACHER) if m.done.is_file()]
    if not folds:
        raise FileNotFoundError(f"{base.dir}: no fold with a finished teacher to reuse")
    reused = [TEACHER, BASELINE] + [m for m in study_arms(cfg) if m not in retrained(changed)]
    shared = [(base.data_step, out.data_step)] + [(base.fold(f).model(m).path, out.fold(f).model(m).path)
                                                  for f in folds for m in reused]
    for source, link in shared:
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists() and source.exists():
            link.symlink_to(source, target_is_directory=True)
    settings = {k: v for k, v in cfg.to_json().items() if k not in ("preset", "folds")}
    return run_study(cfg.preset, str(out.dir), ",".join(folds), {**settings, **overrides}, jobs,
                     executor=executor, ray_settings=ray_settings)
