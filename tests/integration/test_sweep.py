"""`mlkd sweep`: the depth frontier of a finished study — students retrained at other depths, paired by fold,
timed and sized as exported, and a rerun that trains nothing."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlkd_lib.analysis.frontier import condition_kinds, fold_scores, frontier_contrasts
from mlkd_lib.arms import STUDENT_CONTROL, STUDENT_SUP, STUDENT_UNSUP, arm, retrained, students, study_arms
from mlkd_lib.config import make_config
from mlkd_lib.study.sweep import check_depths, parse_grid

pytestmark = pytest.mark.slow  # notebooks, Ray or a browser: make test, not make test-fast


def test_depth_is_an_ablation_key_of_every_student_arm():
    assert all("student_layers" in arm(m).keys for m in students())
    assert sorted(retrained({"student_layers"})) == sorted(students())
    assert retrained({"control_arm"}) == [STUDENT_CONTROL]  # the sweep leaves the control out


def test_the_depths_are_read_and_checked_against_the_teachers_layers():
    assert parse_grid({"student_layers": "4, 1,2,2"}) == {"student_layers": ["1", "2", "4"]}
    with pytest.raises(ValueError, match="a depth is a whole number"):
        parse_grid({"student_layers": "1,x"})
    assert check_depths([1, 2, 3, 4, 6, 12], 12) == [1, 2, 3, 4, 6, 12]
    with pytest.raises(ValueError, match=r"\[5\] do not divide the teacher's 12 layers: choose among \[1, 2, 3, 4, 6"):
        check_depths([1, 5], 12)


def test_pooled_noisy_ua_leaves_unseen_conditions_to_their_own_column():
    cfg = make_config("micro")  # babble and factory at 0 and 20 dB
    rows = [("clean", "clean", None, 0.5), ("noise", "babble", 0.0, 0.2), ("noise", "factory", 20.0, 0.4),
            ("reverb", "reverb", None, 0.9), ("unseen_noise", "music", 0.0, 0.7)]
    m = pd.DataFrame([dict(model="student_sup", condition=c, noise=n, snr_db=s, fold="f1", ua=u, wa=u, n=8)
                      for c, n, s, u in rows])
    assert list(condition_kinds(m, cfg)) == ["clean", "seen", "seen", "unseen", "unseen"]
    scores = fold_scores(m, "student_sup", cfg)
    assert scores.loc["f1"].tolist() == pytest.approx([50.0, 30.0, 80.0])
    assert np.isnan(fold_scores(m.drop(columns="condition").iloc[:3], "student_sup", cfg).loc["f1", "unseen"])


def test_the_contrast_is_paired_by_fold_with_a_ci_and_bh_over_depths():
    rng = np.random.default_rng(0)
    rows = []
    for depth, gain in ((1, 8.0), (2, 4.0), (4, 0.0)):
        for k in range(6):
            ce, fold = 50 + 5 * rng.standard_normal(), f"f{k}"
            rows += [dict(depth=depth, model=STUDENT_SUP, precision="fp32", fold=fold, noisy=ce + gain + rng.normal()),
                     dict(depth=depth, model=STUDENT_UNSUP, precision="fp32", fold=fold, noisy=ce)]
    table = frontier_contrasts(pd.DataFrame(rows), 2, study_arms(make_config("micro")))
    assert table.depth.tolist() == [1, 2, 4] and table.study_depth.tolist() == [False, True, False]
    assert table["mean"].iloc[0] > table["mean"].iloc[2] and (table.n_folds == 6).all()
    assert (table.ci_low <= table["mean"]).all() and (table["mean"] <= table.ci_high).all()
    assert (table.q_bh >= table.p).all() and table.p.iloc[0] < 0.05
    assert table.comparison.iloc[0] == "MLKD (teacher init) − CE (pretrained init)"


def _files(folder):
    return {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in folder.rglob("*") if p.is_file()}


def test_a_depth_sweep_of_the_micro_study_and_its_rerun(micro_study, tmp_path):
    from mlkd_lib.study.sweep import run_sweep
    study, _, code = micro_study
    assert code == 0
    before, out = _files(study), tmp_path / "sweep"
    t0 = time.time()
    assert run_sweep(study, out, {"student_layers": ["1", "4"]}, jobs=2, rounds=1, progress=False) == 0
    first_s = time.time() - t0
    assert _files(study) == before  # the sweep reads the shared study and never writes there

    # every depth × arm × precision, the teacher, and the study's own depth (2 of 4) reused as it is
    frontier = pd.read_csv(out / "frontier.csv")
    students = frontier[frontier.arm != "teacher"]
    assert sorted(zip(students.depth, students.arm, students.precision)) == sorted(
        (n, a, p) for n in (1, 2, 4) for a in ("MLKD", "CE-only") for p in ("fp32", "int8"))
    teacher = frontier[frontier.arm == "teacher"]
    assert len(teacher) == 1 and (teacher.depth.iloc[0], teacher.precision.iloc[0]) == (4, "fp32")
    assert (students.study_depth == (students.depth == 2)).all() and not teacher.study_depth.any()
    assert (out / "depth-2").resolve() == study.resolve()
    sweep = json.loads((out / "sweep.json").read_text())
    assert sweep["study_depth"] == 2 and sweep["teacher_layers"] == 4 and sweep["depths"]["2"]["reused_study"]

    # measured here: time, size and parameters, growing with depth
    assert (frontier.latency_ms_per_s > 0).all() and (frontier.file_mib > 0).all()
    assert (frontier.latency_threads == 1).all() and (frontier.latency_utterances > 0).all()
    for _, g in students.groupby(["arm", "precision"]):
        g = g.sort_values("depth")
        assert g.parameters.is_monotonic_increasing and g.parameters.is_unique
        assert g.file_mib.is_monotonic_increasing and g.file_mib.is_unique
    full = students[(students.depth == 4) & (students.precision == "fp32")]
    assert (full.parameters == teacher.parameters.iloc[0]).all()  # 4 of 4 layers: the teacher's architecture
    for row in frontier.itertuples():  # each size is its own export's
        name = row.model + ("_int8" if row.precision == "int8" else "") + ".onnx"
        where = "teacher" if row.arm == "teacher" else f"depth-{row.depth}"
        path = out / "exports" / where / row.latency_fold / name
        assert row.file_mib == pytest.approx(path.stat().st_size / 2**20)

    # fp32 UA: what each depth folder's metrics.csv says (one fold: no spread)
    for row in frontier[frontier.precision == "fp32"].itertuples():
        m = pd.read_csv(out / f"depth-{row.depth}" / "metrics.csv" if row.arm != "teacher" else study / "metrics.csv")
        m = m[m.model == row.model]
        clean = m[m.noise == "clean"]
        noisy = m[m.condition == "noise"] if "condition" in m else m[m.noise != "clean"]
        assert row.clean_ua_mean == pytest.approx(100 * clean.ua.mean())
        assert row.noisy_ua_mean == pytest.approx(100 * noisy.groupby("fold").ua.mean().mean())
        assert row.n_folds == 1 and np.isnan(row.noisy_ua_std)
    # int8 UA: the int8 export scored here on clean speech and factory 0 dB
    int8 = frontier[frontier.precision == "int8"]
    assert (int8.ua_source == "int8 ONNX").all() and int8.ua_conditions.str.contains("factory 0 dB").all()
    assert int8.clean_ua_mean.between(0, 100).all() and int8.noisy_ua_mean.between(0, 100).all()
    assert int8.fp32_noisy_ua_same_conditions_mean.notna().all()

    # the contrast at every depth, and the plot
    contrasts = pd.read_csv(out / "frontier_contrasts.csv")
    assert contrasts.depth.tolist() == [1, 2, 4]
    assert {"mean", "ci_low", "ci_high", "p", "q_bh", "n_folds", "mde_80"} <= set(contrasts.columns)
    fp32 = students[students.precision == "fp32"].pivot(index="depth", columns="arm", values="noisy_ua_mean")
    assert contrasts["mean"].tolist() == pytest.approx((fp32["MLKD"] - fp32["CE-only"]).tolist())
    assert (out / "frontier.png").stat().st_size > 10_000

    # a rerun trains nothing: every step of every depth is found done, every export reused
    for n in (1, 4):
        steps = json.loads((out / f"depth-{n}" / "run.json").read_text())["steps"]
        assert {name for name, s in steps.items() if s["status"] == "ok"} == {
            "Ses01F/student_sup", "Ses01F/student_unsup", "analysis"}, n  # data, teacher, baseline: the study's
    depths = {p: p.stat().st_mtime_ns for n in (1, 4) for p in (out / f"depth-{n}").rglob("*") if p.is_file()}
    exports = {p: p.stat().st_mtime_ns for p in (out / "exports").rglob("*.onnx")}
    t0 = time.time()
    assert run_sweep(study, out, {"student_layers": ["1", "4"]}, jobs=2, rounds=1, progress=False) == 0
    print(f"micro sweep: {first_s:.0f} s, its rerun {time.time() - t0:.0f} s")
    sweep = json.loads((out / "sweep.json").read_text())
    assert [sweep["depths"][n]["status"] for n in ("1", "4")] == ["complete (skipped)"] * 2
    assert {p: p.stat().st_mtime_ns for n in (1, 4) for p in (out / f"depth-{n}").rglob("*") if p.is_file()} == depths
    assert {p: p.stat().st_mtime_ns for p in (out / "exports").rglob("*.onnx")} == exports
    assert _files(study) == before


def test_a_grid_of_temperature_and_alpha_chosen_on_validation(micro_study, tmp_path):
    """docs/grid.md's commands as written, from a folder of the test's whose results/demo and results/paper are a
    copy of the micro study: four points, the study's (T = 7, α = 0.7) reused, the others retraining the MLKD student
    alone; each fold's choice is the argmax of validation UA read back from the points' own histories, and its
    reported test UA is that point's; the paper's 25-point grid is priced and nothing written; a rerun trains
    nothing. Before it, another setup has made its own data in the study's data folder: the sweep makes the study's
    own data there again and trains on it, never on the other setup's utterances."""
    import shutil
    import subprocess
    import sys

    from helpers.docs import run_block, shell_blocks

    from mlkd_lib.analysis.frontier import fold_scores
    from mlkd_lib.config import load_config, make_config, with_overrides
    from mlkd_lib.data.ownership import holds
    from mlkd_lib.data.prepare import data_identity, prepare_data, study_manifest
    from mlkd_lib.layout import StudyLayout
    from mlkd_lib.study.sweep import parse_grid, run_sweep
    shared, _, code = micro_study
    assert code == 0
    before, study, out = _files(shared), tmp_path / "study", tmp_path / "results" / "demo-grid"
    shutil.copytree(shared, study, symlinks=True)
    data = tmp_path / "data"
    shutil.copytree(load_config(StudyLayout(study).config).data_dir, data)
    own = with_overrides(load_config(StudyLayout(study).config), data_dir=str(data))
    own.save(StudyLayout(study).config)
    ids = set(study_manifest(own).utt_id)
    other = make_config("micro", data_dir=str(data), synth_seed=1, synth_per_class=1)  # another setup, same folder
    prepare_data(other, progress=False, study=tmp_path / "other")
    assert holds(data)["identity"] == data_identity(other) and set(study_manifest(own).utt_id) != ids
    out.parent.mkdir()
    for name in ("demo", "paper"):
        (tmp_path / "results" / name).symlink_to(study, target_is_directory=True)
    demo, paper = shell_blocks(Path(__file__).resolve().parents[2] / "docs" / "grid.md", "## Running a grid")
    ran = run_block(demo, tmp_path, {})[-1]
    assert ran.code == 0, ran.err[-3000:]
    assert "sweep: 4 points × 1 folds; 3 points to train, 3 student trainings" in ran.err
    assert holds(data)["identity"] == data_identity(own) and set(study_manifest(own).utt_id) == ids
    for point in out.glob("temperature=*"):
        predictions = pd.read_csv(point / "folds" / "Ses01F" / "student_sup" / "predictions.csv")
        assert set(predictions.utt_id) <= ids  # the study's own utterances, never the other setup's
    priced = run_block(paper, tmp_path, {})[-1]
    assert priced.code == 0 and "sweep: 25 points × 1 folds; 24 points to train, 24 student trainings" in priced.err
    assert not (tmp_path / "results" / "paper-grid").exists()
    assert _files(shared) == before

    grid = pd.read_csv(out / "grid.csv")
    assert len(grid) == 4 and set(grid.fold) == {"Ses01F"}
    assert sorted(zip(grid.temperature, grid.alpha)) == [(1, 0.3), (1, 0.7), (7, 0.3), (7, 0.7)]
    base = load_config(StudyLayout(study).config).to_json()
    for row in grid.itertuples():
        folder = out / f"temperature={row.temperature}_alpha={row.alpha}"
        if row.own:
            assert (row.temperature, row.alpha) == (7, 0.7) and folder.resolve() == study.resolve()
            continue
        cfg = load_config(StudyLayout(folder).config).to_json()
        differ = {k for k, v in (("temperature", row.temperature), ("alpha", row.alpha)) if v != base[k]}
        assert {k for k in base if cfg[k] != base[k] and k not in ("folds", "preset")} == differ  # its keys alone
        fold = folder / "folds" / "Ses01F"
        assert not (fold / "student_sup").is_symlink()  # retrained; every other model linked from the study
        assert all((fold / m).is_symlink() for m in ("teacher", "baseline", "student_unsup"))
        # the point's own files: validation UA of the kept epoch, test UA from its metrics
        history = pd.read_csv(fold / "student_sup" / "history.csv")
        assert row.val_ua == pytest.approx(100 * history.val_ua.max())
        metrics = pd.read_csv(fold / "student_sup" / "metrics.csv")
        scores = fold_scores(metrics, "student_sup", load_config(StudyLayout(folder).config))
        assert row.test_noisy_ua == pytest.approx(scores.loc["Ses01F", "noisy"])
    best = grid.sort_values(["val_ua", "own"], ascending=[False, False]).iloc[0]
    assert grid.chosen.sum() == 1 and grid[grid.chosen].point.item() == best.point

    summary = pd.read_csv(out / "grid_summary.csv").set_index("row")
    assert summary.loc["validation-chosen", "mean"] == pytest.approx(best.test_noisy_ua)
    optimistic = grid.loc[grid.test_noisy_ua.idxmax()]
    assert summary.loc["test-chosen (optimistic)", "point"] == optimistic.point
    inflation = summary.loc["inflation: test-chosen − validation-chosen", "mean"]
    assert inflation == pytest.approx(optimistic.test_noisy_ua - best.test_noisy_ua) and inflation >= 0
    readme = (out / "README.md").read_text()
    assert "chosen on validation, reported on test" in readme and "test-chosen (optimistic)" in readme
    assert (out / "grid.png").stat().st_size > 10_000

    import papermill  # 06 shows the grid: its summary as markdown and the plot

    from mlkd_lib.paths import NOTEBOOKS
    shown = papermill.execute_notebook(str(NOTEBOOKS / "06_sweep.ipynb"), str(tmp_path / "06.ipynb"),
                                       parameters={"sweep_dir": str(out)}, progress_bar=False)
    text = json.dumps(shown["cells"])
    assert "chosen on validation, reported on test" in text and "image/png" in text and "no frontier" in text

    points = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and "folds" in p.parts}
    made = _files(data)
    assert run_sweep(study, out, parse_grid({"temperature": "1,7", "alpha": "0.3,0.7"}), progress=False) == 0
    assert _files(data) == made  # its data is its own now: nothing made again
    status = json.loads((out / "sweep.json").read_text())["points"]
    assert sorted(s["status"] for s in status.values()) == ["complete (skipped)"] * 3 + ["the study's own setting"]
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and "folds" in p.parts} == points

    command = [sys.executable, "-m", "mlkd_lib", "sweep", "--study", str(study), "--out", str(out)]
    refused = subprocess.run([*command, "--set", "seed=1,2"], capture_output=True, text=True, cwd=tmp_path)
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1 and "seed" in refused.stderr
