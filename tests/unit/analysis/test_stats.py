"""Paired statistics across folds, on cases whose answer is known."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from mlkd_lib.analysis.stats import POOLED, paired_differences, paired_test, significant_cells


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


def test_paired_differences_sign_cells_and_pooling():
    table = paired_differences(_metrics({"factory": 0.06, "babble": 0.0}))
    ce = table[table.comparison == "MLKD − CE-only student"]
    factory = ce[(ce.noise == "factory") & (ce.snr_db == 0.0)].iloc[0]
    assert factory["mean"] == pytest.approx(6.0, abs=0.5) and factory["p"] < 0.01
    babble = ce[(ce.noise == "babble") & (ce.snr_db == 10.0)].iloc[0]
    assert abs(babble["mean"]) < 1.0 and not babble["significant"]
    pooled = ce[ce.noise == POOLED].iloc[0]  # the mean of the four noisy cells: (6 + 6 + 0 + 0) / 4
    assert pooled["mean"] == pytest.approx(3.0, abs=0.5) and pooled["n_folds"] == 10
    assert significant_cells(table, "MLKD − CE-only student") == {("factory", 0.0), ("factory", 10.0)}
    # the clean-only comparison has a single row and no pooled one
    clean = table[table.comparison == "teacher − MLKD"]
    assert list(clean.noise) == ["clean"] and clean["mean"].iloc[0] < -5
    # comparisons with a missing model are left out, not faked
    assert "MLKD − baseline" not in set(table.comparison)
