"""The paper preset's real shapes on a GPU, in minutes: wav2vec2-base (95 M parameters, random weights), batch 8,
utterances up to 15 s, bf16, one fold (Ses01F) x 2 epochs through the real notebooks; the study is killed while its
teacher trains and started again (it must resume); before that, `--plan` prices the whole study on an
IEMOCAP-shaped manifest (5531 utterances, IEMOCAP's class counts and mean length) from steps it measures, and
`mlkd bench --train-step` times 100 steps of the teacher and the MLKD student with their breakdown. Prints and
writes ``summary.json``: the plan, the bench, step time, its parts and peak GPU memory per model and epoch
(``history.csv``), each step's wall time, and the epoch the rerun resumed after.

    python tests/bench/paper_gpu.py OUT              # on a GPU machine
    python tests/bench/paper_gpu.py OUT --small      # the same script on tiny shapes, to check it on a CPU
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the helpers
from helpers.paper_shape import make_base_shaped_model, make_iemocap, make_noisex  # noqa: E402
from helpers.studies import resumed_after, teacher_saved_epoch  # noqa: E402

from mlkd_lib.data.manifest import write_manifest  # noqa: E402
from mlkd_lib.data.recipes.iemocap import build_manifest  # noqa: E402

IEMOCAP_COUNTS = {"neu": 1708, "hap": 1636, "ang": 1103, "sad": 1084}  # the four classes, exc merged into hap
IEMOCAP_MEAN_S = 4.5


def iemocap_shaped_manifest(tree: Path, out: Path, seed: int = 0) -> Path:
    """A manifest with IEMOCAP's size, speakers and class counts, durations log-normal around its mean, its rows
    made from ``tree``'s (the plan reads durations, never audio)."""
    rows = build_manifest(tree, progress=False)
    rng = np.random.default_rng(seed)
    emotions = [e for e, n in IEMOCAP_COUNTS.items() for _ in range(n)]
    speakers = sorted(rows.speaker.unique())
    df = pd.DataFrame([rows.iloc[i % len(rows)] for i in range(len(emotions))]).reset_index(drop=True)
    df["utt_id"] = [f"u{i:05d}" for i in range(len(df))]
    df["speaker"] = [speakers[i % len(speakers)] for i in range(len(df))]
    df["emotion"] = emotions
    sigma = 0.6
    df["duration_s"] = np.round(rng.lognormal(np.log(IEMOCAP_MEAN_S) - sigma**2 / 2, sigma, len(df)).clip(0.6, 34), 3)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_manifest(df, out)
    return out


def teacher_epoch_saved(study: Path, process: subprocess.Popen, log: Path) -> int:
    """Wait until the running study's teacher has saved an epoch and not finished; the epoch saved."""
    epoch = teacher_saved_epoch(study, alive=lambda: process.poll() is None, timeout_s=3600)
    if epoch is None:
        sys.exit(f"the study ended (status {process.returncode}) before its teacher saved an epoch:\n"
                 + log.read_text()[-3000:])
    return epoch


def plan(command: list[str], inputs: dict, out: Path) -> dict:
    """`--plan` of the whole paper study as the preset runs it (test-only conditions, deploy) on IEMOCAP's shape."""
    data = out / "plan_data"
    manifest = iemocap_shaped_manifest(inputs["iemocap_root"], data / "iemocap-shaped.csv")
    t0 = time.time()
    sets = ["--set", f"data_dir={data}", "--set", "corpus=manifest", "--set", f"manifest={manifest}"]
    run = subprocess.run([*command, *sets, "--out", str(out / "planned"), "--plan"], capture_output=True, text=True)
    return {"plan_rc": run.returncode, "plan_s": time.time() - t0, "plan": run.stdout[-4000:],
            **({"plan_err": run.stderr[-3000:]} if run.returncode else {})}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--small", action="store_true", help="tiny model and utterances: checks the script on a CPU")
    ap.add_argument("--per-speaker", type=int, default=8, help="labelled turns per speaker and dialog")
    ap.add_argument("--jobs", type=int, default=3)
    ap.add_argument("--pace", action="store_true", help="instead: one teacher epoch, then stop (with --per-speaker "
                    "40, some 80 steps: the pace once an epoch's start-up is spread over many steps)")
    a = ap.parse_args()
    out, root = a.out, a.out / "inputs"
    out.mkdir(parents=True, exist_ok=True)
    summary: dict = {"small": a.small}

    def save():
        (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))

    t0 = time.time()
    seconds = (0.8, 2.0) if a.small else (2.0, 18.0)  # above 15 s the preset cuts: the longest batches are full
    inputs = {"iemocap_root": make_iemocap(root / "IEMOCAP_full_release", a.per_speaker, seconds=seconds),
              "noisex_dir": make_noisex(root / "NOISEX-92", seconds=8.0 if a.small else 40.0),
              "model": make_base_shaped_model(root / "wav2vec2-base", full_size=not a.small)}
    short = {"data_dir": root / "data", "teacher_epochs": 2, "student_epochs": 2, "conditions": "", "deploy": False,
             "bench_utterances": 4, "representation_utterances": 16,
             "enhancement_per_emotion": 0}  # PESQ (a C extension) is not needed for timings
    summary["inputs_s"] = time.time() - t0

    def sets(values: dict) -> list[str]:
        return [x for k, v in values.items() for x in ("--set", f"{k}={v}")]

    command = [sys.executable, "-m", "mlkd_lib", "study", "--preset", "paper", *sets(inputs)]
    study = out / "study"
    log = open(out / "study.log", "w")  # noqa: SIM115 (both runs write it)
    if a.pace:
        run = subprocess.Popen([*command, *sets(dict(short, teacher_epochs=1)), "--folds", "Ses01F", "--out",
                                str(study)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        history = study / "folds" / "Ses01F" / "teacher" / "history.csv"
        while run.poll() is None and not history.is_file():
            time.sleep(0.2)
        os.killpg(run.pid, signal.SIGKILL)
        summary["teacher"] = pd.read_csv(history).to_dict("records")
        save()
        print(json.dumps(summary, indent=1, default=str))
        return
    summary.update(plan(command, inputs, out))  # first: it takes seconds
    save()
    steps = "8" if a.small else "100"  # where a step's time goes, through the real loader (warm-up excluded)
    preset = "micro" if a.small else "paper"
    bench = subprocess.run([sys.executable, "-m", "mlkd_lib", "bench", "--train-step", "--preset", preset, "--steps",
                            steps, "--json"], capture_output=True, text=True)
    summary["train_step"] = json.loads(bench.stdout) if bench.returncode == 0 else bench.stderr[-3000:]
    save()

    t0 = time.time()
    fold = [*sets(short), "--folds", "Ses01F", "--out", str(study), "--jobs", str(a.jobs)]
    killed = subprocess.Popen([*command, *fold], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    summary["killed_at_epoch"] = teacher_epoch_saved(study, killed, out / "study.log")
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait(timeout=60)
    summary["killed_after_s"] = time.time() - t0
    save()
    t0 = time.time()
    rerun = subprocess.run([*command, *fold], stdout=log, stderr=subprocess.STDOUT)
    summary["rerun_rc"], summary["rerun_s"] = rerun.returncode, time.time() - t0
    summary["resumed_after_epoch"] = resumed_after(study)
    histories = {p.parent.name: pd.read_csv(p) for p in sorted((study / "folds" / "Ses01F").glob("*/history.csv"))}
    keep = ["epoch", "step_s", "peak_gib", "seconds", "loss", "val_ua"]
    summary["history"] = {m: h[[c for c in keep if c in h]].to_dict("records") for m, h in histories.items()}
    run = json.loads((study / "run.json").read_text()) if (study / "run.json").is_file() else {}
    summary["run"] = run
    save()

    save()
    print(json.dumps({k: v for k, v in summary.items() if k != "run"}, indent=1, default=str))


if __name__ == "__main__":
    main()
