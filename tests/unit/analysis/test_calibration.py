"""Calibration and selective prediction on cases worked by hand: ECE, Brier, NLL, temperature scaling, the
risk–coverage curve and its area, UA at 80 % coverage, and the contrasts' Benjamini–Hochberg within each metric."""

from __future__ import annotations

import math
import random

import numpy as np
import pandas as pd
import pytest
import torch

from mlkd_lib.analysis.calibration import (
    AURC_KIND,
    ECE_KIND,
    aurc,
    brier_score,
    calibration_differences,
    negative_log_likelihood,
    rescaled,
    risk_coverage,
    top_label_ece,
    ua_at_coverage,
)
from mlkd_lib.method.temperature import fit_temperature

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


def test_ua_at_80_percent_coverage_by_hand():
    # ⌈0.8 · 5⌉ = 4 answered: the least confident (0.55, wrong) abstains; recall class 0: 1/2, class 1: 1, class 2: 1
    assert ua_at_coverage(P, Y) == pytest.approx((0.5 + 1 + 1) / 3)
    assert ua_at_coverage(P, Y, coverage=0.7) == pytest.approx((0.5 + 1 + 1) / 3)  # ⌈3.5⌉ = 4 answered too
    assert ua_at_coverage(P, Y, coverage=1.0) == pytest.approx((1 / 2 + 1 / 2 + 1) / 3)


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
