"""``mlkd sweep``: how small can the student be? A finished study's students retrained at other depths.

For each depth N (a divisor of the teacher's L layers) an ablation of the study (``runner.run_ablation``) retrains
the MLKD student and the CE-only student at N layers into ``<out>/depth-<N>/``: student layer k starts from, and
is matched by L_ML to, teacher layer k·L/N (``models.default_layer_map``). Data, folds, teachers and baselines are
linked from the study, so every comparison across depths stays paired fold by fold. The control arm (CE only from
the teacher's weights) is left out: the frontier asks what the loss buys at each size. The study's own depth is
always part of the frontier and trains nothing: ``depth-<N>`` links to the study itself.

A rerun skips what is done (each step's ``done.json``), so a killed sweep resumes; the frontier (exports, timing,
int8 scoring: ``analysis/frontier.py``) is then made from every depth that finished.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from tqdm.auto import tqdm

from ..config import load_config, with_overrides
from ..layout import StudyLayout, is_done
from ..names import TEACHER
from ..paths import resolve
from .runner import RUNTIME_KEYS, plan_fold_steps, run_ablation

SWEEP_KEY = "student_layers"  # the one key a sweep varies
SWEEP_JSON = "sweep.json"


def depth_dir(out: str | Path, depth: int) -> Path:
    """Where the students of ``depth`` layers live in a sweep folder."""
    return Path(out) / f"depth-{depth}"


def parse_depths(overrides: dict) -> list[int]:
    """The depths of ``--set student_layers=1,2,3,4`` (the only key a sweep takes), sorted, each once."""
    other = sorted(set(overrides) - {SWEEP_KEY})
    if other or SWEEP_KEY not in overrides:
        raise ValueError(f"a sweep varies only {SWEEP_KEY} (e.g. --set {SWEEP_KEY}=1,2,3,4), got {sorted(overrides)}"
                         " — other settings are an ablation's (`mlkd ablate`)")
    value = overrides[SWEEP_KEY]
    items = value.split(",") if isinstance(value, str) else value if isinstance(value, (list, tuple)) else [value]
    depths = []
    for item in items:
        try:
            depths.append(int(str(item).strip()))
        except ValueError:
            raise ValueError(f"{SWEEP_KEY}={value!r}: {item!r} is not a whole number of layers") from None
    return sorted(set(depths))


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


def depth_complete(base: StudyLayout, folder: Path, overrides: dict) -> bool:
    """Whether every step an ablation with ``overrides`` plans in ``folder`` is done, with the settings it would
    use: a rerun then passes the depth by without starting an executor (whose warm kernel costs seconds)."""
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
    """The study's own depth: its arms as they are, read through a link (nothing is written there)."""
    if folder.is_symlink() and folder.resolve() == study.resolve():
        return
    if folder.exists() or folder.is_symlink():
        raise FileExistsError(f"{folder} exists and is not a link to the study {study}: the study's own depth "
                              f"reuses the study's arms there; move it away or use another --out")
    folder.parent.mkdir(parents=True, exist_ok=True)
    folder.symlink_to(study.resolve(), target_is_directory=True)


def run_sweep(study: str | Path, out: str | Path, depths: list[int], jobs: int = 1, executor: str = "local",
              ray_settings=None, int8_ua: str = "deploy", rounds: int = 5, progress: bool = True) -> int:
    """Train every depth's students (an ablation each), then write the frontier: ``frontier.csv``,
    ``frontier_contrasts.csv`` and ``frontier.png`` in ``out`` (``deploy.frontier.write_frontier``; ``int8_ua``
    and ``rounds`` are its). Returns 0 when every depth trained, else 1 (the frontier then shows those that did)."""
    base = StudyLayout(resolve(study))
    out = resolve(out)
    if out.resolve() == base.dir.resolve() or base.dir.resolve() in out.resolve().parents:
        raise ValueError(f"--out {out} lies inside the study {base.dir}: a sweep never writes into its study")
    cfg = load_config(base.config)
    layers = teacher_layers(base)
    own = cfg.student_layers
    requested = check_depths(list(depths), layers)
    every = sorted(set(requested) | {own})
    out.mkdir(parents=True, exist_ok=True)
    t0, codes, status = time.time(), {}, {}
    for n in tqdm(every, desc="depths", disable=not progress):
        folder = depth_dir(out, n)
        if n == own:
            _link_study(base.dir, folder)
            codes[n], status[n] = 0, "the study's own students"
            continue
        overrides = {SWEEP_KEY: n, "control_arm": False}
        if depth_complete(base, folder, overrides):
            print(f"\n=== {n} layers: every step of {folder} is complete (skipped)", file=sys.stderr)
            codes[n], status[n] = 0, "complete (skipped)"
            continue
        print(f"\n=== {n} of the teacher's {layers} layers: {folder}", file=sys.stderr)
        codes[n] = run_ablation(base.dir, folder, overrides, jobs, executor, ray_settings)
        status[n] = "ran" if codes[n] == 0 else "failed or blocked steps (see its run.json)"
    record = {"study": str(base.dir), "teacher_layers": layers, "study_depth": own, "requested": requested,
              "depths": {str(n): {"folder": str(depth_dir(out, n)), "exit_code": c, "status": status[n],
                                  "reused_study": n == own}
                         for n, c in codes.items()},
              "int8_ua": int8_ua, "train_wall_s": round(time.time() - t0, 2), "command": " ".join(sys.argv)}
    (out / SWEEP_JSON).write_text(json.dumps(record, indent=2))
    from ..deploy.frontier import write_frontier  # torch and onnxruntime: only once the training is done
    paths = write_frontier(out, int8_ua=int8_ua, rounds=rounds, progress=progress)
    failed = sorted(n for n, c in codes.items() if c)
    print(f"\nsweep {out}: depths {every} of {layers} (the study's own: {own}); "
          + (f"depths {failed} did not finish; " if failed else "")
          + "wrote " + ", ".join(p.name for p in paths))
    return 1 if failed else 0
