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
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path

from ..arms import ablation_keys, retrained, study_arms
from ..config import StudyConfig, load_config, make_config, read_setup, trial_note, trial_settings, with_overrides
from ..data.ownership import DataClaim, holds_ready
from ..data.prepare import data_identity, follow_data, own_data
from ..device import thread_env
from ..layout import DONE, FolderLock, StudyLayout
from ..names import BASELINE, TEACHER
from ..paths import git_commit, resolve, with_absolute_paths
from .executors import RaySettings, local_cpus_per_step, open_executor, ray_cpus_per_step
from .preflight import data_notes, first_fold, preflight
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
        steps.append(Step(teacher, TEACHER_NB, base, f.model(TEACHER).path, f.notebook(TEACHER_NB), gpu=True,
                          log_dir=layout.logs))
        steps.append(Step(f"{fold}/{BASELINE}", BASELINE_NB, base, f.model(BASELINE).path, f.notebook(BASELINE_NB),
                          [teacher], gpu=True, log_dir=layout.logs))
        for model in study_arms(cfg):
            steps.append(Step(f"{fold}/{model}", STUDENT_NB, dict(base, student=model), f.model(model).path,
                              f.notebook(STUDENT_NB, model), [teacher], gpu=True, log_dir=layout.logs))
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


# keys added since studies were first written whose value here is what a study without them did
AS_BEFORE = {"fold_utterances": 0}


def _check_same_study(path: Path, cfg: StudyConfig) -> None:
    """Refuse a study folder made with other settings. A key its config.json lacks counts as changed (that study
    predates the key, and its old behaviour need not be the key's default), unless ``AS_BEFORE`` says it was."""
    if not path.is_file():
        return
    written = json.loads(path.read_text())
    old = load_config(path).to_json()
    def unlike(k, v):
        return old.get(k) != v if k in written else k not in AS_BEFORE or AS_BEFORE[k] != v

    changed = sorted(k for k, v in cfg.to_json().items() if k not in RUNTIME_KEYS and unlike(k, v))
    if changed:
        raise ValueError(f"{path.parent} holds a study run with other settings ({', '.join(changed)}): "
                         f"use another --out, or --force to rerun every step with the new settings")


def default_out(preset: str, config_file: str | None, setup_preset: str | None, trial: bool) -> Path:
    """Where a study goes without ``--out``: a setup's beside its file, named after it (``results/cremad``; a trial
    ``results/cremad-trial``, another preset than the file's ``results/cremad-micro``), so that two setups never share
    one; without a setup, ``results/<preset>`` in the project."""
    if not config_file:
        return resolve(f"results/{preset}" + ("-trial" if trial else ""))
    setup = Path(config_file)
    name = setup.stem + (f"-{preset}" if setup_preset and preset != setup_preset else "") + ("-trial" * trial)
    return setup.resolve().parent / "results" / name


def configure(preset: str | None, out: str | None, folds: str, overrides: dict | None, jobs: int, executor: str,
              ray_settings, config_file: str | None, trial: bool = False) -> tuple[Path, StudyConfig, list[str]] | int:
    """A study's folder and settings from a preset, a setup file and overrides, checked by the pre-flight:
    ``(folder, config, notes on the data)``, or 2 after printing what the pre-flight found. ``trial``: the setup at a
    trial's size (``config.trial_settings``; ``--set`` still wins) on its first fold unless ``folds`` names others."""
    setup = read_setup(config_file) if config_file else {}
    setup_preset = setup.pop("preset", None)
    preset = preset or setup_preset or "demo"
    study = resolve(out) if out else default_out(preset, config_file, setup_preset, trial)
    given = dict(overrides or {})
    overrides = {**setup, **given}
    if folds and folds != "all":
        overrides["folds"] = folds
    if trial:
        sized = trial_settings(make_config(preset, **overrides))
        overrides |= {k: v for k, v in sized.items() if k not in given}
    if "threads" not in overrides:
        # a step's torch and BLAS threads: what it is given of the cores (one step alone: all of them)
        if executor == "ray":  # what a step asks Ray for
            overrides["threads"] = max(1, int(ray_cpus_per_step(ray_settings or RaySettings(), jobs)))
        elif jobs > 1:
            overrides["threads"] = local_cpus_per_step(jobs)
    cfg = follow_data(with_absolute_paths(make_config(preset, **overrides)))
    problems = preflight(cfg, study, jobs)
    if trial and not problems and not cfg.folds:
        cfg = with_overrides(cfg, folds=first_fold(cfg))
    if len(problems) == 1:
        print(f"mlkd study: error: {problems[0]} (nothing was started)", file=sys.stderr)
        return 2
    if problems:
        print(f"mlkd study: the pre-flight found {len(problems)} problems; nothing was started:\n"
              + "\n".join(f"  - {p}" for p in problems), file=sys.stderr)
        return 2
    return study, cfg, data_notes(cfg)  # what the data step will convert, what the noise collection leaves out


def run_study(preset: str | None = "demo", out: str | None = None, folds: str = "all", overrides: dict | None = None,
              jobs: int = 1, force: bool = False, executor: str = "local", ray_settings=None,
              plan_only: bool = False, config_file: str | None = None, trial: bool = False) -> int:
    """Check the inputs, plan and run a study; write ``run.json``; return the exit code (0: every step
    ok; 2: the pre-flight found problems and nothing started). ``executor``: "local" or "ray"
    (``executors.open_executor``; ``ray_settings``: its options). ``plan_only``: print the plan
    (steps, disk, hours from training steps measured here), write it to ``plan.json`` and stop. ``config_file``: a
    setup file (YAML or JSON of study keys, its ``preset`` used where ``preset`` is None); ``overrides`` go on top
    of it. ``trial``: the setup at a trial's size (``config.trial_settings``)."""
    configured = configure(preset, out, folds, overrides, jobs, executor, ray_settings, config_file, trial)
    if isinstance(configured, int):
        return configured
    study, cfg, notes = configured
    if trial:
        notes = [trial_note(cfg), *notes]
    if plan_only:
        from .plan import make_plan  # torch: only for the plan's timed steps
        written = StudyLayout(study).plan
        previous = None if force or not written.is_file() else json.loads(written.read_text())
        plan = make_plan(cfg, cfg.folds, jobs, previous)
        plan.save(StudyLayout(study).plan)  # the one file --plan writes: the measured steps it projects from
        print("\n".join([plan.render(), f"written: {StudyLayout(study).plan}", *notes]))
        return 0
    for line in notes:
        print(f"mlkd study: {line}", file=sys.stderr)
    if not force:
        _check_same_study(StudyLayout(study).config, cfg)
    return run_studies([(study, cfg)], jobs, force, executor, ray_settings)[0]


def run_studies(studies: list[tuple[Path, StudyConfig]], jobs: int, force: bool = False, executor: str = "local",
                ray_settings=None) -> list[int]:
    """Run configured studies' steps in one executor, ``jobs`` at a time over all of them (one study's analysis
    overlaps another's training, and warm kernels serve them all); each study keeps its own ``run.json``. Returns
    each study's exit code."""
    with ExitStack() as locks:
        for study, _ in studies:  # one runner per study folder, released however this process ends
            locks.enter_context(FolderLock(study).acquire())
        return _run_locked(studies, jobs, force, executor, ray_settings)


@dataclass
class _Planned:
    """One study of a run: its steps as the study names them, and the prefix its names carry in the run."""
    study: Path
    cfg: StudyConfig
    prefix: str
    steps: list[Step] = field(default_factory=list)

    def named(self, steps: list[Step]) -> list[Step]:
        self.steps += steps
        return [replace(s, name=self.prefix + s.name, deps=[self.prefix + d for d in s.deps]) for s in steps]

    def outcomes(self, all_outcomes: dict[str, Outcome]) -> dict[str, Outcome]:
        return {s.name: all_outcomes[self.prefix + s.name] for s in self.steps if self.prefix + s.name in all_outcomes}


def _run_locked(studies: list[tuple[Path, StudyConfig]], jobs: int, force: bool, executor: str,
                ray_settings) -> list[int]:
    t0 = time.time()
    # several studies in one run: a step's name there starts with its study's folder name, which must be its own
    if len({study.name for study, _ in studies}) < len(studies):
        raise ValueError(f"studies run together need folders of distinct names: {[str(s) for s, _ in studies]}")
    planned = [_Planned(study, cfg, f"{study.name}/" if len(studies) > 1 else "") for study, cfg in studies]
    folders = [f for p in planned for f in (p.study, Path(p.cfg.data_dir))]
    with ExitStack() as held:
        claims = hold_data(studies, held, force)  # before anything is written
        for p in planned:
            p.cfg.save(StudyLayout(p.study).config)
            StudyLayout(p.study).logs.mkdir(exist_ok=True)
            if p.cfg.threads:
                # kernels inherit this: numpy's BLAS (the NMF baseline) then does not oversubscribe the cores
                os.environ.update(thread_env(p.cfg.threads))
        run, info = held.enter_context(open_executor(executor, jobs, folders, ray_settings))
        outcomes = run(data_steps(planned), force)
        for claim in claims:
            claim.share()  # made: other runs of the same data may join
        later = []
        for p in planned:
            if outcomes[p.prefix + "data"].status in ("ok", "skipped"):
                later += p.named(study_steps(p.study, p.cfg))
        later.sort(key=lambda s: bool(s.deps))  # every teacher first: their dependents then fill every job slot

        def record(done):
            for p in planned:
                write_run_json(p.study, p.cfg, p.outcomes({**outcomes, **done}), p.steps, time.time() - t0, info)

        outcomes.update(run(later, force, on_done=record))
    wall = time.time() - t0
    codes = []
    for p in planned:
        mine = p.outcomes(outcomes)
        write_run_json(p.study, p.cfg, mine, p.steps, wall, info)
        failed = {k: o for k, o in mine.items() if o.status in ("failed", "blocked")}
        print(f"\nstudy {p.study}: {len(mine)} steps in {wall:.0f} s — "
              f"{sum(o.status == 'ok' for o in mine.values())} run, "
              f"{sum(o.status == 'skipped' for o in mine.values())} already complete, "
              f"{len(failed)} failed or blocked")
        for name, o in failed.items():
            nb = next(s.output for s in p.steps if s.name == name)
            print(f"  {name}: {o.status}" + (f" — {o.error}\n    executed notebook: {nb}" if o.status == "failed"
                                             else ""))
        codes.append(1 if failed else 0)
    return codes


def data_steps(planned: list[_Planned]) -> list[Step]:
    """Each study's data step; where several share one (a sweep's points, linked to their study's), the first makes
    it and the others wait for it and find it done."""
    first: dict[Path, str] = {}
    steps = []
    for p in planned:
        (step,) = p.named([data_step(p.study, p.cfg)])
        shared = first.setdefault(step.done_dir.resolve(), step.name)
        steps.append(step if shared == step.name else replace(step, deps=[shared]))
    return steps


def hold_data(studies: list[tuple[Path, StudyConfig]], held: ExitStack, force: bool = False) -> list[DataClaim]:
    """Each data folder of a run, held until ``held`` closes (``data/ownership.py``): shared with runs of the same
    data, alone while its data is made; a folder in use by a run of other data is refused in one line. A study whose
    folder no longer holds the data it was made from has its data step run again (the same settings make the same
    data); ``force`` makes every study's data anew from its settings."""
    wanted: dict[Path, tuple[dict, Path]] = {}
    for study, cfg in studies:
        ident = data_identity(cfg) if force else own_data(study, cfg)
        folder = Path(cfg.data_dir).resolve()
        if folder in wanted and wanted[folder][0] != ident:
            raise ValueError(f"studies {wanted[folder][1]} and {study}, run together, need other data in one data "
                             f"folder {folder}: give them data_dirs of their own")
        wanted.setdefault(folder, (ident, study))
    say = lambda line: print(f"mlkd study: {line}", file=sys.stderr)  # noqa: E731
    claims = [held.enter_context(DataClaim(folder, ident, study, say)) for folder, (ident, study) in
              sorted(wanted.items())]
    for study, cfg in studies:
        marker = StudyLayout(study).data_step / DONE
        if marker.is_file() and not holds_ready(cfg.data_dir, wanted[Path(cfg.data_dir).resolve()][0]):
            marker.unlink()  # its folder holds other data now: the data step makes its own again
    return claims


def data_step(study: Path, cfg: StudyConfig) -> Step:
    """The corpus, noise and conditions, made once a study: every fold's steps are planned from its manifest."""
    layout = StudyLayout(study)
    return Step("data", DATA_NB, dict(study_dir=str(study), preset=cfg.preset), layout.data_step, study / DATA_NB,
                log_dir=layout.logs)


def study_steps(study: Path, cfg: StudyConfig) -> list[Step]:
    """Once the data step is done: every fold's steps (``plan_fold_steps``), then the analysis, which waits for
    them all whatever their outcome (it reports on whatever finished, so one failed fold loses no table). On the
    CPU even where GPUs are: Table 3 times CPU inference, as the paper did."""
    from ..data.prepare import fold_names
    layout, folds = StudyLayout(study), plan_fold_steps(study, cfg, fold_names(cfg))
    return folds + [Step("analysis", ANALYSIS_NB, dict(study_dir=str(study)), layout.analysis_step,
                         study / ANALYSIS_NB, [s.name for s in folds], always_last=True, log_dir=layout.logs)]


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
    return run_ablations(base, [(out, overrides)], jobs, executor, ray_settings)[0]


def run_ablations(base: str | Path, ablations: list[tuple[str | Path, dict]], jobs: int = 1,
                  executor: str = "local", ray_settings=None) -> list[int]:
    """Several ablations of one study (``(folder, overrides)`` each, as :func:`run_ablation`'s) run together:
    their steps share the executor's ``jobs`` (``run_studies``). Returns each one's exit code."""
    unknown = {k for _, overrides in ablations for k in overrides} - ablation_keys()
    if unknown:
        raise ValueError(f"an ablation changes only {sorted(ablation_keys())}, not {sorted(unknown)}")
    base = StudyLayout(resolve(base))
    cfg = load_config(base.config)
    folds = [m.fold for m in base.models(TEACHER) if m.done.is_file()]
    if not folds:
        raise FileNotFoundError(f"{base.dir}: no fold with a finished teacher to reuse")
    settings = {k: v for k, v in cfg.to_json().items() if k not in ("preset", "folds")}
    codes, runnable = {}, []
    for i, (folder, overrides) in enumerate(ablations):
        out = StudyLayout(resolve(folder))
        changed = {k for k, v in with_overrides(cfg, **overrides).to_json().items() if cfg.to_json()[k] != v}
        reused = [TEACHER, BASELINE] + [m for m in study_arms(cfg) if m not in retrained(changed)]
        shared = [(base.data_step, out.data_step)] + [(base.fold(f).model(m).path, out.fold(f).model(m).path)
                                                      for f in folds for m in reused]
        for source, link in shared:
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.exists() and source.exists():
                link.symlink_to(source, target_is_directory=True)
        configured = configure(cfg.preset, str(out.dir), ",".join(folds), {**settings, **overrides}, jobs, executor,
                               ray_settings, None)
        if isinstance(configured, int):
            codes[i] = configured
            continue
        study, point_cfg, _ = configured
        _check_same_study(StudyLayout(study).config, point_cfg)
        runnable.append((i, (study, point_cfg)))
    if runnable:
        ran = run_studies([s for _, s in runnable], jobs, executor=executor, ray_settings=ray_settings)
        codes |= {i: code for (i, _), code in zip(runnable, ran)}
    return [codes[i] for i in range(len(ablations))]
