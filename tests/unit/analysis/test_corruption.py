"""Table 4's scores on metrics with a known answer: UA per family and severity, CE, relative CE and mCE as the
field defines them, and the contrast pooled over the unseen conditions."""

from __future__ import annotations

import pandas as pd
import pytest

from mlkd_lib.analysis.corruption import corruption_errors, table4, unseen_differences
from mlkd_lib.arms import study_arms


def metrics() -> pd.DataFrame:
    """Two folds; the teacher's errors 0.2 clean, 0.4 / 0.6 under reverb, the student's 0.3, then 0.4 / 0.5."""
    rows = []
    ua = {"teacher": {("clean", None): 0.8, ("reverb", 0.3): 0.6, ("reverb", 0.9): 0.4},
          "student_sup": {("clean", None): 0.7, ("reverb", 0.3): 0.6, ("reverb", 0.9): 0.5},
          "student_unsup": {("clean", None): 0.7, ("reverb", 0.3): 0.5, ("reverb", 0.9): 0.4}}
    for model, cells in ua.items():
        for (condition, severity), value in cells.items():
            for fold, shift in (("A", 0.05), ("B", -0.05)):
                rows.append(dict(model=model, condition=condition, severity=severity,
                                 noise="clean" if condition == "clean" else "reverb", snr_db=None, fold=fold,
                                 ua=value + shift, wa=value, n=10))
    return pd.DataFrame(rows)


def test_ua_per_family_and_severity_is_the_fold_mean():
    t = table4(metrics())
    cell = t[(t.model == "student_sup") & (t.condition == "reverb") & (t.severity == 0.9)].iloc[0]
    assert cell.ua_mean == pytest.approx(0.5) and cell.n_folds == 2 and not cell.seen
    assert t[t.condition == "clean"].seen.all()


def test_corruption_errors_as_imagenet_c_defines_them():
    ce = corruption_errors(metrics()).set_index(["model", "family", "seen"])
    # CE = (0.4 + 0.5) / (0.4 + 0.6); relative CE = ((0.4 − 0.3) + (0.5 − 0.3)) / ((0.4 − 0.2) + (0.6 − 0.2))
    assert ce.loc[("student_sup", "reverb", False)].ce == pytest.approx(0.9)
    assert ce.loc[("student_sup", "reverb", False)].relative_ce == pytest.approx(0.5)
    assert ce.loc[("teacher", "reverb", False)].ce == pytest.approx(1.0)
    assert ce.loc[("student_unsup", "mCE", False)].ce == pytest.approx((0.5 + 0.6) / 1.0)  # one unseen family


def test_the_unseen_contrast_pools_each_fold_over_the_unseen_conditions():
    arms = study_arms(pytest.importorskip("mlkd_lib.config").make_config("micro", control_arm=False))
    d = unseen_differences(metrics(), arms).set_index("noise")
    # per fold: MLKD − CE over the two reverb cells = ((0.6 − 0.5) + (0.5 − 0.4)) / 2 = 0.1 → 10 points
    assert d.loc["pooled unseen"]["mean"] == pytest.approx(10.0) and d.loc["pooled unseen"].n_folds == 2
