"""Paired comparisons across folds: mean difference, 95 % bootstrap CI, Wilcoxon signed-rank p,
the Benjamini–Hochberg q over the cells of a comparison, and the minimum detectable effect.

Every model is scored on the same test speakers and the same noisy audio in a fold, so two models
are compared fold by fold (paired). The unit of replication is the fold (``n_folds`` says how many a
comparison rests on): its held-out speakers — one under leave-one-speaker-out, a group under k-fold —
are independent of the other folds', while the training sets of two folds share most of their
speakers, so fold-level differences are not fully independent and the intervals may be somewhat
narrow. A corpus's own split (``protocol=split``) is one fold: no spread across folds, so no CI.
A cell's difference is in UA points; "pooled" first averages each fold over the noisy conditions, then
compares across folds — the one pre-specified test per comparison. A cell counts
as significant when its Benjamini–Hochberg q (over the cells of its comparison) is below 0.05.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import optimize, stats

from ..arms import arm_pairs, method_arm
from ..names import BASELINE, CLEAN, NO_LEVEL, TEACHER

POOLED = "pooled"
ALPHA, POWER = 0.05, 0.8
MLKD_VS_BASELINE = "MLKD − baseline"
TEACHER_VS_MLKD = "teacher − MLKD"


def arm_name(arm: tuple[str, str]) -> str:
    return f"{arm[0]} ({arm[1]} init)"


def comparisons(arms: dict[str, tuple[str, str]]) -> list[tuple[str, str, str, str, str]]:
    """(name, model a, model b, conditions, what it measures): the difference is a − b, per condition
    and pooled over the noisy ones ("clean": on clean speech only). Between student arms the name says
    each arm's loss and initialisation, and the kind what differs between them."""
    out = []
    for a, b in arm_pairs(arms):
        kind = ("loss" if arms[a][1] == arms[b][1] else "initialisation" if arms[a][0] == arms[b][0]
                else "loss and initialisation")
        out.append((f"{arm_name(arms[a])} − {arm_name(arms[b])}", a, b, "all", kind))
    method = method_arm().name
    return out + [(MLKD_VS_BASELINE, method, BASELINE, "all", "method vs baseline"),
                  ("baseline − teacher", BASELINE, TEACHER, "all", "front-end"),
                  (TEACHER_VS_MLKD, TEACHER, method, "clean", "cost of the student on clean speech")]


def paper_contrast(arms: dict[str, tuple[str, str]]) -> str:
    """The name of MLKD − the paper's "student without supervision" (the first arm the method is compared with)."""
    method = method_arm()
    return f"{arm_name(arms[method.name])} − {arm_name(arms[method.against[0]])}"


def minimum_detectable_effect(sd: float, n: int, alpha: float = ALPHA, power: float = POWER) -> float:
    """The smallest true mean difference a two-sided paired t-test over ``n`` folds detects with
    ``power``, when the fold-level differences spread with standard deviation ``sd`` (the Wilcoxon
    test needs a few percent more)."""
    if n < 2 or not np.isfinite(sd):
        return np.nan
    if sd == 0:
        return 0.0
    crit = stats.t.ppf(1 - alpha / 2, n - 1)

    def shortfall(delta: float) -> float:
        nc = delta * np.sqrt(n) / sd
        far_tail = np.nan_to_num(stats.nct.cdf(-crit, n - 1, nc))  # scipy gives nan where it is ~0
        return stats.nct.sf(crit, n - 1, nc) + far_tail - power

    rough = (crit + stats.t.ppf(power, n - 1)) * sd / np.sqrt(n)  # the normal approximation, a little small
    return float(optimize.brentq(shortfall, rough / 4, rough * 4))


def signed_rank_p(d) -> float:
    """Two-sided Wilcoxon signed-rank p, exact: zero differences dropped, ties given mid-ranks, and the
    statistic's distribution enumerated over every sign pattern (2^n of them for n ≤ 16; beyond, scipy's
    own). What scipy computes with a permutation test, without its per-call cost."""
    d = np.asarray(d, dtype=float)
    d = d[d != 0]
    n = len(d)
    if n == 0:
        return 1.0
    if n > 16:
        return float(stats.wilcoxon(d).pvalue)
    ranks = stats.rankdata(np.abs(d))
    signs = (np.arange(2 ** n)[:, None] >> np.arange(n)) & 1  # every assignment of signs
    null = signs @ ranks  # the sum of positive ranks under each
    centre = ranks.sum() / 2
    observed = abs(ranks[d > 0].sum() - centre)
    return float(np.mean(np.abs(null - centre) >= observed - 1e-9))


def paired_test(diffs, seed: int = 0, n_resamples: int = 10_000) -> dict:
    """Mean, 95 % bootstrap CI (BCa, percentile where BCa is undefined) and two-sided
    Wilcoxon signed-rank p of paired differences (one per fold)."""
    d = np.asarray(diffs, dtype=float)
    d = d[np.isfinite(d)]
    out = {"n_folds": len(d), "mean": float(np.mean(d)) if len(d) else np.nan, "ci_low": np.nan,
           "ci_high": np.nan, "p": np.nan, "sd": np.nan, "mde_80": np.nan}
    if len(d) < 2:
        return out
    if np.ptp(d) == 0:  # every fold the same difference: no spread to resample
        out["ci_low"] = out["ci_high"] = float(d[0])
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # BCa on a few folds warns when it degenerates
            res = stats.bootstrap((d,), np.mean, confidence_level=0.95, n_resamples=n_resamples,
                                  method="BCa", random_state=np.random.default_rng(seed))
            lo, hi = res.confidence_interval
            if not (np.isfinite(lo) and np.isfinite(hi)):
                res = stats.bootstrap((d,), np.mean, confidence_level=0.95, n_resamples=n_resamples,
                                      method="percentile", random_state=np.random.default_rng(seed))
                lo, hi = res.confidence_interval
        out["ci_low"], out["ci_high"] = float(lo), float(hi)
    out["p"] = signed_rank_p(d)
    out["sd"] = float(np.std(d, ddof=1))
    out["mde_80"] = minimum_detectable_effect(out["sd"], len(d))
    return out


def bh_q(ps) -> list[float]:
    """Benjamini–Hochberg q of each p of one family of tests (a p that is NaN stays out, its q NaN)."""
    ps = np.asarray(ps, dtype=float)
    qs = np.full(len(ps), np.nan)
    ok = np.isfinite(ps)
    if ok.any():
        qs[ok] = stats.false_discovery_control(ps[ok])
    return [float(q) for q in qs]


def _per_fold(metrics: pd.DataFrame, model: str) -> pd.DataFrame:
    m = metrics[metrics.model == model]
    return m.assign(snr=m.snr_db.fillna(NO_LEVEL)).set_index(["noise", "snr", "fold"]).ua


def paired_differences(metrics: pd.DataFrame, arms: dict[str, tuple[str, str]], seed: int = 0) -> pd.DataFrame:
    """One row per comparison × condition (and a pooled row per comparison), in UA points.
    ``arms``: each student arm's (loss, initialisation), ``arms.study_arms``."""
    rows = []
    for name, a, b, which, kind in comparisons(arms):
        if not {a, b} <= set(metrics.model):
            continue
        diff = (100 * (_per_fold(metrics, a) - _per_fold(metrics, b))).dropna().rename("d").reset_index()
        if which == "clean":
            diff = diff[diff.noise == CLEAN]
        cells = []
        for (noise, snr), g in diff.groupby(["noise", "snr"], sort=True):
            cells.append({"comparison": name, "kind": kind, "noise": noise, "snr_db": None if snr == NO_LEVEL else snr,
                          **paired_test(g.d.to_numpy(), seed)})
        for c, q in zip(cells, bh_q([c["p"] for c in cells])):
            c["q_bh"] = q
        rows += cells
        noisy = diff[diff.noise != CLEAN]
        if noisy.noise.nunique() * noisy.snr.nunique() > 1:
            pooled = noisy.groupby("fold").d.mean()
            rows.append({"comparison": name, "kind": kind, "noise": POOLED, "snr_db": None,
                         **paired_test(pooled.to_numpy(), seed), "q_bh": np.nan})
    out = pd.DataFrame(rows)
    if len(out):  # a cell by its BH q; the pooled row, one pre-specified test, by its p
        out["significant"] = np.where(out.noise == POOLED, out.p < ALPHA, out.q_bh < ALPHA)
    return out


def significant_cells(table: pd.DataFrame, comparison: str) -> set[tuple[str, float | None]]:
    """{(noise, snr_db or None)} where ``comparison`` has q < 0.05 (for marking table cells)."""
    if table is None or not len(table):
        return set()
    sel = table[(table.comparison == comparison) & table.significant.astype(bool) & (table.noise != POOLED)]
    return {(r.noise, None if pd.isna(r.snr_db) else float(r.snr_db)) for r in sel.itertuples()}


def describe(row) -> str:
    """'+2.1 points (95 % CI +0.4 … +3.9), Wilcoxon p = 0.02, 10 folds, MDE 2.5'."""
    return (f"{row['mean']:+.1f} points (95 % CI {row['ci_low']:+.1f} … {row['ci_high']:+.1f}), "
            f"Wilcoxon p = {row['p']:.3g}, {int(row['n_folds'])} folds, detectable at 80 % power: "
            f"{row['mde_80']:.1f} points")
