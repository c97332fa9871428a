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


def exact_signed_rank_p(d) -> float:
    """The two-sided exact Wilcoxon p by counting (a different route from the library's enumeration): the number of
    sign patterns giving each sum of positive (doubled, so whole) mid-ranks, built up one rank at a time."""
    from scipy import stats
    d = np.asarray(d, dtype=float)
    d = d[d != 0]
    ranks = np.rint(2 * stats.rankdata(np.abs(d))).astype(int)
    counts = np.zeros(ranks.sum() + 1)
    counts[0] = 1
    for r in ranks:
        counts[r:] = counts[r:] + counts[:-r].copy()
    centre, observed = ranks.sum() / 2, abs(ranks[d > 0].sum() - ranks.sum() / 2)
    return float(counts[np.abs(np.arange(len(counts)) - centre) >= observed].sum() / 2 ** len(d))


def test_the_signed_rank_p_is_exact_to_16_folds_with_ties_and_scipys_beyond():
    from scipy import stats

    from mlkd_lib.analysis.stats import signed_rank_p
    ties = np.array([2, 2, 4, 8, -8, -6, 6, 8, -4, -4, 6, -2, -4, 6, -4, -2]) * 100 / 96  # 16 folds, many ties
    assert signed_rank_p(ties) == pytest.approx(exact_signed_rank_p(ties), abs=1e-12)
    assert abs(stats.wilcoxon(ties).pvalue - exact_signed_rank_p(ties)) > 0.01  # scipy would approximate here
    more = np.append(ties, 6 * 100 / 96)  # 17 folds: scipy's own (its normal approximation with ties)
    assert signed_rank_p(more) == pytest.approx(stats.wilcoxon(more).pvalue, abs=1e-12)
    assert signed_rank_p(np.arange(1.0, 21.0)) == pytest.approx(stats.wilcoxon(np.arange(1.0, 21.0)).pvalue)
    assert signed_rank_p([0.0, 0.0]) == 1.0 and signed_rank_p([3.0]) == 1.0 and signed_rank_p([]) == 1.0
    assert signed_rank_p([1.0, 2.0, -3.0, 4.0, 0.0]) == pytest.approx(exact_signed_rank_p([1, 2, -3, 4]))


def test_paired_test_is_the_seeded_bca_bootstrap_the_exact_p_and_the_spread():
    from scipy import stats
    d = np.array([2.1, -0.5, 3.3, 1.2, 0.8, 2.9, -1.1, 1.7, np.nan])  # a fold without a score is left out
    res = paired_test(d, seed=4)
    d = d[:-1]
    ref = stats.bootstrap((d,), np.mean, confidence_level=0.95, n_resamples=10_000, method="BCa",
                          random_state=np.random.default_rng(4)).confidence_interval
    assert (res["ci_low"], res["ci_high"]) == (ref.low, ref.high) and res["n_folds"] == 8
    assert res["mean"] == pytest.approx(d.mean()) and res["sd"] == pytest.approx(np.std(d, ddof=1))
    assert res["p"] == pytest.approx(exact_signed_rank_p(d)) == stats.wilcoxon(d).pvalue
    assert res["mde_80"] == pytest.approx(minimum_detectable_effect(np.std(d, ddof=1), 8))
    assert set(res) == {"n_folds", "mean", "ci_low", "ci_high", "p", "sd", "mde_80"}


def test_paired_test_with_one_fold_or_none_has_no_interval():
    one = paired_test([2.5])
    assert one["n_folds"] == 1 and one["mean"] == 2.5
    assert set(one) == {"n_folds", "mean", "ci_low", "ci_high", "p", "sd", "mde_80"}
    assert all(np.isnan(one[k]) for k in ("ci_low", "ci_high", "p", "sd", "mde_80"))
    none = paired_test([np.nan])
    assert none["n_folds"] == 0 and np.isnan(none["mean"])
    same = paired_test([1.5, 1.5, 1.5])  # no spread: the interval is the value, the MDE nothing
    assert (same["ci_low"], same["ci_high"], same["sd"], same["mde_80"]) == (1.5, 1.5, 0.0, 0.0)
    assert same["p"] == pytest.approx(2 / 2**3)


def test_the_minimum_detectable_effect_solves_the_noncentral_t_power():
    """Power of a two-sided paired t-test at the MDE, from the noncentral t (both tails): 0.80 for any n and sd, and
    any power asked; ten folds: about one standard deviation (0.996)."""
    from scipy import stats

    def power(delta, sd, n, alpha=0.05):
        crit, nc = stats.t.ppf(1 - alpha / 2, n - 1), delta * np.sqrt(n) / sd
        return stats.nct.sf(crit, n - 1, nc) + np.nan_to_num(stats.nct.cdf(-crit, n - 1, nc))  # nan: about 0

    assert minimum_detectable_effect(1.0, 10) == pytest.approx(0.996, abs=5e-4)
    for sd, n in ((1.0, 10), (2.5, 2), (0.3, 40)):
        assert power(minimum_detectable_effect(sd, n), sd, n) == pytest.approx(0.8, abs=1e-9)
    low = minimum_detectable_effect(1.0, 4, alpha=0.1, power=0.2)  # the far tail weighs in at a small power
    assert power(low, 1.0, 4, alpha=0.1) == pytest.approx(0.2, abs=1e-9)
    assert np.isnan(minimum_detectable_effect(1.0, 1)) and np.isnan(minimum_detectable_effect(np.nan, 10))
    assert minimum_detectable_effect(0.0, 10) == 0.0


def test_every_comparison_names_its_models_conditions_and_what_it_measures():
    arms = {**ARMS, "student_unsup_from_teacher": ("CE", "teacher")}
    assert comparisons(arms) == [
        (PAPER, "student_sup", "student_unsup", "all", "loss and initialisation"),
        ("CE (teacher init) − CE (pretrained init)", "student_unsup_from_teacher", "student_unsup", "all",
         "initialisation"),
        ("MLKD (teacher init) − CE (teacher init)", "student_sup", "student_unsup_from_teacher", "all", "loss"),
        (MLKD_VS_BASELINE, "student_sup", "baseline", "all", "method vs baseline"),
        ("baseline − teacher", "baseline", "teacher", "all", "front-end"),
        (TEACHER_VS_MLKD, "teacher", "student_sup", "clean", "cost of the student on clean speech")]


def test_describe_says_the_difference_its_interval_p_folds_and_mde():
    from mlkd_lib.analysis.stats import describe
    row = {"mean": 2.14, "ci_low": 0.36, "ci_high": -3.94, "p": 0.01953, "n_folds": 10.0, "mde_80": 2.51}
    assert describe(row) == ("+2.1 points (95 % CI +0.4 … -3.9), Wilcoxon p = 0.0195, 10 folds, detectable at 80 % "
                             "power: 2.5 points")


# Benjamini–Hochberg by hand, five cells of one comparison: p (sorted) 0.01, 0.028, 0.03, 0.036, 0.6 against the
# thresholds i·0.05/5 = 0.01, 0.02, 0.03, 0.04, 0.05. The largest p under its threshold is the fourth (0.036 ≤
# 0.04): the first four are discoveries, though 0.028 is above its own threshold (0.02) — the step-up. q_(i) =
# min over j ≥ i of p_(j)·5/j: 0.036·5/4 = 0.045 for the first four (0.01·5 = 0.05, 0.028·5/2 = 0.07, 0.03·5/3
# = 0.05 all come down to it), 0.6 for the last. The other comparison's p 0.01, 0.92, 0.95, 0.97, 0.99: q 0.05
# (0.01·5: no star, though p < 0.05 — a star needs q below 0.05), then 0.99 each: monotone, and never above 1
# (0.92·5/2 = 2.3 comes down to 0.99). Each comparison is its own BH family.
BH_CELLS = [("babble", 0.0), ("babble", 10.0), ("f16", 0.0), ("factory", 0.0), ("factory", 10.0)]
BH_P = {1: 0.01, 2: 0.028, 3: 0.03, 4: 0.036, 5: 0.6, 11: 0.01, 12: 0.92, 13: 0.95, 14: 0.97, 16: 0.99}
BH_Q = {1: 0.045, 2: 0.045, 3: 0.045, 4: 0.045, 5: 0.6, 11: 0.05, 12: 0.99, 13: 0.99, 14: 0.99, 16: 0.99}


def test_benjamini_hochberg_q_against_a_hand_worked_table_where_the_step_up_matters(monkeypatch):
    """Each cell's difference (points, the same in every fold) names its p in ``BH_P`` (the test of a cell given,
    so that the q are worked from known p); the pooled rows (means 3 and 13.2) are tested by their p alone."""
    from mlkd_lib.analysis import stats as module
    pooled_p = {3: 0.03, 13.2: 0.05}  # a pooled row is significant by its p below 0.05: 0.05 is not
    monkeypatch.setattr(module, "paired_test", lambda d, seed=0: {
        "n_folds": len(d), "mean": float(np.mean(d)), "ci_low": np.nan, "ci_high": np.nan, "sd": 0.0, "mde_80": 0.0,
        "p": {**BH_P, **pooled_p}[round(float(np.mean(d)), 1)]})
    rows = []
    for fold in ("S1", "S2", "S3"):
        for k, (noise, snr) in enumerate(reversed(BH_CELLS)):  # rows in no particular order
            d = 5 - k  # factory 10 dB: 5 points ... babble 0 dB: 1 point
            rows += [dict(model="student_unsup", noise=noise, snr_db=snr, fold=fold, ua=0.5),
                     dict(model="student_sup", noise=noise, snr_db=snr, fold=fold, ua=0.5 + d / 100),
                     dict(model="baseline", noise=noise, snr_db=snr, fold=fold, ua=0.39 if d == 5 else 0.4)]
    # MLKD − baseline: 10 + d, 16 at factory 10 dB
    table = paired_differences(pd.DataFrame(rows), ARMS)
    cells = table[table.noise != POOLED]
    assert list(zip(cells.noise, cells.snr_db))[:5] == sorted(BH_CELLS)  # cells in (noise, SNR) order
    for r in cells.itertuples():
        d = round(r.mean)
        assert r.mean == pytest.approx(d, abs=1e-9), (r.comparison, r.noise, r.snr_db)
        assert r.q_bh == pytest.approx(BH_Q[d]), (r.comparison, r.noise, r.snr_db)
        assert r.significant == (BH_Q[d] < 0.05)
    assert significant_cells(table, PAPER) == {("babble", 0.0), ("babble", 10.0), ("f16", 0.0), ("factory", 0.0)}
    assert significant_cells(table, MLKD_VS_BASELINE) == set()
    pooled = table[table.noise == POOLED].set_index("comparison")
    assert pooled.loc[PAPER, "mean"] == pytest.approx(3.0) and bool(pooled.loc[PAPER, "significant"])  # p 0.03
    assert pooled.loc[MLKD_VS_BASELINE, "mean"] == pytest.approx(13.2)
    assert not pooled.loc[MLKD_VS_BASELINE, "significant"] and pooled.q_bh.isna().all()
    assert pooled.snr_db.isna().all() and set(table.columns) == {
        "comparison", "kind", "noise", "snr_db", "n_folds", "mean", "ci_low", "ci_high", "p", "sd", "mde_80", "q_bh",
        "significant"}


FOLD_SHIFTS = [0.013, -0.021, 0.034, 0.002, 0.027, -0.008, 0.041, 0.019, -0.015, 0.030]  # ten folds, all different


def test_pooling_a_cell_of_one_fold_and_the_seed_of_every_interval():
    """Clean, factory at 0 and 10 dB (1 × 2 noisy cells: pooled) over ten folds, and babble at 5 dB in one fold
    only (no p, no q); every interval drawn with the seed asked (0 unless said), the differences in UA points."""
    rows = [dict(model=m, noise=n, snr_db=s, fold=f"S{k}", ua=ua + (shift if m == "student_sup" else 0.0))
            for k, shift in enumerate(FOLD_SHIFTS) for m, ua in (("student_unsup", 0.5), ("student_sup", 0.6))
            for n, s in (("clean", None), ("factory", 0.0), ("factory", 10.0))]
    rows += [dict(model=m, noise="babble", snr_db=5.0, fold="S1", ua=0.5) for m in ("student_unsup", "student_sup")]
    d = 100 * ((0.6 + np.array(FOLD_SHIFTS)) - 0.5)  # as the table computes them, to the last bit
    for seed in (0, 2):
        table = paired_differences(pd.DataFrame(rows), ARMS, **({"seed": seed} if seed else {}))
        paper = table[table.comparison == PAPER].set_index("noise")
        assert np.isnan(paper.loc["babble", "p"]) and np.isnan(paper.loc["babble", "q_bh"])
        assert np.isnan(paper.loc["clean", "snr_db"]) and paper.loc["factory", "snr_db"].tolist() == [0.0, 10.0]
        ref = paired_test(d, seed=seed)
        factory = paper.loc["factory"].iloc[0]
        assert (factory.ci_low, factory.ci_high) == pytest.approx((ref["ci_low"], ref["ci_high"]), abs=1e-9)
        no_babble = paired_differences(pd.DataFrame([r for r in rows if r["noise"] != "babble"]), ARMS,
                                       **({"seed": seed} if seed else {}))
        pooled = no_babble[(no_babble.comparison == PAPER) & (no_babble.noise == POOLED)].iloc[0]
        assert pooled["mean"] == pytest.approx(d.mean())  # factory 0 and 10 dB: the same ten differences
        assert (pooled.ci_low, pooled.ci_high) == pytest.approx((ref["ci_low"], ref["ci_high"]), abs=1e-9)
    assert paired_test(d) == paired_test(d, seed=0) and paired_test(d)["ci_low"] != paired_test(d, seed=2)["ci_low"]
def test_one_noisy_cell_has_no_pooled_row():
    rows = [dict(model=m, noise=n, snr_db=s, fold=f, ua=ua + (0.01 * k if m == "student_sup" else 0.0))
            for k, f in enumerate(("S1", "S2", "S3")) for m, ua in (("student_unsup", 0.5), ("student_sup", 0.6))
            for n, s in (("clean", None), ("factory", 0.0))]
    assert set(paired_differences(pd.DataFrame(rows), ARMS).noise) == {"clean", "factory"}


def test_two_folds_are_enough_for_an_interval_and_a_p():
    two = paired_test([1.0, 2.0])  # their spread is 1: resampled, not taken as one value
    assert (two["ci_low"], two["ci_high"]) == (1.0, 2.0) and two["p"] == pytest.approx(0.5)
    assert two["sd"] == pytest.approx(np.sqrt(0.5)) and np.isfinite(two["mde_80"])


def test_significant_cells_of_a_table_by_hand():
    table = pd.DataFrame({"comparison": [PAPER, PAPER, PAPER, PAPER, "other"],
                          "noise": ["clean", "factory", "babble", POOLED, "factory"],
                          "snr_db": [np.nan, 0.0, 5.0, np.nan, 0.0],
                          "significant": [True, True, False, True, True]})
    assert significant_cells(table, PAPER) == {("clean", None), ("factory", 0.0)}
    assert significant_cells(None, PAPER) == set() and significant_cells(pd.DataFrame(), PAPER) == set()


def test_a_negative_snr_is_an_snr_everywhere_and_only_clean_speech_has_none():
    """A study at −5 and −1 dB: its cells keep their SNRs in the metrics, Tables 1–2's summary, Table 4 and the
    statistics (−1 was once the mark of "no SNR", and a negative SNR in the statistics read as none)."""
    from mlkd_lib.analysis.corruption import table4
    from mlkd_lib.analysis.tables import summarise
    from mlkd_lib.method.evaluate import metrics_from_predictions
    pred = pd.DataFrame({"condition": ["clean", "noise", "noise"], "severity": [np.nan, -1.0, -5.0],
                         "noise": ["clean", "factory", "factory"], "snr_db": [np.nan, -1.0, -5.0],
                         "label": [0, 0, 0], "pred": [0, 1, 0]})
    m = metrics_from_predictions(pred, "student_sup", "S1")
    assert [None if pd.isna(s) else s for s in m.snr_db] == [None, -1.0, -5.0]
    assert [None if pd.isna(s) else s for s in m.severity] == [None, -1.0, -5.0]
    rows = [dict(model=model, condition=c, severity=s, noise=n, snr_db=s, fold=f"S{k}", ua=0.5 + (0.01 * k + 0.1
            if model == "student_sup" else 0.0), wa=0.5, n=4)
            for k in range(6) for model in ("student_unsup", "student_sup")
            for c, n, s in (("clean", "clean", None), ("noise", "factory", -1.0), ("noise", "factory", -5.0))]
    metrics = pd.DataFrame(rows)
    cells = paired_differences(metrics, ARMS)
    cells = cells[(cells.comparison == PAPER) & (cells.noise != POOLED)]
    assert [None if pd.isna(s) else s for s in cells.snr_db] == [None, -5.0, -1.0]
    summary = summarise(metrics)
    assert sorted(summary.snr_db.dropna().unique()) == [-5.0, -1.0] and summary.snr_db.isna().sum() == 2
    t = table4(metrics)
    assert [None if pd.isna(s) else s for s in t[t.model == "student_sup"].severity] == [None, -5.0, -1.0]
