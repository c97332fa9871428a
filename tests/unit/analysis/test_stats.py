"""Paired statistics across folds, on cases whose answer is known."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from mlkd_lib.analysis.stats import (
    MLKD_VS_BASELINE,
    POOLED,
    TEACHER_VS_MLKD,
    comparisons,
    minimum_detectable_effect,
    paired_differences,
    paired_test,
    paper_contrast,
    significant_cells,
)


def test_a_constant_shift_over_ten_folds_is_found_with_the_exact_wilcoxon_p():
    d = 5.0 + np.random.default_rng(0).normal(0, 0.5, 10)
    res = paired_test(d)
    assert res["mean"] == pytest.approx(d.mean())
    assert d.min() <= res["ci_low"] < res["mean"] < res["ci_high"] <= d.max()
    # all ten differences positive: the exact two-sided signed-rank p is 2 / 2^10
    assert res["p"] == pytest.approx(2 / 2**10)


def test_no_effect_gives_a_ci_around_zero_and_a_large_p():
    d = np.array([-3.0, -1.0, 1.0, 3.0, -2.0, 2.0, -4.0, 4.0, -0.5, 0.5])
    res = paired_test(d)
    assert res["mean"] == pytest.approx(0.0)
    assert res["ci_low"] < 0 < res["ci_high"]
    assert res["p"] == pytest.approx(1.0)


def test_identical_models_give_zero_and_p_one():
    res = paired_test(np.zeros(10))
    assert (res["mean"], res["ci_low"], res["ci_high"], res["p"]) == (0.0, 0.0, 0.0, 1.0)


def _metrics(effect_by_noise: dict[str, float]) -> pd.DataFrame:
    """Three models on 10 folds; student_sup = student_unsup + effect (UA fraction), per noise."""
    rng = np.random.default_rng(3)
    rows = []
    for i, fold in enumerate(f"S{i}" for i in range(10)):
        base = rng.uniform(0.4, 0.6)
        conds = [("clean", None)] + list(itertools.product(effect_by_noise, [0.0, 10.0]))
        for noise, snr in conds:
            effect = effect_by_noise.get(noise, 0.0)
            jitter = 0.005 * (-1) ** i if noise != "clean" else 0.0  # no net effect where none is set
            for model, ua in (("student_unsup", base), ("student_sup", base + effect + jitter),
                              ("teacher", base - 0.1)):
                rows.append(dict(model=model, noise=noise, snr_db=snr, fold=fold, ua=ua, wa=ua, n=60))
    return pd.DataFrame(rows)


ARMS = {"student_sup": ("MLKD", "teacher"), "student_unsup": ("CE", "pretrained")}
PAPER = "MLKD (teacher init) − CE (pretrained init)"


def test_paired_differences_sign_cells_and_pooling():
    table = paired_differences(_metrics({"factory": 0.06, "babble": 0.0}), ARMS)
    assert paper_contrast(ARMS) == PAPER
    ce = table[table.comparison == PAPER]
    assert set(ce.kind) == {"loss and initialisation"}
    factory = ce[(ce.noise == "factory") & (ce.snr_db == 0.0)].iloc[0]
    assert factory["mean"] == pytest.approx(6.0, abs=0.5) and factory["p"] < 0.01
    babble = ce[(ce.noise == "babble") & (ce.snr_db == 10.0)].iloc[0]
    assert abs(babble["mean"]) < 1.0 and not babble["significant"]
    pooled = ce[ce.noise == POOLED].iloc[0]  # the mean of the four noisy cells: (6 + 6 + 0 + 0) / 4
    assert pooled["mean"] == pytest.approx(3.0, abs=0.5) and pooled["n_folds"] == 10
    assert pooled["mde_80"] == pytest.approx(minimum_detectable_effect(pooled["sd"], 10))
    assert significant_cells(table, PAPER) == {("factory", 0.0), ("factory", 10.0)}
    # the clean-only comparison has a single row and no pooled one
    clean = table[table.comparison == TEACHER_VS_MLKD]
    assert list(clean.noise) == ["clean"] and clean["mean"].iloc[0] < -5
    # comparisons with a missing model are left out, not faked
    assert MLKD_VS_BASELINE not in set(table.comparison)


def test_the_three_student_contrasts_say_what_differs():
    arms = {**ARMS, "student_unsup_from_teacher": ("CE", "teacher")}
    kinds = {name: kind for name, *_, kind in comparisons(arms)}
    assert kinds[PAPER] == "loss and initialisation"
    assert kinds["CE (teacher init) − CE (pretrained init)"] == "initialisation"
    assert kinds["MLKD (teacher init) − CE (teacher init)"] == "loss"


def test_a_table_star_needs_the_bh_q_not_just_an_uncorrected_p():
    """One cell of 25 with p < 0.05 among null cells: significant uncorrected, not after Benjamini–Hochberg."""
    rng = np.random.default_rng(5)
    rows = []
    noises = [f"n{i}" for i in range(5)]
    for f in range(10):
        for noise, snr in itertools.product(noises, [0.0, 5.0, 10.0, 15.0, 20.0]):
            shift = 0.02 if (noise, snr) == ("n0", 0.0) else 0.0
            jitter = rng.normal(0, 0.02) if shift == 0 else 0.001 * (f - 4.5)
            for model, ua in (("student_unsup", 0.5), ("student_sup", 0.5 + shift + jitter)):
                rows.append(dict(model=model, noise=noise, snr_db=snr, fold=f"S{f}", ua=ua, wa=ua, n=60))
    table = paired_differences(pd.DataFrame(rows), ARMS)
    cell = table[(table.noise == "n0") & (table.snr_db == 0.0)].iloc[0]
    assert cell["p"] < 0.05
    assert (cell["q_bh"] < 0.05) == bool(cell["significant"])
    strong = table[table.noise != POOLED].sort_values("p").iloc[1]  # the next smallest p: a null cell
    assert not strong["significant"]


def test_the_minimum_detectable_effect_has_80_percent_power():
    from scipy import stats
    mde = minimum_detectable_effect(sd=2.0, n=10)
    assert mde == pytest.approx(2 * minimum_detectable_effect(1.0, 10))  # in units of the spread
    assert minimum_detectable_effect(1.0, 40) < minimum_detectable_effect(1.0, 10) / 1.9  # about 1/sqrt(n)
    # simulated paired t-tests at a true effect of the MDE reject four times in five
    rng = np.random.default_rng(0)
    d = rng.normal(mde, 2.0, size=(4000, 10))
    power = np.mean(stats.ttest_1samp(d, 0.0, axis=1).pvalue < 0.05)
    assert power == pytest.approx(0.8, abs=0.025)


def test_the_exact_signed_rank_p_is_scipys_with_ties_and_zeros():
    from scipy import stats

    from mlkd_lib.analysis.stats import signed_rank_p
    rng = np.random.default_rng(0)
    for _ in range(20):  # up to nine folds: scipy's permutation test with ties takes seconds beyond
        d = rng.integers(-4, 5, rng.integers(2, 10)) * 100 / 48  # UA differences on 48 utterances: ties, zeros
        if np.any(d):
            assert signed_rank_p(d) == pytest.approx(stats.wilcoxon(d).pvalue, abs=1e-12)
    for n in (11, 14, 16):  # more folds, distinct differences: scipy's exact distribution
        d = rng.permutation(np.arange(1, n + 1)) * rng.choice([-1, 1], n) * 0.37
        assert signed_rank_p(d) == pytest.approx(stats.wilcoxon(d).pvalue, abs=1e-12)
