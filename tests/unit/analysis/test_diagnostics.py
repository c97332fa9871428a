"""What a study's headline rests on, from step folders with known contents: the layer distances gathered, the
selected against the last epoch, how far validation UA moves from epoch to epoch, and whether L_ML had flattened."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mlkd_lib.analysis.diagnostics import (
    collect_representation,
    multilevel_convergence,
    selection_diagnostic,
    training_curves,
    validation_movement,
)


def _metrics(model, fold, clean, noisy):
    """Clean UA and the UA of two noisy conditions (and a test-only one that is no part of the paper's question)."""
    return pd.DataFrame([dict(model=model, condition=c, severity=s, noise=n, snr_db=s, fold=fold, ua=u, wa=u, n=10)
                         for c, n, s, u in (("clean", "clean", None, clean), ("noise", "babble", 0.0, noisy[0]),
                                            ("noise", "factory", 0.0, noisy[1]), ("reverb", "reverb", 0.9, 0.05))])


@pytest.fixture
def study(tmp_path):
    folds = tmp_path / "folds"
    for fold, shift in (("S1", 0.0), ("S2", 0.1)):
        sup = folds / fold / "student_sup"
        sup.mkdir(parents=True)
        _metrics("student_sup", fold, 0.8, (0.5 + shift, 0.7 + shift)).to_csv(sup / "metrics.csv", index=False)
        _metrics("student_sup", fold, 0.9, (0.4, 0.6)).to_csv(sup / "metrics_last.csv", index=False)
        (sup / "selection.json").write_text(json.dumps({"selected_epoch": 2, "last_epoch": 4}))
        pd.DataFrame({"epoch": [3, 1, 2, 4], "val_ua": [0.55, 0.5, 0.6, 0.75 + shift], "ml": [2.5, 4.0, 3.0, 2.4],
                      "val_ml": [3.0, 5.0, 3.5, 3.0]}).to_csv(sup / "history.csv", index=False)
        pd.DataFrame([dict(model="student_sup", fold=fold, layer=k, teacher_layer=2 * k, condition="noise",
                           severity=0.0, noise="babble", snr_db=0.0, value=0.1 * k + shift) for k in (2, 1)]).to_csv(
            sup / "representation.csv", index=False)
        teacher = folds / fold / "teacher"  # no metrics_last.csv: selection kept the last epoch
        teacher.mkdir()
        _metrics("teacher", fold, 0.9, (0.3, 0.5)).to_csv(teacher / "metrics.csv", index=False)
        (teacher / "selection.json").write_text(json.dumps({"selected_epoch": 3, "last_epoch": 3}))
        pd.DataFrame({"epoch": [1, 2, 3], "val_ua": [0.4, 0.7, 0.6]}).to_csv(teacher / "history.csv", index=False)
        baseline = folds / fold / "baseline"  # trains nothing: no selection to look at
        baseline.mkdir()
        _metrics("baseline", fold, 0.9, (0.3, 0.5)).to_csv(baseline / "metrics.csv", index=False)
        (baseline / "selection.json").write_text("{}")
    return tmp_path


def test_the_selected_epoch_against_the_last_one(study):
    d = selection_diagnostic(study).set_index(["model", "fold"])
    assert sorted(d.index) == [("student_sup", "S1"), ("student_sup", "S2"), ("teacher", "S1"), ("teacher", "S2")]
    row = d.loc[("student_sup", "S2")]  # noisy: (0.6 + 0.8) / 2 selected, (0.4 + 0.6) / 2 last (reverb not counted)
    assert (row.noisy_ua_selected, row.noisy_ua_last) == pytest.approx((70.0, 50.0))
    assert (row.clean_ua_selected, row.clean_ua_last, row.noisy_ua_last_minus_selected) == pytest.approx(
        (80.0, 90.0, -20.0))
    assert (row.selected_epoch, row.last_epoch) == (2, 4)
    teacher = d.loc[("teacher", "S1")]
    assert teacher.noisy_ua_last == teacher.noisy_ua_selected == pytest.approx(40.0)
    assert pd.read_csv(study / "selection.csv").shape == (4, d.shape[1] + 2)


def test_validation_moves_by_the_epoch_to_epoch_changes_within_each_fold(study):
    curves = training_curves(study)
    assert set(curves.model) == {"student_sup", "teacher"} and list(curves.index) == list(range(2 * (4 + 3)))
    moves = validation_movement(curves).set_index("model")
    # student, by epoch: S1 0.5, 0.6, 0.55, 0.75 (changes 0.1, 0.05, 0.2); S2 the same with 0.85 last (0.3)
    assert moves.loc["student_sup", "mean_abs_change"] == pytest.approx(100 * (0.1 + 0.05 + 0.2 + 0.1 + 0.05 + 0.3) / 6)
    assert moves.loc["student_sup", "max_abs_change"] == pytest.approx(30.0)
    assert moves.loc["teacher", "mean_abs_change"] == pytest.approx(100 * 0.2)  # 0.3, 0.1 in each fold


def test_the_multilevel_loss_late_share_of_its_fall(study):
    conv = multilevel_convergence(training_curves(study)).set_index("model")
    assert list(conv.index) == ["student_sup"]  # the teacher has no L_ML
    row = conv.loc["student_sup"]
    # by epoch (mean over folds): ml 4, 3, 2.5, 2.4; the last quarter of four epochs is two: (2.5 − 2.4) / (4 − 2.4)
    assert (row.epochs, row.ml_first, row.ml_last) == (4, 4.0, 2.4)
    assert row.ml_late_share == pytest.approx(0.1 / 1.6)
    assert row.val_ml_late_share == pytest.approx(0.0)  # val: 5, 3.5, 3, 3
    flat = multilevel_convergence(pd.DataFrame({"model": "m", "fold": "S1", "epoch": [1, 2], "ml": [1.0, 1.0]}))
    assert np.isnan(flat.ml_late_share.iloc[0])  # no fall at all: no share
    assert multilevel_convergence(pd.DataFrame({"model": ["m"], "val_ua": [0.5]})).empty


def test_the_layer_distances_are_gathered_sorted(study):
    rep = collect_representation(study)
    assert list(zip(rep.fold, rep.layer)) == [("S1", 1), ("S1", 2), ("S2", 1), ("S2", 2)] and list(rep.index) == [
        0, 1, 2, 3]
    assert rep.value.tolist() == pytest.approx([0.1, 0.2, 0.2, 0.3])
    assert pd.read_csv(study / "representation.csv").value.tolist() == pytest.approx(rep.value.tolist())
    empty = collect_representation(study / "nothing")
    assert empty.empty and "teacher_layer" in empty.columns


def test_steps_without_what_a_diagnostic_reads_are_passed_over(study):
    """A trained model without selection.json (still running), the baseline with a history of its own: not read;
    a model of one epoch moves nothing; a study without histories has no curves."""
    sup = study / "folds" / "S3" / "student_sup"
    sup.mkdir(parents=True)
    _metrics("student_sup", "S3", 0.8, (0.5, 0.7)).to_csv(sup / "metrics.csv", index=False)
    pd.DataFrame({"epoch": [1], "val_ua": [0.5]}).to_csv(sup / "history.csv", index=False)
    pd.DataFrame({"epoch": [1], "val_ua": [0.5]}).to_csv(study / "folds" / "S1" / "baseline" / "history.csv",
                                                         index=False)
    assert sorted(set(selection_diagnostic(study).fold)) == ["S1", "S2"]
    curves = training_curves(study)
    assert "baseline" not in set(curves.model) and len(curves) == 2 * (4 + 3) + 1
    one = validation_movement(curves[curves.fold == "S3"]).set_index("model")
    assert np.isnan(one.loc["student_sup", "mean_abs_change"]) and np.isnan(one.loc["student_sup", "max_abs_change"])
    assert training_curves(study / "nothing").empty
    collect_representation(study)
    assert list(pd.read_csv(study / "representation.csv").columns) == [
        "model", "fold", "layer", "teacher_layer", "condition", "severity", "noise", "snr_db", "value"]


def test_the_late_share_over_the_last_quarter_of_twelve_epochs():
    """Twelve epochs: the last quarter is three. L_ML by epoch (the mean of two folds 2 apart): 12, 11, …, 1; on
    validation the same, but one fold's epoch 10 is missing: the other's stands (not the epoch dropped)."""
    epochs = np.arange(1, 13)
    curves = pd.concat([pd.DataFrame({"model": "student_sup", "fold": f, "epoch": epochs, "ml": 13.0 - epochs + d,
                                      "val_ml": 13.0 - epochs + d}) for f, d in (("S1", 1.0), ("S2", -1.0))])
    curves.loc[(curves.fold == "S2") & (curves.epoch == 10), "val_ml"] = np.nan
    row = multilevel_convergence(curves).iloc[0]
    # ml: 12 … 1, its fall 11, from epoch 10 (3) to 12 (1): 2 / 11
    assert (row.ml_first, row.ml_last, row.ml_late_share) == pytest.approx((12.0, 1.0, 2 / 11))
    # val_ml at epoch 10: S1's 4 alone; 4 − 1 = 3 of 11
    assert row.val_ml_late_share == pytest.approx(3 / 11)
    back = pd.DataFrame({"model": "m", "fold": "S1", "epoch": [1, 2, 3, 4], "ml": [1.0, 2.0, 1.5, 1.0]})
    assert np.isnan(multilevel_convergence(back).ml_late_share.iloc[0])  # back where it began: no fall to share
