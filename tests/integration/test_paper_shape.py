"""The paper preset end to end on paper-shaped inputs: a generated IEMOCAP tree, NOISEX-92 .mat
files at 19.98 kHz and a group-norm, 12-layer wav2vec2-base-shaped model folder, one fold, one epoch,
through the real notebooks; twice, into two study folders, to check determinism."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest
from helpers.paper_shape import make_base_shaped_model, make_iemocap, make_noisex

from mlkd_lib.layout import StudyLayout

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def paper_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("paper")
    sets = {"iemocap_root": make_iemocap(root / "IEMOCAP_full_release"), "noisex_dir": make_noisex(root / "NOISEX-92"),
            "model": make_base_shaped_model(root / "wav2vec2-base"), "data_dir": root / "data",
            "teacher_epochs": 1, "student_epochs": 1, "batch_size": 4, "bench_utterances": 2,
            "control_arm": False}  # the control trains as the CE-only student does: the micro study runs it
    args = [a for k, v in sets.items() for a in ("--set", f"{k}={v}")]

    def study(*extra):
        return subprocess.run([sys.executable, "-m", "mlkd_lib", "study", "--preset", "paper", "--folds", "Ses01F",
                               *args, *extra], capture_output=True, text=True)

    runs = {name: study("--out", str(root / name), "--jobs", "2") for name in ("a", "b")}
    return root, runs, study("--out", str(root / "planned"), "--plan")


def test_the_paper_preset_runs_end_to_end_on_paper_shaped_inputs(paper_runs):
    root, runs, _ = paper_runs
    assert runs["a"].returncode == 0, runs["a"].stdout[-3000:] + runs["a"].stderr[-3000:]
    study = StudyLayout(root / "a")
    for name in ("table1", "table2", "table3"):
        assert (study.dir / f"{name}.md").is_file()
    metrics = pd.read_csv(study.metrics)
    assert set(metrics.model) == {"teacher", "student_sup", "student_unsup", "baseline"}
    assert len(metrics) == 4 * (1 + 5 * 5)  # clean + five NOISEX noises at five SNRs, for each model
    assert "Student ONNX int8" in (study.dir / "table3.md").read_text()  # the paper preset deploys


def test_a_finished_study_leaves_no_resume_state_behind(paper_runs):
    root, runs, _ = paper_runs
    study = StudyLayout(root / "a")
    models = study.models()
    assert len(models) == 4 and all(m.best_ckpt.is_file() or m.name == "baseline" for m in models)
    assert not [m.last_ckpt for m in models if m.last_ckpt.exists()]
    assert not [m.teacher_cache for m in models if m.teacher_cache.exists()]


def test_two_runs_give_the_same_metrics(paper_runs):
    root, runs, _ = paper_runs
    assert runs["b"].returncode == 0
    assert (root / "a" / "metrics.csv").read_bytes() == (root / "b" / "metrics.csv").read_bytes()


def test_plan_estimates_disk_and_time_for_the_paper_shaped_tree(paper_runs):
    root, _, plan = paper_runs
    assert plan.returncode == 0, plan.stderr
    assert "5 steps: data, Ses01F/teacher" in plan.stdout and "student_unsup" in plan.stdout
    assert "disk: about" in plan.stdout
    assert "time: about" in plan.stdout and "utterances" in plan.stdout
    assert not (root / "planned").exists()
