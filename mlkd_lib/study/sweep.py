"""``mlkd sweep``: a finished study's students retrained over a grid of their settings, every point an ablation.

``--set key=v1,v2 ...`` over the keys an ablation may change (temperature, alpha, beta, kd_t_squared,
student_layers, sup_init, student_epochs, student_lr, ...): the grid is the product of the listed values, each
point an ablation of the study (``runner.run_ablations``) into its own folder, which retrains only the arms its keys
concern and links the rest, so every point is paired with every other fold by fold. The point with the study's
own settings trains nothing: its folder links to the study. ``analysis/grid.py`` then chooses each fold's point
on validation and reports it on test, beside the optimistic test-chosen figure.

A sweep of ``student_layers`` alone is the depth frontier: for each depth N (a divisor of the teacher's L layers)
the MLKD and the CE-only students at N layers in ``<out>/depth-<N>/`` (student layer k starts from, and is matched
by L_ML to, teacher layer k·L/N: ``models.default_layer_map``), the control left out (the frontier asks what the
loss buys at each size), and the frontier (exports, timing, int8 scoring: ``deploy/frontier.py``) made from every
depth that finished.

A rerun skips what is done (each step's ``done.json``), so a killed sweep resumes.
"""

from __future__ import annotations

import itertools
import json
import sys
import time
from pathlib import Path

from ..analysis.grid import point_label, write_grid
from ..arms import ablation_keys, retrained, study_arms
from ..config import load_config, with_overrides
from ..layout import StudyLayout, is_done
from ..names import TEACHER
from ..paths import resolve
from .runner import RUNTIME_KEYS, plan_fold_steps, run_ablations

DEPTH_KEY = "student_layers"  # a sweep of this key alone is the depth frontier
SWEEP_JSON = "sweep.json"


def parse_grid(overrides: dict) -> dict[str, list[str]]:
    """``--set key=v1,v2,...`` as ``{key: [values]}`` (each value once, in the order given; depths as whole numbers,
    sorted): each key one an ablation may change."""
    if not overrides:
        raise ValueError("a sweep needs at least one --set key=v1,v2,... (e.g. --set temperature=1,7)")
    unknown = sorted(set(overrides) - ablation_keys())
    if unknown:
        raise ValueError(f"a sweep varies student settings, those an ablation may change "
                         f"({', '.join(sorted(ablation_keys()))}), not {', '.join(unknown)}")
    grid = {}
    for key, value in overrides.items():
        items = value.split(",") if isinstance(value, str) else value if isinstance(value, (list, tuple)) else [value]
        values = list(dict.fromkeys(str(i).strip() for i in items if str(i).strip()))
        if not values:
            raise ValueError(f"{key}={value!r}: no value to sweep")
        grid[key] = values
    if DEPTH_KEY in grid:
        try:
            grid[DEPTH_KEY] = [str(n) for n in sorted({int(v) for v in grid[DEPTH_KEY]})]
        except ValueError:
            raise ValueError(f"{DEPTH_KEY}={overrides[DEPTH_KEY]!r}: a depth is a whole number of layers") from None
    return grid


def grid_points(grid: dict[str, list[str]]) -> list[dict[str, str]]:
    """The product of the grid's values, the first key varying slowest."""
    return [dict(zip(grid, values)) for values in itertools.product(*grid.values())]


def depth_dir(out: str | Path, depth: int) -> Path:
    """Where the students of ``depth`` layers live in a depth sweep."""
    return Path(out) / f"depth-{depth}"


def point_dir(out: str | Path, point: dict[str, str]) -> Path:
    """A grid point's folder: ``depth-N`` in a depth sweep, else its settings (``temperature=1_alpha=0.3``)."""
    if list(point) == [DEPTH_KEY]:
        return depth_dir(out, int(point[DEPTH_KEY]))
    return Path(out) / "_".join(f"{k}={v}" for k, v in point.items())


def is_own(cfg, point: dict[str, str]) -> bool:
    """Whether ``point`` is the study's own setting (read as the config reads it: ``7`` and ``7.0`` are one)."""
    new, old = with_overrides(cfg, **point).to_json(), cfg.to_json()
    return all(new[k] == old[k] for k in point)


def ablation_of(point: dict[str, str]) -> dict:
    """The ablation a point runs: its settings, and in a sweep over depth no control arm (the frontier compares
    the two arms that answer what the loss buys at each size)."""
    return {**point, "control_arm": False} if DEPTH_KEY in point else dict(point)


def teacher_layers(study: StudyLayout) -> int:
    """Transformer layers of the study's teacher (read from its first finished checkpoint)."""
    from ..method.checkpoint import load_model
    for m in study.models(TEACHER):
        if m.done.is_file() and m.best_ckpt.is_file():
            return load_model(m.best_ckpt).num_layers
    raise FileNotFoundError(f"{study.dir}: no fold with a finished teacher — run `mlkd study` to the end first")


def check_depths(depths: list[int], layers: int) -> list[int]:
    """``depths`` if each divides the teacher's ``layers`` (student layer k ← teacher layer k·L/N needs it)."""
    if not depths:
        raise ValueError("a sweep needs at least one depth (--set student_layers=1,2,...)")
    bad = [n for n in depths if n < 1 or layers % n]
    if bad:
        divisors = [n for n in range(1, layers + 1) if layers % n == 0]
        raise ValueError(f"student depths {bad} do not divide the teacher's {layers} layers: choose among {divisors}")
    return depths


def point_complete(base: StudyLayout, folder: Path, overrides: dict) -> bool:
    """Whether every step an ablation with ``overrides`` plans in ``folder`` is done, with the settings it would
    use: a rerun then passes the point by without starting an executor (whose warm kernel costs seconds)."""
    layout = StudyLayout(folder)
    if not layout.config.is_file():
        return False
    cfg = load_config(layout.config)
    want, have = with_overrides(load_config(base.config), **overrides).to_json(), cfg.to_json()
    if any(have[k] != v for k, v in want.items() if k not in RUNTIME_KEYS):
        return False
    folds = [m.fold for m in base.models(TEACHER) if m.done.is_file()]
    steps = plan_fold_steps(layout.dir, cfg, folds)
    return is_done(layout.data_step) and is_done(layout.analysis_step) and all(is_done(s.done_dir) for s in steps)


def _link_study(study: Path, folder: Path) -> None:
    """The study's own setting: its arms as they are, read through a link (nothing is written there)."""
    if folder.is_symlink() and folder.resolve() == study.resolve():
        return
    if folder.exists() or folder.is_symlink():
        raise FileExistsError(f"{folder} exists and is not a link to the study {study}: the study's own setting "
                              f"reuses the study's arms there; move it away or use another --out")
    folder.parent.mkdir(parents=True, exist_ok=True)
    folder.symlink_to(study.resolve(), target_is_directory=True)


def sweep_points(base: StudyLayout, grid: dict[str, list[str]]) -> tuple[list[dict], list[bool]]:
    """The grid's points, the study's own depth added to a depth sweep (the frontier always shows it), each checked
    (a bad value names its key; a depth must divide the teacher's layers), and which is the study's own."""
    cfg = load_config(base.config)
    if list(grid) == [DEPTH_KEY]:
        depths = check_depths([int(n) for n in grid[DEPTH_KEY]], teacher_layers(base))
        grid = {DEPTH_KEY: [str(n) for n in sorted(set(depths) | {cfg.student_layers})]}
    points = grid_points(grid)
    return points, [is_own(cfg, p) for p in points]


def trained_arms(cfg, point: dict[str, str]) -> list[str]:
    """The student arms a point trains: those its keys concern, as the point's study has them."""
    return [m for m in retrained(set(point)) if m in study_arms(with_overrides(cfg, **ablation_of(point)))]


def sweep_cost(base: StudyLayout, points: list[dict], own: list[bool], out: Path) -> str:
    """The line a sweep prints before it starts: the trainings it will run and their time at the study's own pace
    (its students' step wall times in ``run.json``)."""
    cfg = load_config(base.config)
    folds = [m.fold for m in base.models(TEACHER) if m.done.is_file()]
    todo = [p for p, o in zip(points, own) if not o and not point_complete(base, point_dir(out, p), ablation_of(p))]
    arms = [trained_arms(cfg, p) for p in todo]
    trainings, names = sum(map(len, arms)) * len(folds), {m for a in arms for m in a}
    steps = json.loads(base.run_json.read_text()).get("steps", {}) if base.run_json.is_file() else {}
    walls = [s["wall_s"] for name, s in steps.items() if name.split("/")[-1] in names and s.get("wall_s")]
    mean = sum(walls) / len(walls) if walls else 0.0
    pace = (f", about {trainings * mean / 3600:.1f} h of steps at the study's pace (those student steps took "
            f"{mean:.0f} s on average there)") if mean and trainings else ""
    return (f"sweep: {len(points)} points × {len(folds)} folds; {len(todo)} points to train, {trainings} student "
            f"trainings{pace}; the study's own setting and finished points reuse what is there")


def run_sweep(study: str | Path, out: str | Path, grid: dict[str, list[str]], jobs: int = 1,
              executor: str = "local", ray_settings=None, int8_ua: str = "deploy", rounds: int = 5,
              progress: bool = True, plan_only: bool = False) -> int:
    """Train every point's students (an ablation each), then write the grid's outputs (``analysis/grid.py``) and,
    for a sweep of depth alone, the frontier: ``frontier.csv``, ``frontier_contrasts.csv`` and ``frontier.png``
    (``deploy.frontier.write_frontier``; ``int8_ua`` and ``rounds`` are its). ``plan_only``: print what it would
    train and stop. Returns 0 when every point trained, else 1 (the outputs then show those that did)."""
    base = StudyLayout(resolve(study))
    out = resolve(out)
    if out.resolve() == base.dir.resolve() or base.dir.resolve() in out.resolve().parents:
        raise ValueError(f"--out {out} lies inside the study {base.dir}: a sweep never writes into its study")
    points, own = sweep_points(base, grid)
    print(sweep_cost(base, points, own, out), file=sys.stderr)
    if plan_only:
        return 0
    out.mkdir(parents=True, exist_ok=True)
    t0, status, train = time.time(), {}, []
    for point, is_study in zip(points, own):
        folder, name = point_dir(out, point), point_label(point)
        if is_study:
            _link_study(base.dir, folder)
            status[name] = (0, "the study's own setting")
        elif point_complete(base, folder, ablation_of(point)):
            print(f"=== {name}: every step of {folder} is complete (skipped)", file=sys.stderr)
            status[name] = (0, "complete (skipped)")
        else:
            train.append(point)
    if train:  # every point's steps in one run: one point's analysis overlaps another's training
        print(f"=== training {len(train)} points: " + ", ".join(map(point_label, train)), file=sys.stderr)
        codes = run_ablations(base.dir, [(point_dir(out, p), ablation_of(p)) for p in train], jobs, executor,
                              ray_settings)
        status |= {point_label(p): (c, "ran" if c == 0 else "failed or blocked steps (see its run.json)")
                   for p, c in zip(train, codes)}
    status = {point_label(p): status[point_label(p)] for p in points}  # in the grid's order
    depth_sweep = list(grid) == [DEPTH_KEY]
    record = {"study": str(base.dir), "grid": grid, "train_wall_s": round(time.time() - t0, 2),
              "points": {name: {"folder": str(point_dir(out, p)), "settings": p, "exit_code": c, "status": why,
                                "reused_study": o} for p, o, (name, (c, why)) in zip(points, own, status.items())},
              "command": " ".join(sys.argv)}
    if depth_sweep:  # what the frontier reads
        record |= {"teacher_layers": teacher_layers(base), "study_depth": load_config(base.config).student_layers,
                   "depths": {p[DEPTH_KEY]: record["points"][point_label(p)] for p in points}}
    (out / SWEEP_JSON).write_text(json.dumps(record, indent=2))
    done = [(p, point_dir(out, p), o) for p, o in zip(points, own) if status[point_label(p)][0] == 0]
    paths = write_grid(out, *map(list, zip(*done))) if done else []
    if depth_sweep:
        from ..deploy.frontier import write_frontier  # torch and onnxruntime: only once the training is done
        paths += write_frontier(out, int8_ua=int8_ua, rounds=rounds, progress=progress)
    failed = [name for name, (c, _) in status.items() if c]
    print(f"\nsweep {out}: {len(points)} points" + (f"; {', '.join(failed)} did not finish" if failed else "")
          + "; wrote " + ", ".join(p.name for p in paths))
    return 1 if failed else 0
