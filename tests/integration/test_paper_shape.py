"""The paper preset end to end on paper-shaped inputs: a generated IEMOCAP tree, NOISEX-92 .mat
files at 19.98 kHz and a group-norm, 12-layer wav2vec2-base-shaped model folder, one fold, through the real
notebooks; twice, side by side, into two study folders: the second run is killed (the whole process group) while
its teacher trains and started again, and must resume to the same metrics as the first."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pandas as pd
import pytest
from helpers.paper_shape import make_base_shaped_model, make_iemocap, make_noisex
from helpers.studies import resumed_after, wait_for_training, wait_until

from mlkd_lib.layout import StudyLayout, is_done

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def paper_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("paper")
    sets = {"iemocap_root": make_iemocap(root / "IEMOCAP_full_release"), "noisex_dir": make_noisex(root / "NOISEX-92"),
            "model": make_base_shaped_model(root / "wav2vec2-base"), "data_dir": root / "data",
            "teacher_epochs": 5, "student_epochs": 1, "batch_size": 4, "bench_utterances": 2,
            "control_arm": False,  # the control trains as the CE-only student does: the micro study runs it
            "conditions": "",  # the test-only conditions: the micro study scores them all
            "enhancement_snrs": "0",  # PESQ / STOI at one SNR: the scoring path, not its cost five times
            "snrs": "0,20"}  # the paper's lowest and highest: its five (a unit test pins them) score alike
    args = [a for k, v in sets.items() for a in ("--set", f"{k}={v}")]

    command = [sys.executable, "-m", "mlkd_lib", "study", "--preset", "paper", "--folds", "Ses01F", *args]

    def start(out, **popen):
        return subprocess.Popen([*command, "--out", str(root / out), "--jobs", "2"], **popen)

    def logged(out):  # a run's output in files: two runs at once, neither blocked on a full pipe
        logs = {s: (root / f"{out}.{s}.log").open("w+") for s in ("stdout", "stderr")}
        return start(out, **logs), logs

    def finished(run):
        proc, logs = run
        proc.wait(timeout=900)
        text = {}
        for name, f in logs.items():
            with f:
                f.seek(0)
                text[name] = f.read()
        return subprocess.CompletedProcess(proc.args, proc.returncode, text["stdout"], text["stderr"])

    # the two studies run side by side, b once its data step finds what a's made (they share data_dir)
    runs, first, data = {}, logged("a"), StudyLayout(root / "a").data_step
    if not (wait_until(lambda: is_done(data) or first[0].poll() is not None, timeout_s=300) and is_done(data)):
        first[0].kill()
        pytest.fail("the first paper-shaped study made no data: " + finished(first).stderr[-3000:])
    killed = start("b", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    runs["killed_at"] = wait_for_training(root / "b")
    os.killpg(killed.pid, signal.SIGKILL)  # the runner; its kernels (own sessions) end when they see it gone
    killed.wait(timeout=30)
    second = logged("b")
    runs["a"], runs["b"] = finished(first), finished(second)
    plan = subprocess.run([*command, "--out", str(root / "planned"), "--plan"], capture_output=True, text=True)
    return root, runs, plan


def test_the_paper_preset_runs_end_to_end_on_paper_shaped_inputs(paper_runs):
    root, runs, _ = paper_runs
    assert runs["a"].returncode == 0, runs["a"].stdout[-3000:] + runs["a"].stderr[-3000:]
    study = StudyLayout(root / "a")
    for name in ("table1", "table2", "table3"):
        assert (study.dir / f"{name}.md").is_file()
    metrics = pd.read_csv(study.metrics)
    assert set(metrics.model) == {"teacher", "student_sup", "student_unsup", "baseline"}
    assert len(metrics) == 4 * (1 + 5 * 2)  # clean + five NOISEX noises at two SNRs, for each model
    assert "Student ONNX int8" in (study.dir / "table3.md").read_text()  # the paper preset deploys
    scores = pd.read_csv(study.dir / "folds" / "Ses01F" / "baseline" / "enhancement.csv")  # PESQ-WB / STOI
    assert len(scores) == 4 * 5 and set(scores.snr_db) == {0.0} and scores.notna().all().all()  # an emotion each


def test_a_finished_study_leaves_no_resume_state_behind(paper_runs):
    root, runs, _ = paper_runs
    study = StudyLayout(root / "a")
    models = study.models()
    assert len(models) == 4 and all(m.best_ckpt.is_file() or m.name == "baseline" for m in models)
    assert not [m.last_ckpt for m in models if m.last_ckpt.exists()]
    assert not [m.teacher_cache for m in models if m.teacher_cache.exists()]


def test_a_killed_study_resumes_to_the_metrics_of_an_uninterrupted_one(paper_runs):
    root, runs, _ = paper_runs
    assert runs["b"].returncode == 0, runs["b"].stdout[-3000:] + runs["b"].stderr[-3000:]
    resumed = resumed_after(root / "b")
    print(f"paper-shaped: killed with last.pt at epoch {runs['killed_at']}, resumed after epoch {resumed}")
    # the rerun may find a later epoch than the kill saw: the kernel (own session) runs until it sees its parent gone
    assert 1 <= runs["killed_at"] <= resumed < 5
    assert (root / "a" / "metrics.csv").read_bytes() == (root / "b" / "metrics.csv").read_bytes()


def test_plan_estimates_disk_and_time_for_the_paper_shaped_tree(paper_runs):
    root, _, plan = paper_runs
    assert plan.returncode == 0, plan.stderr
    assert "5 steps: data, Ses01F/teacher" in plan.stdout and "student_unsup" in plan.stdout
    assert "disk: about" in plan.stdout
    assert "time: about" in plan.stdout and "utterances" in plan.stdout
    assert [p.name for p in (root / "planned").iterdir()] == ["plan.json"]  # what it measured, nothing else
    measured = json.loads((root / "planned" / "plan.json").read_text())["roles"]
    assert set(measured) == {"teacher", "student_sup", "student_unsup"} and all(
        m["step_s"] > 0 and m["timed_steps"] == 6 for m in measured.values())
    assert f"teacher: {1000 * measured['teacher']['step_s']:.1f} ms a step" in plan.stdout
