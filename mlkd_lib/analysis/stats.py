"""Paired comparisons across folds: mean difference, 95 % bootstrap CI, Wilcoxon signed-rank p.

Every model is scored on the same test speaker and the same noisy audio in a fold, so two
models are compared fold by fold (paired). A cell's difference is in UA points; "pooled"
first averages each fold over the noisy conditions, then compares across folds — the one
pre-specified test per comparison. Cell-wise p-values are uncorrected; the Benjamini–Hochberg
q over the cells of a comparison is given beside them.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats

from ..names import BASELINE, CLEAN, STUDENT_SUP, STUDENT_UNSUP, TEACHER

POOLED = "pooled"

# (name, model a, model b, conditions): the difference is a − b, per condition and pooled
# over the noisy ones; "clean": on clean speech only
MLKD_VS_CE, MLKD_VS_BASELINE = "MLKD − CE-only student", "MLKD − baseline"
COMPARISONS = (
    (MLKD_VS_CE, STUDENT_SUP, STUDENT_UNSUP, "all"),
    (MLKD_VS_BASELINE, STUDENT_SUP, BASELINE, "all"),
    ("baseline − teacher", BASELINE, TEACHER, "all"),
    ("teacher − MLKD", TEACHER, STUDENT_SUP, "clean"),
)


def paired_test(diffs, seed: int = 0, n_resamples: int = 10_000) -> dict:
    """Mean, 95 % bootstrap CI (BCa, percentile where BCa is undefined) and two-sided
    Wilcoxon signed-rank p of paired differences (one per fold)."""
    d = np.asarray(diffs, dtype=float)
    d = d[np.isfinite(d)]
    out = {"n_folds": len(d), "mean": float(np.mean(d)) if len(d) else np.nan, "ci_low": np.nan,
           "ci_high": np.nan, "p": np.nan}
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
    out["p"] = 1.0 if np.all(d == 0) else float(stats.wilcoxon(d).pvalue)
    return out


def _per_fold(metrics: pd.DataFrame, model: str) -> pd.DataFrame:
    m = metrics[metrics.model == model]
    return m.assign(snr=m.snr_db.fillna(-1.0)).set_index(["noise", "snr", "fold"]).ua


def paired_differences(metrics: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """One row per comparison × condition (and a pooled row per comparison), in UA points."""
    rows = []
    for name, a, b, which in COMPARISONS:
        if not {a, b} <= set(metrics.model):
            continue
        diff = (100 * (_per_fold(metrics, a) - _per_fold(metrics, b))).dropna().rename("d").reset_index()
        if which == "clean":
            diff = diff[diff.noise == CLEAN]
        cells = []
        for (noise, snr), g in diff.groupby(["noise", "snr"], sort=True):
            cells.append({"comparison": name, "noise": noise, "snr_db": None if snr < 0 else snr,
                          **paired_test(g.d.to_numpy(), seed)})
        if cells:
            ps = np.array([c["p"] for c in cells])
            qs = np.full(len(ps), np.nan)
            ok = np.isfinite(ps)
            if ok.any():
                qs[ok] = stats.false_discovery_control(ps[ok])
            for c, q in zip(cells, qs):
                c["q_bh"] = float(q)
        rows += cells
        noisy = diff[diff.noise != CLEAN]
        if noisy.noise.nunique() * noisy.snr.nunique() > 1:
            pooled = noisy.groupby("fold").d.mean()
            rows.append({"comparison": name, "noise": POOLED, "snr_db": None, **paired_test(pooled.to_numpy(), seed),
                         "q_bh": np.nan})
    out = pd.DataFrame(rows)
    if len(out):
        out["significant"] = out.p < 0.05
    return out


def significant_cells(table: pd.DataFrame, comparison: str) -> set[tuple[str, float | None]]:
    """{(noise, snr_db or None)} where ``comparison`` has p < 0.05 (for marking table cells)."""
    if table is None or not len(table):
        return set()
    sel = table[(table.comparison == comparison) & table.significant & (table.noise != POOLED)]
    return {(r.noise, None if pd.isna(r.snr_db) else float(r.snr_db)) for r in sel.itertuples()}


def describe(row) -> str:
    """'+2.1 points (95 % CI +0.4 … +3.9), Wilcoxon p = 0.02, 10 folds'."""
    return (f"{row['mean']:+.1f} points (95 % CI {row['ci_low']:+.1f} … {row['ci_high']:+.1f}), "
            f"Wilcoxon p = {row['p']:.3g}, {int(row['n_folds'])} folds")
