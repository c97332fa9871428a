"""The study runner: papermill over the real notebooks, failures isolated, resumable."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
from helpers.notebooks import failing_notebook, marking_notebook

from mlkd_lib.config import load_config
from mlkd_lib.deploy.bench import study_inference
from mlkd_lib.study.bench_steps import cell_times
from mlkd_lib.study.runner import run_study
from mlkd_lib.study.steps import Step, execute

pytestmark = pytest.mark.slow  # notebooks, Ray or a browser: make test, not make test-fast


def test_a_failing_step_leaves_the_others_running(tmp_path):
    ok, bad = marking_notebook(tmp_path / "ok.ipynb"), failing_notebook(tmp_path / "bad.ipynb")
    steps = [Step("a", bad, {"done_dir": str(tmp_path / "a")}, tmp_path / "a", tmp_path / "out" / "a.ipynb"),
             Step("b", ok, {"done_dir": str(tmp_path / "b")}, tmp_path / "b", tmp_path / "out" / "b.ipynb", ["a"]),
             Step("c", ok, {"done_dir": str(tmp_path / "c")}, tmp_path / "c", tmp_path / "out" / "c.ipynb")]
    out = execute(steps, jobs=2, force=False)
    assert out["a"].status == "failed" and "the corpus is on fire" in out["a"].error
    assert out["b"].status == "blocked"
    assert out["c"].status == "ok"
    assert (tmp_path / "out" / "a.ipynb").is_file()  # the failed notebook is kept as the record
    again = execute(steps[2:], jobs=1, force=False)
    assert again["c"].status == "skipped"


def test_micro_study_end_to_end_and_resume(micro_study):
    study, overrides, code = micro_study
    assert code == 0
    students = ("student_sup", "student_unsup", "student_unsup_from_teacher")
    for nb in ("01_data_prep.ipynb", "04_analysis.ipynb", "folds/Ses01F/02_train_teacher.ipynb",
               "folds/Ses01F/02b_baseline_vad_nmf.ipynb", *(f"folds/Ses01F/03_distill_student_{m}.ipynb"
                                                            for m in students)):
        assert (study / nb).is_file(), nb
    metrics = pd.read_csv(study / "metrics.csv")
    assert set(metrics.model) == {"teacher", "baseline", *students}
    trained = metrics[metrics.condition.isin(["clean", "noise"])]
    assert len(trained) == 5 * (1 + 2 * 2)  # clean + 2 noises × 2 SNRs, per model
    # beyond the training noise, every model: the synthetic noises' other two (music, traffic) at 2 SNRs, reverb,
    # far field, codec and clipping at 3 severities each, the telephone channel
    extra = metrics[~metrics.condition.isin(["clean", "noise"])]
    assert extra.groupby("model").size().eq(2 * 2 + 3 + 3 + 1 + 3 + 3).all() and len(extra) == 5 * 17
    assert set(extra[extra.condition == "unseen_noise"].noise) == {"music", "traffic"}
    assert (study / "table4.md").is_file() and (study / "plots" / "robustness.png").is_file()
    for f in ("calibration.csv", "table5.md", "table5.csv", "plots/reliability.png", "plots/risk_coverage.png"):
        assert (study / f).is_file(), f
    assert "Table 5" in (study / "README.md").read_text()
    # the three contrasts between the students, with room for a CI, p, q and detectable effect
    stats = pd.read_csv(study / "stats.csv")
    calibration = stats[stats.kind.isin(["ECE (scaled)", "AURC (scaled)"])]  # the rest compare UA
    assert set(calibration.comparison) == {"MLKD (teacher init) − CE (pretrained init)",
                                           "MLKD (teacher init) − CE (teacher init)", "MLKD − teacher"}
    stats = stats.drop(calibration.index)
    unseen = stats[stats.noise == "pooled unseen"]
    assert set(unseen.comparison) >= {"MLKD − baseline"} and len(unseen) == 3  # both CE readings, the baseline
    kinds = set(stats[stats.noise == "pooled"].kind)
    assert {"loss and initialisation", "initialisation", "loss"} <= kinds
    assert {"ci_low", "ci_high", "p", "q_bh", "mde_80"} <= set(stats.columns)  # one fold: no spread, so NaN
    # the look inside: every trained model's layer distance to the teacher's clean states, every condition
    rep = pd.read_csv(study / "representation.csv")
    assert set(rep.model) == {"teacher", *students} and rep.value.between(0, 10).all()
    # micro: 2 student layers (teacher: 2 of its own) x 5 trained conditions, + music 0 dB and reverb 0.6 s
    assert (rep.groupby("model").size() == 7 * 2).all()
    assert set(rep[~rep.condition.isin(["clean", "noise"])].condition) == {"unseen_noise", "reverb"}
    assert (study / "plots" / "representation.png").is_file()
    selection = pd.read_csv(study / "selection.csv")
    assert set(selection.model) == {"teacher", *students} and (selection.selected_epoch <= selection.last_epoch).all()
    config = json.loads((study / "config.json").read_text())
    assert (config["sup_init"], config["unsup_init"], config["control_arm"]) == ("teacher", "pretrained", True)
    assert metrics.ua.between(0, 1).all() and (metrics.n > 0).all()
    # the tables hold the numbers computed from the metrics of this run
    t1 = pd.read_csv(study / "table1.csv")
    teacher_clean = metrics.query("model == 'teacher' and noise == 'clean'").ua.mean() * 100
    assert t1.loc[t1.model == "Teacher", "clean speech mean"].iloc[0] == pytest.approx(teacher_clean)
    t2 = pd.read_csv(study / "table2.csv")
    base_0 = metrics.query("model == 'baseline' and noise == 'factory' and snr_db == 0").ua.mean() * 100
    assert t2.loc[t2.SNR == "0 dB", "factory baseline mean"].iloc[0] == pytest.approx(base_0)
    t3 = pd.read_csv(study / "table3.csv")
    assert (t3.time_s > 0).all() and t3.param_mib.iloc[0] > t3.param_mib.iloc[1]
    for f in ("table1.md", "table2.md", "table3.md", "plots/ua_vs_snr.png", "plots/mlkd_minus_baseline.png",
              "plots/confusion.png", "README.md"):
        assert (study / f).is_file(), f
    assert "Synthetic speech" in (study / "table1.md").read_text()
    run = json.loads((study / "run.json").read_text())
    assert run["wall_s"] > 0 and all(s["status"] == "ok" and s["wall_s"] > 0 for s in run["steps"].values())
    assert run["versions"]["torch"] and run["config"]["preset"] == "micro"
    # where the time went, cell by cell, from the executed notebooks (`mlkd bench --study-steps`)
    cells = cell_times(study / "run.json", at_least_s=0.0)
    assert {"result = step.train()", "metrics = step.evaluate(step.best_model())"} <= set(
        cells[cells.kind == "teacher"].cell)
    assert set(cells.kind) == {"data", "teacher", "baseline", *students, "analysis"} and (cells.mean_s >= 0).all()
    # the fold's kept test audio and shared CNN outputs went with its last step
    assert not list(study.glob("folds/*/test_audio")) and not list(study.glob("folds/*/cnn_features"))

    # a second run on the finished folder runs nothing
    stamps = {p: p.stat().st_mtime for p in study.rglob("*.ipynb")}
    assert run_study("micro", str(study), "Ses01F", overrides, jobs=2) == 0
    assert {p: p.stat().st_mtime for p in study.rglob("*.ipynb")} == stamps
    run = json.loads((study / "run.json").read_text())
    assert all(s["status"] == "skipped (complete)" for s in run["steps"].values())

    # a study folder is not silently reused with other settings
    with pytest.raises(ValueError, match="teacher_epochs"):
        run_study("micro", str(study), "Ses01F", {**overrides, "teacher_epochs": 3})


def test_an_ablation_retrains_only_the_mlkd_students_and_reuses_the_rest(micro_study, tmp_path):
    from mlkd_lib.study.runner import run_ablation
    study, _, _ = micro_study
    with pytest.raises(ValueError, match="lr"):
        run_ablation(study, tmp_path / "bad", {"lr": "1e-4"})
    out = tmp_path / "beta0"
    assert run_ablation(study, out, {"beta": "0"}, jobs=1) == 0
    run = json.loads((out / "run.json").read_text())
    ran = {name for name, s in run["steps"].items() if s["status"] == "ok"}
    assert ran == {"Ses01F/student_sup", "analysis"}  # data, teacher, baseline, CE-only student: reused
    assert run["config"]["beta"] == 0.0
    assert (out / "folds" / "Ses01F" / "teacher").resolve() == (study / "folds" / "Ses01F" / "teacher").resolve()
    old, new = (pd.read_csv(d / "folds/Ses01F/student_sup/predictions.csv") for d in (study, out))
    assert not np.allclose(old[["p_neu", "p_hap"]], new[["p_neu", "p_hap"]])  # β = 0 trains another student


def test_an_ablation_retrains_exactly_the_arms_its_keys_concern():
    from mlkd_lib.arms import retrained
    assert retrained({"beta"}) == retrained({"sup_init", "temperature"}) == ["student_sup"]
    assert retrained({"unsup_init"}) == ["student_unsup"]
    assert sorted(retrained({"student_epochs"})) == ["student_sup", "student_unsup", "student_unsup_from_teacher"]


def test_table3_is_timed_on_the_cpu_whatever_device_the_study_trained_on(micro_study):
    study, _, code = micro_study
    assert code == 0
    cfg = dataclasses.replace(load_config(study / "config.json"), device="cuda", threads=1)  # a GPU study's config
    res = study_inference(study, cfg, rounds=1)
    assert res["device"] == "cpu, 1 threads" and res["teacher_s"] > 0 and res["student_s"] > 0


def test_tables_4_and_5_and_their_contrasts_recomputed_from_the_studys_files(micro_study):
    """As a reviewer would: Table 4's UA and the unseen contrasts of the micro study worked out from its
    metrics.csv with this test's own arithmetic (a family's noise types averaged within a fold and severity, then
    the folds), and compared with table4.csv and stats.csv; the calibration (calibration.csv, its contrasts in
    stats.csv, Table 5) from each fold's predictions.csv and the temperature in each checkpoint."""
    study, _, code = micro_study
    assert code == 0
    m = pd.read_csv(study / "metrics.csv")
    m["sev"] = m.severity.fillna(-1.0)
    cells = m.groupby(["model", "condition", "sev", "fold"]).ua.mean()  # noise types averaged
    ua = cells.groupby(["model", "condition", "sev"]).mean()
    t4 = pd.read_csv(study / "table4.csv")
    t4 = t4[t4.kind == "ua"].assign(sev=lambda d: d.severity.fillna(-1.0)).set_index(["model", "condition", "sev"])
    assert len(t4) == len(ua) and set(m.condition) - {"clean", "noise"}  # the micro study has unseen families
    for key, value in ua.items():
        assert t4.loc[key, "ua_mean"] == pytest.approx(value, abs=1e-12), key

    unseen = cells[~cells.index.get_level_values("condition").isin(["clean", "noise"])].unstack("model")
    stats = pd.read_csv(study / "stats.csv")
    stats = stats[stats.kind == "unseen"].set_index(["comparison", "noise"])
    for comparison, other in (("MLKD (teacher init) − CE (pretrained init)", "student_unsup"),
                              ("MLKD − baseline", "baseline")):
        d = 100 * (unseen["student_sup"] - unseen[other])
        pooled = d.groupby("fold").mean().mean()  # each fold over its (family, severity) cells, then the folds
        assert stats.loc[(comparison, "pooled unseen"), "mean"] == pytest.approx(pooled, abs=1e-9)
        for family, g in d.groupby("condition"):
            assert stats.loc[(comparison, f"pooled {family}"), "mean"] == pytest.approx(
                g.groupby("fold").mean().mean(), abs=1e-9), family
    _calibration_recomputed(study, m, pd.read_csv(study / "stats.csv"))


def _calibration_recomputed(study, metrics, stats):
    """Every trained model's temperature was fitted on its fold's validation split (its size recorded); the
    baseline's scores use the teacher's; calibration.csv's ECE of a model and condition is the test's own over the
    predictions; the pooled MLKD − CE-only contrast in ECE (points) is the test's own over calibration.csv."""
    import torch

    from mlkd_lib.config import load_config
    from mlkd_lib.data.prepare import load_fold
    cal = pd.read_csv(study / "calibration.csv")
    assert set(cal.model) == set(metrics.model) and set(cal.scaling) == {"raw", "scaled"}
    assert len(cal) == 2 * len(metrics)  # every row of metrics.csv, raw and scaled
    n_val = len(load_fold(load_config(study / "config.json"), "Ses01F").val)
    temps = {}
    for model in ("teacher", "student_sup", "student_unsup", "student_unsup_from_teacher"):
        t = torch.load(study / "folds" / "Ses01F" / model / "best.pt", weights_only=True)["temperature_scaling"]
        assert t["utterances"] == n_val and t["nll_scaled"] <= t["nll_raw"] and t["temperature"] > 0
        temps[model] = t["temperature"]
    temps["baseline"] = temps["teacher"]
    for model, t in temps.items():
        assert np.allclose(cal[(cal.model == model) & (cal.scaling == "scaled")].temperature, t)
        pred = pd.read_csv(study / "folds" / "Ses01F" / model / "predictions.csv")
        pred = pred[(pred.noise == "factory") & (pred.snr_db == 0.0)]
        e = np.exp(np.log(pred[["p_neu", "p_hap", "p_ang", "p_sad"]].to_numpy(float)) / t)
        p = e / e.sum(1, keepdims=True)
        conf, right = p.max(1), p.argmax(1) == pred.label.to_numpy()
        gap = 0.0
        for k in range(15):  # the bins (k/15, (k+1)/15]
            inside = (conf > k / 15) & (conf <= (k + 1) / 15)
            gap += abs(right[inside].sum() - conf[inside].sum())
        row = cal[(cal.model == model) & (cal.noise == "factory") & (cal.snr_db == 0.0) & (cal.scaling == "scaled")]
        assert row.ece.iloc[0] == pytest.approx(gap / len(conf), abs=1e-9), model
    scaled = cal[(cal.scaling == "scaled") & (cal.condition == "noise")]
    per = scaled.groupby(["model", "severity"]).ece.mean().groupby("model").mean()  # types, then severities
    row = stats[(stats.kind == "ECE (scaled)") & (stats.noise == "pooled")].set_index("comparison")
    assert row.loc["MLKD (teacher init) − CE (pretrained init)", "mean"] == pytest.approx(
        100 * (per["student_sup"] - per["student_unsup"]), abs=1e-9)
    assert set(stats.kind) >= {"ECE (scaled)", "AURC (scaled)"}
    table5 = pd.read_csv(study / "table5.csv")
    assert set(table5.part) == {"family", "contrast"}
