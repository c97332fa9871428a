"""Calibration and selective prediction on cases worked by hand: ECE, Brier, NLL, temperature scaling, the
risk–coverage curve and its area, UA at 80 % coverage, and the contrasts' Benjamini–Hochberg within each metric."""

from __future__ import annotations

import math
import random

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from mlkd_lib.analysis.calibration import (
    AURC_KIND,
    ECE_KIND,
    KEYS,
    SCORES,
    TABLE5_CAPTION,
    aurc,
    bin_of,
    brier_score,
    calibration_differences,
    calibration_pairs,
    calibration_table,
    contrast_cells,
    family_scores,
    negative_log_likelihood,
    reliability,
    rescaled,
    risk_coverage,
    scores,
    study_temperatures,
    table5,
    temperature_source,
    top_label_ece,
    ua_at_coverage,
    verdict,
    with_scaled,
    write_table5,
)
from mlkd_lib.analysis.tables import SYNTHETIC_NOTE
from mlkd_lib.method.temperature import checked, fit_temperature, logit_nll, temperature_scaling

# five utterances, three classes: (probabilities, true class)
TABLE = [([0.70, 0.20, 0.10], 0),  # top 0.70, right
         ([0.20, 0.72, 0.08], 0),  # top 0.72, wrong
         ([0.10, 0.30, 0.60], 2),  # top 0.60 = 9/15 exactly: an edge, which belongs to the bin below
         ([0.05, 0.90, 0.05], 1),  # top 0.90, right
         ([0.55, 0.25, 0.20], 1)]  # top 0.55, wrong
P, Y = np.array([p for p, _ in TABLE]), np.array([y for _, y in TABLE])


def test_top_label_ece_by_hand():
    # 15 bins of width 1/15: 0.70 and 0.72 share (10/15, 11/15]: accuracy 1/2, confidence 0.71, gap 0.21;
    # 0.55 and 0.60 share (8/15, 9/15]: accuracy 1/2, confidence 0.575, gap 0.075; 0.90 alone: gap 0.10
    expected = 2 / 5 * 0.21 + 2 / 5 * 0.075 + 1 / 5 * 0.10
    assert top_label_ece(P, Y) == pytest.approx(expected, abs=1e-12)
    assert top_label_ece(P, Y) == pytest.approx(0.134, abs=1e-12)
    # one bin: |mean accuracy − mean confidence| = |3/5 − 0.694|
    assert top_label_ece(P, Y, bins=1) == pytest.approx(abs(3 / 5 - (0.70 + 0.72 + 0.60 + 0.90 + 0.55) / 5))


def test_brier_and_nll_by_hand():
    per_utterance = [0.3**2 + 0.2**2 + 0.1**2, 0.8**2 + 0.72**2 + 0.08**2, 0.1**2 + 0.3**2 + 0.4**2,
                     0.05**2 + 0.1**2 + 0.05**2, 0.55**2 + 0.75**2 + 0.2**2]
    assert brier_score(P, Y) == pytest.approx(sum(per_utterance) / 5, abs=1e-12)
    assert brier_score(P, Y) == pytest.approx(2.4848 / 5, abs=1e-12)
    nll = -(math.log(0.70) + math.log(0.20) + math.log(0.60) + math.log(0.90) + math.log(0.25)) / 5
    assert negative_log_likelihood(P, Y) == pytest.approx(nll, abs=1e-12)


def test_rescaled_probabilities_are_those_of_the_logits_over_t():
    z = [2.0, 1.0, 0.0]
    p = np.array([[math.exp(v) for v in z]]) / sum(math.exp(v) for v in z)
    e = [math.exp(v / 2) for v in z]  # softmax(z / 2), by hand
    np.testing.assert_allclose(rescaled(p, 2.0)[0], [v / sum(e) for v in e], atol=1e-12)
    np.testing.assert_allclose(rescaled(p, 1.0), p, atol=1e-12)


def test_the_fit_recovers_the_temperature_the_logits_were_scaled_by():
    """Labels drawn from softmax(z): z is calibrated, so of the logits 2.5 z the NLL-optimal temperature is 2.5."""
    rng = np.random.default_rng(0)
    z = rng.normal(0.0, 2.0, (100_000, 4))
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    y = (rng.random(len(z))[:, None] > p.cumsum(1)).sum(1)
    assert fit_temperature(2.5 * z, y) == pytest.approx(2.5, abs=0.05)
    assert fit_temperature(0.5 * z, y) == pytest.approx(0.5, abs=0.01)


def test_fitting_a_temperature_draws_no_random_number():
    torch.manual_seed(3)
    np.random.seed(3)
    random.seed(3)
    states = torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()
    fit_temperature(np.array([[2.0, 0.0], [0.0, 1.0], [1.0, 0.5]]), np.array([0, 1, 1]))
    assert torch.equal(torch.get_rng_state(), states[0])
    assert np.array_equal(np.random.get_state()[1], states[1]) and random.getstate() == states[2]


def test_aurc_by_hand_ties_counted_as_every_order_would():
    # most confident first: right, wrong, right, wrong → risk 0/1, 1/2, 1/3, 2/4 at coverage 1/4 … 1
    coverage, risk = risk_coverage([0.7, 0.9, 0.6, 0.8], [1, 1, 0, 0])
    np.testing.assert_allclose(coverage, [0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(risk, [0.0, 0.5, 1 / 3, 0.5])
    assert aurc([0.7, 0.9, 0.6, 0.8], [1, 1, 0, 0]) == pytest.approx((0 + 1 / 2 + 1 / 3 + 2 / 4) / 4)
    # 0.8 twice, one right and one wrong: at k = 2 half an error is expected, whichever comes first in the table
    for correct in ([1, 1, 0, 0], [1, 0, 1, 0]):
        _, risk = risk_coverage([0.9, 0.8, 0.8, 0.6], correct)
        np.testing.assert_allclose(risk, [0.0, 0.25, 1 / 3, 0.5])
    assert aurc([0.9, 0.8, 0.8, 0.6], [1, 0, 1, 0]) == pytest.approx((0 + 0.25 + 1 / 3 + 0.5) / 4)
    # the two most confident tied, one wrong: half an error expected at k = 1 already
    np.testing.assert_allclose(risk_coverage([0.9, 0.9, 0.5], [0, 1, 1])[1], [0.5, 0.5, 1 / 3])


def test_ua_at_80_percent_coverage_by_hand():
    # ⌈0.8 · 5⌉ = 4 answered: the least confident (0.55, wrong) abstains; recall class 0: 1/2, class 1: 1, class 2: 1
    assert ua_at_coverage(P, Y) == pytest.approx((0.5 + 1 + 1) / 3)
    assert ua_at_coverage(P, Y, coverage=0.7) == pytest.approx((0.5 + 1 + 1) / 3)  # ⌈3.5⌉ = 4 answered too
    assert ua_at_coverage(P, Y, coverage=1.0) == pytest.approx((1 / 2 + 1 / 2 + 1) / 3)


def test_ua_at_coverage_answers_tied_utterances_in_the_given_order():
    """20 utterances, 16 answered: twelve at 0.9 (class 0, right), then 4 of the eight at 0.6 — the first four in
    the table (class 1, right), not the later four (class 0, called 1): UA 1. (A sort that is not stable picks
    others from the tie once the table is longer than its insertion-sort size.)"""
    seq = "ARRARARWAAAAAAWAWWAA"  # A: 0.9 right; R: 0.6 right; W: 0.6 wrong
    p = np.array([[0.9, 0.1] if c == "A" else [0.4, 0.6] for c in seq])
    y = np.array([1 if c == "R" else 0 for c in seq])
    assert ua_at_coverage(p, y) == 1.0


def _bh(ps):
    """Benjamini–Hochberg by the textbook: q_(i) = min over j ≥ i of p_(j) · m / j."""
    order = np.argsort(ps)
    m, q, running = len(ps), np.empty(len(ps)), 1.0
    for rank in range(m, 0, -1):
        running = min(running, ps[order[rank - 1]] * m / rank)
        q[order[rank - 1]] = running
    return q


def test_the_contrasts_are_paired_over_folds_with_bh_within_each_metric():
    """MLKD's ECE is the CE-only student's minus 2 points under the trained noise and the codec, minus 0.2 under
    reverberation, the same on clean speech (+ a fold's jitter): the pooled contrast over the trained noise is the
    folds' mean, every fold below zero; the per-family cells are corrected among themselves, per comparison and
    metric."""
    rng = np.random.default_rng(0)
    rows = []
    conditions = [("clean", None, "clean", None), ("noise", 0.0, "babble", 0.0), ("noise", 0.0, "factory", 0.0),
                  ("noise", 10.0, "babble", 10.0), ("reverb", 0.3, "reverb", None), ("reverb", 0.9, "reverb", None),
                  ("codec", 16.0, "codec", None)]
    for fold in [f"S{i}" for i in range(8)]:
        for condition, severity, noise, snr in conditions:
            base, jitter = rng.uniform(0.05, 0.2), rng.normal(0, 0.004)
            effect = {"clean": 0.0, "reverb": -0.002}.get(condition, -0.02)
            for model, ece in (("student_unsup", base), ("student_sup", base + effect + jitter),
                               ("student_unsup_from_teacher", base + rng.normal(0, 0.01)), ("teacher", base)):
                rows.append(dict(model=model, condition=condition, severity=severity, noise=noise, snr_db=snr,
                                 fold=fold, scaling="scaled", ece=ece, aurc=0.3, nll=1.0, brier=0.5, ua_at_80=0.5))
    cal = pd.DataFrame(rows)
    arms = {"student_unsup": ("CE", "pretrained"), "student_sup": ("MLKD", "teacher"),
            "student_unsup_from_teacher": ("CE", "teacher")}
    d = calibration_differences(cal, arms).set_index(["comparison", "kind", "noise"])
    paper = "MLKD (teacher init) − CE (pretrained init)"
    sup = cal[cal.model == "student_sup"].set_index(["fold", "condition", "noise", "severity"]).ece
    unsup = cal[cal.model == "student_unsup"].set_index(["fold", "condition", "noise", "severity"]).ece
    diff = (100 * (sup - unsup)).reset_index()
    noisy = diff[diff.condition == "noise"]
    # a fold's trained noise: its types averaged within a severity, then the severities
    pooled = noisy.groupby(["fold", "severity"]).ece.mean().groupby("fold").mean().mean()
    assert d.loc[(paper, ECE_KIND, "pooled"), "mean"] == pytest.approx(pooled, abs=1e-9)
    assert d.loc[(paper, ECE_KIND, "pooled"), "p"] == pytest.approx(2 / 2**8)  # every fold below: exact Wilcoxon
    assert d.loc[(paper, AURC_KIND, "pooled"), "mean"] == 0.0
    cells = d.loc[paper].loc[ECE_KIND].drop(["pooled", "pooled unseen"])
    assert sorted(cells.index) == ["clean", "pooled codec", "pooled reverb"]
    assert cells.p.nunique() == 3  # three different p, so that the correction has something to do
    np.testing.assert_allclose(cells.q_bh, _bh(cells.p.to_numpy()), atol=1e-12)
    assert {"MLKD − teacher", "MLKD (teacher init) − CE (teacher init)"} <= set(d.index.get_level_values(0))
    assert set(d.reset_index().columns) == {"comparison", "kind", "noise", "snr_db", "n_folds", "mean", "ci_low",
                                            "ci_high", "p", "sd", "mde_80", "q_bh", "significant"}
    assert d.snr_db.isna().all()
    # pooled unseen: every unseen family's severities (reverb 0.3, 0.9, codec 16) averaged within a fold
    unseen = diff[diff.condition.isin(["reverb", "codec"])].groupby("fold").ece.mean()
    assert d.loc[(paper, ECE_KIND, "pooled unseen"), "mean"] == pytest.approx(unseen.mean(), abs=1e-9)
    # the pooled rows significant by their p, the families' by their q
    rows = d.reset_index()
    pooled_rows = rows.noise.isin(["pooled", "pooled unseen"])
    assert (rows.significant[pooled_rows] == (rows.p[pooled_rows] < 0.05)).all()
    assert (rows.significant[~pooled_rows] == (rows.q_bh[~pooled_rows] < 0.05)).all()
    assert rows.significant.any() and not rows.significant.all()
    assert d.loc[(paper, ECE_KIND, "pooled"), "significant"] and d.loc[(paper, ECE_KIND, "pooled codec"), "significant"]
    assert not d.loc[(paper, ECE_KIND, "clean"), "significant"]


def _contrast_cal(conditions, ece):
    """The scaled rows of calibration.csv: student_sup and the teacher on six folds, ECE ``ece(model, fold, i)``
    in the i-th condition, AURC 0.3."""
    rows = []
    for f, fold in enumerate(["S1", "S2", "S3", "S4", "S5", "S6"]):
        for i, (condition, severity, noise, snr) in enumerate(conditions):
            for model in ("student_sup", "teacher"):
                rows.append(dict(model=model, condition=condition, severity=severity, noise=noise, snr_db=snr,
                                 fold=fold, scaling="scaled", ece=ece(model, f, i), aurc=0.3, nll=1.0, brier=0.5,
                                 ua_at_80=0.5))
    return pd.DataFrame(rows)


ARMS2 = {"student_unsup": ("CE", "pretrained"), "student_sup": ("MLKD", "teacher")}
CLEAN_ROW, BABBLE_ROW, CODEC_ROW = ("clean", None, "clean", None), ("noise", 0.0, "babble", 0.0), \
    ("codec", 16.0, "codec", None)


@pytest.mark.parametrize("conditions, where", [
    ([CLEAN_ROW, BABBLE_ROW], ["pooled", "clean"]),  # no unseen family: no pooled unseen row
    ([CLEAN_ROW, CODEC_ROW], ["pooled unseen", "clean", "pooled codec"]),  # no trained noise: no pooled row
])
def test_calibration_contrasts_of_the_models_and_conditions_a_study_has(conditions, where):
    """Only MLKD and the teacher scored (the CE-only arm in ``arms`` but not trained): MLKD − teacher alone,
    pooled where the study has the conditions. MLKD's ECE k/1024 below the teacher's on the folds (exact in
    binary, so that the bootstrap below resamples the very numbers the contrast does; k far apart, so that another
    seed draws another CI); the CI: BCa over the folds' differences, drawn with the seed given (0 unless told)."""
    k = np.array([1, 3, 8, 21, 55, 144])
    cal = _contrast_cal(conditions, lambda model, f, i: 0.75 - (k[f] / 1024 if model == "student_sup" else 0))
    d = calibration_differences(cal, ARMS2)
    assert list(d.comparison.unique()) == ["MLKD − teacher"]
    assert list(zip(d.kind, d.noise)) == [(ECE_KIND, w) for w in where] + [(AURC_KIND, w) for w in where]
    folds = -100 * k / 1024
    assert d[d.kind == ECE_KIND]["mean"].tolist() == [folds.mean()] * len(where)
    assert d[d.kind == AURC_KIND]["mean"].tolist() == [0.0] * len(where)
    for seed, table in ((0, d), (7, calibration_differences(cal, ARMS2, seed=7))):
        ci = stats.bootstrap((folds,), np.mean, confidence_level=0.95, n_resamples=10_000, method="BCa",
                             random_state=np.random.default_rng(seed)).confidence_interval
        ece = table[table.kind == ECE_KIND]
        np.testing.assert_array_equal(ece.ci_low, [ci.low] * len(where))
        np.testing.assert_array_equal(ece.ci_high, [ci.high] * len(where))


def test_a_calibration_contrast_at_alpha_exactly_is_not_significant(monkeypatch):
    from mlkd_lib.analysis import stats as study_stats
    cal = _contrast_cal([CLEAN_ROW, BABBLE_ROW, CODEC_ROW], lambda model, f, i: 0.1 * f + (model == "teacher"))
    for at, significant in ((0.05, False), (0.0499, True)):
        monkeypatch.setattr(study_stats, "paired_test", lambda d, seed=0, at=at: {
            "n_folds": len(d), "mean": float(np.mean(d)), "ci_low": np.nan, "ci_high": np.nan, "p": at, "sd": np.nan,
            "mde_80": np.nan})
        monkeypatch.setattr(study_stats, "bh_q", lambda ps, at=at: [at] * len(ps))
        d = calibration_differences(cal, ARMS2)
        assert len(d) == 8 and (d.significant == significant).all()


# ------------------------------------------------------------------ the bins, the scores of one set, the temperature

def test_reliability_bins_by_hand():
    # (8/15, 9/15]: 0.55 wrong, 0.60 right; (10/15, 11/15]: 0.70 right, 0.72 wrong; (13/15, 14/15]: 0.90 right
    n, confidence, accuracy = reliability(P.max(1), P.argmax(1) == Y)
    np.testing.assert_array_equal(n, [2, 2, 1])
    np.testing.assert_allclose(confidence, [0.575, 0.71, 0.90], atol=1e-12)
    np.testing.assert_allclose(accuracy, [0.5, 0.5, 1.0], atol=1e-12)
    n, confidence, accuracy = reliability(P.max(1), P.argmax(1) == Y, bins=2)  # (0, 0.5], (0.5, 1]: all above
    assert list(n) == [5] and accuracy[0] == pytest.approx(3 / 5) and confidence[0] == pytest.approx(3.47 / 5)


def test_bin_of_closes_each_bin_on_the_right():
    np.testing.assert_array_equal(bin_of(np.array([0.01, 1 / 15, 0.07, 2 / 15, 0.6, 0.61, 14 / 15, 1.0])),
                                  [0, 0, 1, 1, 8, 9, 13, 14])
    np.testing.assert_array_equal(bin_of(np.array([0.3, 0.5, 0.51, 1.0]), bins=2), [0, 0, 1, 1])


def test_scores_of_one_set_by_hand():
    # most confident first: 0.90 right, 0.72 wrong, 0.70 right, 0.60 right, 0.55 wrong
    aurc_hand = (0 + 1 / 2 + 1 / 3 + 1 / 4 + 2 / 5) / 5
    nll = -(math.log(0.70) + math.log(0.20) + math.log(0.60) + math.log(0.90) + math.log(0.25)) / 5
    s = scores(P, Y)
    assert list(s) == list(SCORES)
    assert s == pytest.approx({"ece": 0.134, "nll": nll, "brier": 2.4848 / 5, "aurc": aurc_hand,
                               "ua_at_80": (0.5 + 1 + 1) / 3}, abs=1e-12)


def test_checked_refuses_what_is_not_one_label_a_row():
    for values, labels in (([0.2, 0.8], [1]), ([[0.2, 0.8]], [1, 0]), (np.zeros((0, 3)), []),
                           (np.zeros((1, 2, 2)), [0])):
        with pytest.raises(ValueError, match=r"expected an \(utterances × classes\) table and one label each"):
            checked(values, labels)
    p, y = checked([[1, 2]], [1.0])
    assert p.dtype == float and y.dtype.kind == "i"


def test_logit_nll_by_hand():
    z, y = [[2.0, 0.0], [0.0, 1.0]], [0, 0]
    assert logit_nll(z, y) == pytest.approx((math.log(1 + math.exp(-2)) + math.log(1 + math.exp(1))) / 2, abs=1e-12)
    assert logit_nll(z, y, 2.0) == pytest.approx((math.log(1 + math.exp(-1)) + math.log(1 + math.exp(0.5))) / 2,
                                                 abs=1e-12)


def test_the_fitted_temperature_is_the_analytic_optimum_and_the_record_says_what_it_did():
    """Two classes, every logit gap d = 2, seven of ten right: the NLL is least where σ(d / T) = 7/10, at
    T = 2 / ln(7/3); there the NLL is the entropy of (7/10, 3/10). Found to 1e-7 (scipy's default tolerance
    stops 1.5e-6 away)."""
    z, y = np.tile([2.0, 0.0], (10, 1)), np.array([0] * 7 + [1] * 3)
    assert fit_temperature(z, y) == pytest.approx(2 / math.log(7 / 3), rel=1e-7)
    record = temperature_scaling(z, y)
    sigma = 1 / (1 + math.exp(-2))
    assert record.pop("fitted_on") == "the fold's validation split, clean speech"
    assert record == pytest.approx({
        "temperature": 2 / math.log(7 / 3), "utterances": 10,
        "nll_raw": -(7 * math.log(sigma) + 3 * math.log(1 - sigma)) / 10,
        "nll_scaled": -(0.7 * math.log(0.7) + 0.3 * math.log(0.3))}, rel=1e-7)


def test_a_temperature_is_searched_between_its_bounds():
    # every utterance right: the sharper the better, down to the lower bound; every one wrong: up to the upper one
    assert fit_temperature([[1.0, 0.0], [0.0, 1.0]], [0, 1]) == pytest.approx(0.05, rel=1e-4)
    assert fit_temperature([[1.0, 0.0], [0.0, 1.0]], [1, 0]) == pytest.approx(20.0, rel=1e-4)


# ------------------------------------------------------------------ a study's calibration

def _powered(p, temperature):
    """softmax(ln p / T), written as p^(1/T) normalised."""
    q = np.asarray(p, dtype=float) ** (1 / temperature)
    return q / q.sum(1, keepdims=True)


def _by_definition(p, y):
    """Every score by its textbook definition, loop by loop (distinct confidences: no ties to spread)."""
    p, y = np.asarray(p, dtype=float), np.asarray(y)
    conf, right, n = p.max(1), (p.argmax(1) == y).astype(float), len(y)
    ece = 0.0
    for b in range(15):
        inside = (conf > b / 15) & (conf <= (b + 1) / 15)
        if inside.any():
            ece += inside.sum() / n * abs(right[inside].mean() - conf[inside].mean())
    order = np.argsort(-conf)
    risk = [(1 - right[order[:k]]).sum() / k for k in range(1, n + 1)]
    kept = order[:math.ceil(0.8 * n)]
    recalls = [(p[kept].argmax(1)[y[kept] == c] == c).mean() for c in sorted(set(y[kept]))]
    return {"ece": ece, "nll": -np.mean(np.log(p[np.arange(n), y])),
            "brier": np.mean(((p - np.eye(p.shape[1])[y]) ** 2).sum(1)), "aurc": np.mean(risk),
            "ua_at_80": np.mean(recalls)}


def test_calibration_pairs_are_mlkd_against_each_arm_the_study_has_and_the_teacher():
    arms = {"student_unsup": ("CE", "pretrained"), "student_sup": ("MLKD", "teacher")}  # no control arm
    assert calibration_pairs(arms) == [("MLKD (teacher init) − CE (pretrained init)", "student_sup", "student_unsup"),
                                       ("MLKD − teacher", "student_sup", "teacher")]


def test_temperature_source_is_the_teachers_for_the_baseline():
    assert temperature_source("baseline") == "teacher"
    assert temperature_source("student_sup") == "student_sup" and temperature_source("teacher") == "teacher"


def test_study_temperatures_read_from_each_models_checkpoint(tmp_path):
    """Each scored model's own checkpoint; the baseline's from its own fold's teacher; none without predictions;
    T = 1, not fitted, where the checkpoint is missing or carries no temperature."""
    def model(fold, name, temperature=None, checkpoint=True, predictions=True):
        d = tmp_path / "folds" / fold / name
        d.mkdir(parents=True)
        if predictions:
            (d / "predictions.csv").write_text("utt_id\n")
        if checkpoint:
            torch.save({"temperature_scaling": {"temperature": temperature}} if temperature else {"epoch": 3},
                       d / "best.pt")
    model("S1", "teacher", 0.5)
    model("S1", "student_sup", 0.8)
    model("S1", "baseline", checkpoint=False)
    model("S1", "student_unsup")  # a checkpoint from before temperatures were fitted
    model("S1", "student_unsup_from_teacher", 3.0, predictions=False)  # not scored yet
    model("S2", "teacher", 2.0)
    model("S2", "baseline", 7.0)  # its own checkpoint's temperature is not the one it uses
    model("S2", "student_sup", checkpoint=False)
    got = study_temperatures(tmp_path)
    expected = pd.DataFrame({
        "model": ["baseline", "student_sup", "student_unsup", "teacher", "baseline", "student_sup", "teacher"],
        "fold": ["S1", "S1", "S1", "S1", "S2", "S2", "S2"],
        "temperature": [0.5, 0.8, 1.0, 0.5, 2.0, 1.0, 2.0],
        "fitted": [True, True, False, True, True, False, True]})
    pd.testing.assert_frame_equal(got, expected)
    assert list(study_temperatures(tmp_path / "none").columns) == ["model", "fold", "temperature", "fitted"]


def test_with_scaled_gives_each_row_its_models_and_folds_temperature():
    probs = [[0.7, 0.2, 0.1], [0.2, 0.5, 0.3], [0.6, 0.3, 0.1], [0.4, 0.4, 0.2], [0.1, 0.1, 0.8]]
    models = ["student_sup", "teacher", "student_sup", "student_unsup", "student_sup"]
    folds = ["S1", "S1", "S2", "S1", "S1"]
    p = np.array(probs)
    # the columns in another order than the emotions: the emotions' order is the classes'
    predictions = pd.DataFrame({"model": models, "fold": folds, "p_ang": p[:, 2], "p_neu": p[:, 0], "p_hap": p[:, 1]})
    temperatures = pd.DataFrame({"model": ["student_sup", "student_sup", "teacher", "teacher"],
                                 "fold": ["S1", "S2", "S1", "S2"], "temperature": [2.0, 0.5, 4.0, 9.0],
                                 "fitted": [True] * 4})
    t, raw, scaled = with_scaled(predictions, temperatures, ["neu", "hap", "ang"])
    assert list(t.model) == models and list(t.fold) == folds  # the rows as they came, none added
    assert list(t.temperature) == [2.0, 4.0, 0.5, 1.0, 2.0]  # student_unsup has none: raw, T = 1
    np.testing.assert_allclose(raw, p, atol=0)
    expected = np.vstack([_powered(p[[i]], temp) for i, temp in enumerate([2.0, 4.0, 0.5, 1.0, 2.0])])
    np.testing.assert_allclose(scaled, expected, atol=1e-12)


CAL_EMOTIONS = ["neu", "hap", "ang"]


def _cal_predictions():
    """student_sup, fold S1: TABLE's five utterances on clean speech, two under babble at 0 dB; the teacher two on
    clean speech, one under babble; the rows interleaved, first seen in another order than the table's."""
    rows = [("student_sup", "clean", p, y) for p, y in TABLE]
    babble = [("student_sup", "noise", [0.6, 0.3, 0.1], 0), ("student_sup", "noise", [0.2, 0.5, 0.3], 2)]
    teacher = [("teacher", "clean", [0.5, 0.3, 0.2], 1), ("teacher", "clean", [0.1, 0.2, 0.7], 2),
               ("teacher", "noise", [0.3, 0.3, 0.4], 2)]
    order = [teacher[2], babble[0], rows[0], rows[1], teacher[0], rows[2], babble[1], rows[3], teacher[1], rows[4]]
    out = []
    for model, condition, p, y in order:
        level = 0.0 if condition == "noise" else None
        out.append(dict(model=model, condition=condition, severity=level,
                        noise="babble" if condition == "noise" else "clean", snr_db=level, fold="S1", label=y,
                        **{f"p_{e}": v for e, v in zip(CAL_EMOTIONS, p)}))
    return pd.DataFrame(out)


def test_calibration_table_scores_each_model_condition_and_fold_raw_and_scaled():
    temperatures = pd.DataFrame({"model": ["student_sup"], "fold": ["S1"], "temperature": [2.0], "fitted": [True]})
    cal = calibration_table(_cal_predictions(), temperatures, CAL_EMOTIONS)
    assert list(cal.columns) == [*KEYS, "scaling", "temperature", *SCORES, "n"]
    assert list(zip(cal.model, cal.condition, cal.scaling)) == [
        ("student_sup", "clean", "raw"), ("student_sup", "clean", "scaled"), ("student_sup", "noise", "raw"),
        ("student_sup", "noise", "scaled"), ("teacher", "clean", "raw"), ("teacher", "clean", "scaled"),
        ("teacher", "noise", "raw"), ("teacher", "noise", "scaled")]
    assert list(cal.n) == [5, 5, 2, 2, 2, 2, 1, 1] and list(cal.temperature) == [1.0, 2.0, 1.0, 2.0, 1.0, 1.0, 1.0, 1.0]
    assert list(cal.fold) == ["S1"] * 8
    assert list(cal.noise) == ["clean", "clean", "babble", "babble", "clean", "clean", "babble", "babble"]
    # clean speech has no level (not −inf), the noise its SNR
    assert cal.severity.isna().tolist() == cal.snr_db.isna().tolist() == [True, True, False, False, True, True,
                                                                            False, False]
    assert list(cal.severity.dropna()) == list(cal.snr_db.dropna()) == [0.0] * 4
    # the babble rows by hand: 0.6 right, 0.5 wrong (ang is the truth); bins (8/15, 9/15] and (7/15, 8/15]
    assert cal.iloc[2][list(SCORES)].to_dict() == pytest.approx(
        {"ece": (0.4 + 0.5) / 2, "nll": -(math.log(0.6) + math.log(0.3)) / 2, "brier": (0.26 + 0.78) / 2,
         "aurc": (0 + 1 / 2) / 2, "ua_at_80": (1 + 0) / 2}, abs=1e-12)
    groups = {"student_sup clean": (P, Y), "student_sup noise": ([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3]], [0, 2]),
              "teacher clean": ([[0.5, 0.3, 0.2], [0.1, 0.2, 0.7]], [1, 2]), "teacher noise": ([[0.3, 0.3, 0.4]], [2])}
    for i, (p, y) in enumerate(groups.values()):
        for row, temperature in ((cal.iloc[2 * i], 1.0), (cal.iloc[2 * i + 1], [2.0, 2.0, 1.0, 1.0][i])):
            assert row[list(SCORES)].to_dict() == pytest.approx(_by_definition(_powered(p, temperature), y),
                                                                abs=1e-12)


def test_family_scores_average_the_types_within_a_severity_then_the_severities():
    """Under the trained noise, babble 0.1 and factory 0.3 at 0 dB, babble 0.5 at 10 dB: the family is
    (0.2 + 0.5) / 2 = 0.35, not the plain mean 0.3; each score its own column, each scaling and fold its own row."""
    cells = [("clean", None, "clean", 0.05), ("noise", 0.0, "babble", 0.1), ("noise", 0.0, "factory", 0.3),
             ("noise", 10.0, "babble", 0.5), ("reverb", 0.3, "reverb", 0.2), ("reverb", 0.9, "reverb", 0.4)]
    rows = []
    for fold, shift in (("S1", 0.0), ("S2", 0.01)):
        for scaling, factor in (("raw", 1.0), ("scaled", 0.5)):
            for condition, severity, noise, ece in cells:
                e = factor * ece + shift
                rows.append(dict(model="student_sup", condition=condition, severity=severity, noise=noise,
                                 snr_db=severity if condition == "noise" else None, fold=fold, scaling=scaling,
                                 temperature=1.0, **{s: e + k for k, s in enumerate(SCORES)}, n=10))
    fam = family_scores(pd.DataFrame(rows))
    assert list(fam.columns) == ["model", "scaling", "condition", "fold", *SCORES]
    assert len(fam) == 2 * 2 * 3
    got = fam.set_index(["scaling", "condition", "fold"])
    for fold, shift in (("S1", 0.0), ("S2", 0.01)):
        for scaling, factor in (("raw", 1.0), ("scaled", 0.5)):
            for condition, ece in (("clean", 0.05), ("noise", 0.35), ("reverb", 0.3)):
                expected = {s: factor * ece + shift + k for k, s in enumerate(SCORES)}
                assert got.loc[(scaling, condition, fold)].to_dict() == pytest.approx(
                    {"model": "student_sup", **expected}, abs=1e-12)


# ------------------------------------------------------------------ Table 5

def test_verdict_says_what_the_test_can_tell():
    row = {"mean": -3.04, "ci_low": -5.0, "ci_high": -1.0, "n_folds": 10, "mde_80": 2.51}
    described = "-3.0 points (95 % CI -5.0 … -1.0), Wilcoxon p = {}, 10 folds, detectable at 80 % power: 2.5 points"
    assert verdict({**row, "p": 0.05}) == described.format("0.05") + ": no detectable difference in calibration"
    assert verdict({**row, "p": 0.0499}) == described.format("0.0499") + ": better calibrated (lower ECE)"
    assert verdict({**row, "mean": 3.04, "ci_low": 1.0, "ci_high": 5.0, "p": 0.0039}) == (
        "+3.0 points (95 % CI +1.0 … +5.0), Wilcoxon p = 0.0039, 10 folds, detectable at 80 % power: 2.5 points: "
        "worse calibrated (higher ECE)")
    assert verdict({**row, "mean": 0.5, "p": 0.01}) == (
        "+0.5 points (95 % CI -5.0 … -1.0), Wilcoxon p = 0.01, 10 folds, detectable at 80 % power: 2.5 points: worse "
        "calibrated (higher ECE)")
    assert "better" not in verdict({**row, "mean": 0.0, "p": 0.01})  # no lower ECE without a lower mean
    assert verdict({"mean": 0.5, "p": np.nan, "n_folds": 1}) == "+0.5 points over 1 fold: too few folds for a test"
    assert verdict({"mean": -1.26, "p": np.nan, "n_folds": 2.0}) == (
        "-1.3 points over 2 folds: too few folds for a test")


NAN = float("nan")


def _differences():
    """stats.csv's calibration rows as ``calibration_differences`` writes them."""
    keys = ["comparison", "kind", "noise", "mean", "ci_low", "ci_high", "p", "q_bh"]
    rows = [("MLKD (teacher init) − CE (pretrained init)", AURC_KIND, "pooled", 0.5, NAN, NAN, NAN, NAN),
            ("MLKD (teacher init) − CE (pretrained init)", ECE_KIND, "pooled", -1.23, -2.0, -0.41, 0.0039, NAN),
            ("MLKD (teacher init) − CE (pretrained init)", ECE_KIND, "clean", 0.04, -0.3, 0.38, 0.84, 0.84),
            ("MLKD (teacher init) − CE (pretrained init)", ECE_KIND, "pooled reverb_noise", -2.0, -3.1, -1.0, 0.031,
             0.0614),
            ("MLKD (teacher init) − CE (pretrained init)", ECE_KIND, "pooled unseen", -0.7, -1.5, 0.1, 0.2, NAN),
            ("MLKD − teacher", AURC_KIND, "pooled", 3.0, 1.0, 5.0, 0.0039, NAN),
            ("MLKD − teacher", ECE_KIND, "pooled", -9.4, -11.0, -7.4, 0.0039, NAN)]
    return pd.DataFrame([dict(zip(keys, r)) for r in rows]).assign(snr_db=None, n_folds=10, sd=1.0, mde_80=3.0)


def test_contrast_cells_as_table5_shows_them():
    cells = contrast_cells(_differences())
    paper = "MLKD (teacher init) − CE (pretrained init)"
    expected = pd.DataFrame({
        "comparison": [paper] * 4 + ["MLKD − teacher"],
        "where": ["trained noise, pooled", "clean", "reverb noise (unseen)", "unseen families, pooled",
                  "trained noise, pooled"],
        ECE_KIND: ["-1.2 (-2.0 … -0.4), p = 0.0039", "+0.0 (-0.3 … +0.4), p = 0.84, q = 0.84",
                   "-2.0 (-3.1 … -1.0), p = 0.031, q = 0.061", "-0.7 (-1.5 … +0.1), p = 0.2",
                   "-9.4 (-11.0 … -7.4), p = 0.0039"],
        AURC_KIND: ["+0.5", NAN, NAN, NAN, "+3.0 (+1.0 … +5.0), p = 0.0039"]})
    pd.testing.assert_frame_equal(cells.rename_axis(columns=None), expected, check_dtype=False)


DIGITS = 0.001234


def _table5_inputs():
    """Two models over the folds (the teacher scored on S1 alone): per fold and row, ECE raw as below, scaled half
    of it, NLL, Brier, AURC and UA at 80 % that plus 0.1, 0.2, 0.3, 0.4; UA from metrics the same way; the
    teacher's every number DIGITS more."""
    ece = {("student_sup", "S1"): {("reverb", 0.3, "reverb"): 0.2, ("clean", None, "clean"): 0.1,
                                   ("noise", 0.0, "babble"): 0.1, ("noise", 0.0, "factory"): 0.3,
                                   ("noise", 10.0, "babble"): 0.5},
           ("student_sup", "S2"): {("reverb", 0.3, "reverb"): 0.4, ("clean", None, "clean"): 0.2,
                                   ("noise", 0.0, "babble"): 0.2, ("noise", 0.0, "factory"): 0.4,
                                   ("noise", 10.0, "babble"): 0.6},
           ("teacher", "S1"): {("reverb", 0.3, "reverb"): 0.1, ("clean", None, "clean"): 0.3,
                               ("noise", 0.0, "babble"): 0.3, ("noise", 0.0, "factory"): 0.3,
                               ("noise", 10.0, "babble"): 0.3}}
    ua = {"student_sup": {"S1": [0.4, 0.6, 0.5, 0.7, 0.3], "S2": [0.6, 0.8, 0.6, 0.8, 0.4]},
          "teacher": {"S1": [0.7, 0.9, 0.2, 0.4, 0.6]}}
    cal, metrics = [], []
    for (model, fold), cells in ece.items():
        extra = DIGITS if model == "teacher" else 0.0  # the teacher's numbers have more digits than a cell shows
        for i, ((condition, severity, noise), e) in enumerate(cells.items()):
            level = dict(condition=condition, severity=severity, noise=noise,
                         snr_db=severity if condition == "noise" else None, fold=fold)
            metrics.append(dict(model=model, **level, ua=ua[model][fold][i] + extra, wa=0.0, n=10))
            for scaling, factor in (("raw", 1.0), ("scaled", 0.5)):
                cal.append(dict(model=model, **level, scaling=scaling, temperature=1.0,
                                **{s: factor * e + 0.1 * k + extra for k, s in enumerate(SCORES)}, n=10))
    return pd.DataFrame(cal), pd.DataFrame(metrics)


def test_table5_per_family_and_model_over_the_folds():
    cal, metrics = _table5_inputs()
    # the teacher's reverb row has no UA (its metrics row lost): its scores stay, its UA is empty
    t = table5(cal, metrics[~((metrics.model == "teacher") & (metrics.condition == "reverb"))])
    assert list(t.index) == list(range(6))
    assert list(zip(t.condition, t.model)) == [("clean", "teacher"), ("clean", "student_sup"), ("noise", "teacher"),
                                               ("noise", "student_sup"), ("reverb", "teacher"),
                                               ("reverb", "student_sup")]
    row = t.iloc[3]  # student_sup under the trained noise: the folds 0.35 and 0.45 (types, then severities)
    s = 0.1 / math.sqrt(2)  # the std over two folds 0.1 apart
    assert row.n_folds == 2
    for k, score in enumerate(SCORES):
        assert row[f"{score}_raw"] == pytest.approx(0.40 + 0.1 * k, abs=1e-12)
        assert row[f"{score}_scaled"] == pytest.approx(0.20 + 0.1 * k, abs=1e-12)
        assert row[f"{score}_raw_std"] == pytest.approx(s, abs=1e-12)
        assert row[f"{score}_scaled_std"] == pytest.approx(s / 2, abs=1e-12)
    assert (row.ua, row.ua_std) == pytest.approx((0.5, s), abs=1e-12)  # (0.6 + 0.3) / 2, (0.7 + 0.4) / 2
    x = DIGITS
    assert list(t.ua) == pytest.approx([0.9 + x, 0.7, 0.45 + x, 0.5, np.nan, 0.5], abs=1e-12, nan_ok=True)
    assert list(t.ece_raw) == pytest.approx([0.3 + x, 0.15, 0.3 + x, 0.4, 0.1 + x, 0.3], abs=1e-12)
    assert list(t.n_folds) == [1, 2, 1, 2, 1, 2] and t[t.model == "teacher"].ece_raw_std.isna().all()
    assert t.iloc[5].ece_raw_std == pytest.approx(0.2 / math.sqrt(2), abs=1e-12)


def _table_rows(md: str, header: str) -> list[list[str]]:
    """The cells of the markdown table whose first header cell is ``header``."""
    lines = md.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {header} "))
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split("|")])
    return [rows[0], *rows[2:]]


def test_write_table5_answer_first_then_the_scores_the_contrasts_and_the_temperatures(tmp_path):
    cal, metrics = _table5_inputs()
    temperatures = pd.DataFrame({"model": ["student_sup", "student_sup", "baseline", "teacher", "teacher"],
                                 "fold": ["S1", "S2", "S1", "S1", "S2"], "temperature": [0.6, 0.8, 0.5, 0.5, 0.7],
                                 "fitted": True})
    path = write_table5(tmp_path, cal, metrics, _differences(), temperatures, synthetic=True)
    assert path == tmp_path / "table5.md"
    md = path.read_text()
    temperature_line = ("Temperatures (mean over the folds, range): Teacher 0.60 (0.50–0.70); Student with "
                        "supervision (MLKD) 0.70 (0.60–0.80); the baseline uses its teacher's.")
    assert md.startswith(
        "### Table 5 — calibration and selective prediction\n\n"
        "- MLKD (teacher init) − CE (pretrained init), ECE after scaling, pooled over the trained noise: -1.2 points "
        "(95 % CI -2.0 … -0.4), Wilcoxon p = 0.0039, 10 folds, detectable at 80 % power: 3.0 points: better "
        "calibrated (lower ECE)\n"
        "- MLKD − teacher, ECE after scaling, pooled over the trained noise: -9.4 points (95 % CI -11.0 … -7.4), "
        "Wilcoxon p = 0.0039, 10 folds, detectable at 80 % power: 3.0 points: better calibrated (lower ECE)\n\n"
        + TABLE5_CAPTION + "\n\n" + temperature_line + "\n\n> " + SYNTHETIC_NOTE + "\n")
    scores_shown = _table_rows(md, "condition")
    assert scores_shown[0] == ["condition", "model", "UA %", "ECE % raw → scaled", "NLL", "Brier", "AURC %",
                               "UA % at 80 % coverage"]
    assert scores_shown[1] == ["clean", "Teacher", "90.1", "30.1 → 15.1", "0.251", "0.351", "45.1", "55.1"]
    assert scores_shown[4] == ["noise (trained)", "Student with supervision (MLKD)", "50.0", "40.0 → 20.0", "0.3",
                               "0.4", "50.0", "60.0"]
    assert [r[0] for r in scores_shown[1:]] == ["clean", "clean", "noise (trained)", "noise (trained)",
                                                "reverb (unseen)", "reverb (unseen)"]
    assert ("|\n\nPaired contrasts after temperature scaling, in points (lower: better calibrated, or fewer errors "
            "among the answered): the mean difference (95 % CI), Wilcoxon p, BH q.\n\n| comparison ") in md
    assert md.endswith(" |\n")
    contrasts = _table_rows(md, "comparison")
    assert contrasts[0] == ["comparison", "where", ECE_KIND, AURC_KIND]
    assert contrasts[1] == ["MLKD (teacher init) − CE (pretrained init)", "trained noise, pooled",
                            "-1.2 (-2.0 … -0.4), p = 0.0039", "+0.5"]
    assert len(contrasts) == 6
    csv = pd.read_csv(tmp_path / "table5.csv")
    assert list(csv.part) == ["family"] * 6 + ["contrast"] * 7
    assert csv.ece_raw[:6].tolist() == pytest.approx([0.3 + DIGITS, 0.15, 0.3 + DIGITS, 0.4, 0.1 + DIGITS, 0.3],
                                                     abs=1e-12)
    assert csv["mean"][6:].tolist() == pytest.approx([0.5, -1.23, 0.04, -2.0, -0.7, 3.0, -9.4])
    assert list(csv.model[:2]) == ["teacher", "student_sup"] and list(csv.comparison[-1:]) == ["MLKD − teacher"]


def test_write_table5_of_one_fold_without_fitted_temperatures(tmp_path):
    """One fold: no test, so the contrasts are bare means, which the markdown keeps as written (+0.5, -1.0)."""
    cal, metrics = _table5_inputs()
    temperatures = pd.DataFrame({"model": ["teacher", "student_sup"], "fold": ["S1", "S1"],
                                 "temperature": [1.0, 1.25], "fitted": [False, True]})
    one_fold = pd.DataFrame({"comparison": "MLKD − teacher", "kind": [ECE_KIND, AURC_KIND], "noise": "pooled",
                             "mean": [0.5, -1.0], "ci_low": NAN, "ci_high": NAN, "p": NAN, "q_bh": NAN,
                             "n_folds": 1, "snr_db": None, "sd": NAN, "mde_80": NAN})
    md = write_table5(tmp_path, cal, metrics, one_fold, temperatures, synthetic=False).read_text()
    assert md.startswith(
        "### Table 5 — calibration and selective prediction\n\n- MLKD − teacher, ECE after scaling, pooled over the "
        "trained noise: +0.5 points over 1 fold: too few folds for a test\n\n" + TABLE5_CAPTION + "\n\nTemperatures "
        "(mean over the folds, range): Teacher 1.00 (1.00–1.00); Student with supervision (MLKD) 1.25 (1.25–1.25); "
        "the baseline uses its teacher's. Models without a fitted temperature are scored raw (T = 1).\n\n|")
    assert SYNTHETIC_NOTE not in md
    assert _table_rows(md, "comparison")[1] == ["MLKD − teacher", "trained noise, pooled", "+0.5", "-1.0"]


def test_write_table5_without_contrasts(tmp_path):
    cal, metrics = _table5_inputs()
    temperatures = pd.DataFrame({"model": ["teacher"], "fold": ["S1"], "temperature": [0.5], "fitted": [True]})
    md = write_table5(tmp_path, cal, metrics, pd.DataFrame(), temperatures, synthetic=False).read_text()
    assert md.startswith("### Table 5 — calibration and selective prediction\n\n" + TABLE5_CAPTION + "\n\n"
                         "Temperatures (mean over the folds, range): Teacher 0.50 (0.50–0.50); the baseline uses its "
                         "teacher's.\n\n|")
    assert "Paired contrasts" not in md
    csv = pd.read_csv(tmp_path / "table5.csv")
    assert list(csv.part) == ["family"] * 6 and len(csv.columns) == 2 + 1 + 10 + 1 + 10 + 1 + 1
