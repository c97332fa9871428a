"""`make mutants`: mutation testing (mutmut) of the modules that compute the study's numbers, against the unit tests
that pin each (``MODULES``); what it scores and how a survivor is killed or listed: tests/README.md.

    .venv/bin/python tests/mutants.py                                   # every module of MODULES
    .venv/bin/python tests/mutants.py mlkd_lib/data/vad.py mlkd_lib/analysis/stats.py   # the ones you changed
    .venv/bin/python tests/mutants.py --rescore     # the last run's results against the list, after adding to it

Writes ``test-artifacts/mutants/``: ``scores.csv``, ``survivors.md``, and per module its mutmut log and results.
Each module runs in a fresh copy (``test-artifacts/mutants/work``), one mutmut at a time on ``--jobs`` workers (2:
the machine's cores); exit status 1 when a module scores below ``TARGET``.
"""

from __future__ import annotations

import argparse
import csv
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "test-artifacts" / "mutants"
TARGET = 0.90
U = "tests/unit/"
# each module that computes a study's numbers → the unit tests that pin them (its own, and those that recompute
# its results from elsewhere)
MODULES = {
    "mlkd_lib/analysis/stats.py": [U + "analysis/test_stats.py"],
    "mlkd_lib/analysis/corruption.py": [U + "analysis/test_corruption.py", U + "data/test_test_corpora.py"],
    "mlkd_lib/analysis/grid.py": [U + "analysis/test_grid.py"],
    "mlkd_lib/analysis/tables.py": [U + "analysis/test_tables.py"],
    "mlkd_lib/analysis/diagnostics.py": [U + "analysis/test_diagnostics.py"],
    "mlkd_lib/analysis/calibration.py": [U + "analysis/test_calibration.py"],
    "mlkd_lib/method/temperature.py": [U + "analysis/test_calibration.py", U + "method/test_train.py"],
    "mlkd_lib/method/losses.py": [U + "method/test_losses.py", U + "method/test_objective_in_training.py"],
    "mlkd_lib/method/evaluate.py": [U + "method/test_evaluate.py", U + "data/test_test_corpora.py"],
    "mlkd_lib/method/teacher_cache.py": [U + "method/test_teacher_cache.py"],
    "mlkd_lib/method/representation.py": [U + "method/test_representation.py"],
    "mlkd_lib/data/mixing.py": [U + "data/test_mixing.py", U + "data/test_noise_collections.py"],
    "mlkd_lib/data/folds.py": [U + "data/test_folds.py", U + "data/test_user_manifest.py"],
    "mlkd_lib/data/ingest.py": [U + "data/test_ingest.py"],
    "mlkd_lib/data/vad.py": [U + "data/test_vad.py", U + "deploy/test_predict.py"],
    "mlkd_lib/data/prepare.py": [U + "data/test_test_corpora.py", U + "data/test_follow_data.py",
                                 U + "data/test_ingest.py", U + "data/test_user_manifest.py",
                                 U + "data/test_noise_split.py", U + "data/test_families.py",
                                 U + "data/test_ownership.py", U + "study/test_trial.py",
                                 U + "data/test_prepare.py"],
    "mlkd_lib/data/conditions/corpus.py": [U + "data/test_test_corpora.py"],
    "mlkd_lib/data/ownership.py": [U + "data/test_ownership.py"],
    "mlkd_lib/study/plan.py": [U + "study/test_plan.py", U + "study/test_preflight.py"],
    "mlkd_lib/deploy/segments.py": [U + "deploy/test_predict.py", U + "deploy/test_export.py"],
    "mlkd_lib/deploy/predict.py": [U + "deploy/test_predict.py", U + "deploy/test_export.py"],
}
DETECTED = {"killed", "timeout", "segfault", "caught by type check"}  # a test failed, hung or crashed on the change


def equivalents(readme: Path = ROOT / "tests" / "README.md") -> list[str]:
    """The mutants tests/README.md lists as unable to change a result: a backticked mutmut name each, or a pattern
    (``*``) for every mutant of a function that draws a figure."""
    return re.findall(r"`(mlkd_lib\.[^`\s]+__mutmut_(?:\d+|\*))`", readme.read_text())


def listed(name: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def progress_bar_only(diff: str) -> bool:
    """Whether a mutant changes nothing but a progress bar (a ``tqdm(...)`` call's wording, display or visibility):
    no value can change, whatever the bar shows. Each line it changes (the original's lines, ``-``) opens a
    ``tqdm(`` call or continues one (the lines up to the opening one end with a comma)."""
    original = [line for line in diff.splitlines() if not line.startswith(("+", "@@"))]

    def in_call(i: int) -> bool:
        k = i
        while k >= 0:
            if "tqdm(" in original[k]:
                return True
            if k < i and not original[k].rstrip().endswith(","):
                return False
            k -= 1
        return False

    changed = [i for i, line in enumerate(original) if line.startswith("-") and not line.startswith("---")]
    return bool(changed) and all(in_call(i) for i in changed)


def mutmut_config(module: str, tests: list[str]) -> str:
    """The [tool.mutmut] table of one module's run (appended to the project's own pyproject.toml)."""
    return ("\n[tool.mutmut]\n"
            'source_paths = ["mlkd_lib"]\n'
            f"only_mutate = {json.dumps([module])}\n"
            f"pytest_add_cli_args_test_selection = {json.dumps(tests)}\n"
            "use_git_change_detection = false\n"
            "timeout_multiplier = 5.0\n")


def run_module(module: str, tests: list[str], jobs: int) -> tuple[dict[str, str], float, dict[str, str]]:
    """mutmut over ``module`` in a fresh copy: each mutant's status, the wall seconds, and each survivor's diff."""
    from mutmut.stats import status_by_exit_code
    work = OUT / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    for name in ("mlkd_lib", "tests"):
        (work / name).symlink_to(ROOT / name, target_is_directory=True)
    (work / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text() + mutmut_config(module, tests))
    # the mutated copy is the one imported; one thread a worker: torch's thread pool does not survive mutmut's forks
    env = {**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    log = OUT / f"{module.replace('/', '.')}.log"
    t0 = time.monotonic()
    with open(log, "w") as fh:
        subprocess.run([str(Path(sys.executable).with_name("mutmut")), "run", "--max-children", str(jobs)], cwd=work,
                       env=env, stdout=fh, stderr=subprocess.STDOUT, check=False)
    seconds = time.monotonic() - t0
    meta = work / "mutants" / f"{module}.meta"
    if not meta.is_file():
        raise RuntimeError(f"mutmut made no results for {module}: see {log}")
    status = {k: status_by_exit_code[v] for k, v in json.loads(meta.read_text())["exit_code_by_key"].items()}
    return status, seconds, diffs(work, module, [k for k, s in status.items() if s not in DETECTED])


def diffs(work: Path, module: str, names: list[str]) -> dict[str, str]:
    from mutmut.configuration import reset_config
    from mutmut.mutation.diff_apply import get_diff_for_mutant
    here = os.getcwd()
    os.chdir(work)
    try:
        reset_config()
        return {n: get_diff_for_mutant(n, path=Path(module)) for n in names}
    finally:
        os.chdir(here)


def write_scores(rows: list[dict]) -> None:
    """``scores.csv`` with these rows, beside the rows of modules an earlier run scored (in ``MODULES`` order), and
    ``survivors.md``: every module's unlisted survivors."""
    path = OUT / "scores.csv"
    old = {r["module"]: r for r in csv.DictReader(path.open())} if path.is_file() else {}
    merged = old | {r["module"]: r for r in rows}
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, list(rows[0]), extrasaction="ignore")  # rows of an older run may differ
        w.writeheader()
        w.writerows(merged[m] for m in MODULES if m in merged)
    parts = [(OUT / f"{m.replace('/', '.')}.survivors.md") for m in MODULES if m in merged]
    (OUT / "survivors.md").write_text("# Surviving mutants not listed as equivalent\n\n" + "".join(
        f"## {p.name.removesuffix('.survivors.md')}\n\n{p.read_text()}" for p in parts if p.is_file()))


def score(module: str, status: dict[str, str], seconds: float, found: dict[str, str], patterns: list[str]) -> dict:
    """One module's row of ``scores.csv`` (its unlisted survivors' diffs to ``<module>.survivors.md``)."""
    equivalent = [k for k in status if listed(k, patterns) or progress_bar_only(found.get(k, ""))]
    killed = sum(s in DETECTED for k, s in status.items() if k not in equivalent)
    live = [k for k, s in status.items() if k not in equivalent and s not in DETECTED]
    scored = len(status) - len(equivalent)
    (OUT / f"{module.replace('/', '.')}.survivors.md").write_text(
        "".join(f"### `{k}` ({status[k]})\n```diff\n{found[k]}\n```\n\n" for k in live))
    return {"module": module, "mutants": len(status), "killed": killed, "not_scored": len(equivalent),
            "survived": len(live), "score": round(killed / scored, 4) if scored else 1.0, "seconds": round(seconds)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("modules", nargs="*", help=f"paths of modules to mutate (default: all {len(MODULES)})")
    ap.add_argument("--jobs", type=int, default=2, help="mutmut workers")
    ap.add_argument("--rescore", action="store_true", help="score the last run's results again against the list in "
                    "tests/README.md (after adding to it), without running mutmut")
    a = ap.parse_args(argv)
    unknown = [m for m in a.modules if m not in MODULES]
    if unknown:
        ap.error(f"not in MODULES (tests/mutants.py names the tests of each): {', '.join(unknown)}")
    OUT.mkdir(parents=True, exist_ok=True)
    patterns = equivalents()
    rows, t0 = [], time.monotonic()
    for module in a.modules or list(MODULES):
        saved = OUT / f"{module.replace('/', '.')}.results.json"
        if a.rescore:
            if not saved.is_file():
                continue
            status, seconds, found = json.loads(saved.read_text()).values()
        else:
            status, seconds, found = run_module(module, MODULES[module], a.jobs)
            saved.write_text(json.dumps({"status": status, "seconds": seconds, "diffs": found}))
        rows.append(score(module, status, seconds, found, patterns))
        r = rows[-1]
        print(f"{module}: {r['killed']}/{r['mutants'] - r['not_scored']} killed ({r['score']:.1%}), {r['not_scored']} "
              f"not scored, {r['survived']} survived, {r['seconds']} s", flush=True)
    if not rows:
        ap.error("no results to score: run without --rescore first")
    write_scores(rows)
    print(f"{len(rows)} modules in {time.monotonic() - t0:.0f} s; scores in {OUT / 'scores.csv'}, survivors' diffs "
          f"in {OUT / 'survivors.md'}")
    return int(any(r["score"] < TARGET for r in rows))


if __name__ == "__main__":
    sys.exit(main())
