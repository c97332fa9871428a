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


def three_families() -> pd.DataFrame:
    """Two folds, two models; the trained noise (babble and factory at 0 and 10 dB), unseen noise with two types
    (music and traffic at 5 dB) and reverberation (RT60 0.3 and 0.9 s). UA of fold A; fold B is 0.1 lower
    throughout. A type's UA differs from the other's within a family, so averaging types is exercised."""
    a = {"teacher": {("clean", "clean", None): 0.9,
                     ("noise", "babble", 0.0): 0.5, ("noise", "factory", 0.0): 0.3,
                     ("noise", "babble", 10.0): 0.7, ("noise", "factory", 10.0): 0.7,
                     ("unseen_noise", "music", 5.0): 0.6, ("unseen_noise", "traffic", 5.0): 0.4,
                     ("reverb", "reverb", 0.3): 0.8, ("reverb", "reverb", 0.9): 0.6},
         "student_sup": {("clean", "clean", None): 0.8,
                         ("noise", "babble", 0.0): 0.6, ("noise", "factory", 0.0): 0.6,
                         ("noise", "babble", 10.0): 0.7, ("noise", "factory", 10.0): 0.8,
                         ("unseen_noise", "music", 5.0): 0.7, ("unseen_noise", "traffic", 5.0): 0.5,
                         ("reverb", "reverb", 0.3): 0.7, ("reverb", "reverb", 0.9): 0.4}}
    rows = []
    for model, cells in a.items():
        for (condition, noise, severity), ua in cells.items():
            for fold, shift in (("A", 0.0), ("B", -0.1)):
                snr = severity if condition in ("noise", "unseen_noise") else None
                rows.append(dict(model=model, condition=condition, severity=severity, noise=noise, snr_db=snr,
                                 fold=fold, ua=ua + shift, wa=ua, n=10))
    return pd.DataFrame(rows)


def test_corruption_errors_over_three_families_worked_by_hand():
    """The teacher's errors (1 − UA, folds and types averaged): clean 0.15; noise 0 dB 1 − (0.4 − 0.05) = 0.65,
    10 dB 0.35; unseen noise 0.55; reverb 0.25 and 0.45. The student's: clean 0.25; noise 0.45 and 0.30; unseen
    0.45; reverb 0.35 and 0.65."""
    ce = corruption_errors(three_families()).set_index(["model", "family", "seen"])
    student = {"noise": (0.45 + 0.30) / (0.65 + 0.35), "unseen_noise": 0.45 / 0.55,
               "reverb": (0.35 + 0.65) / (0.25 + 0.45)}
    relative = {"noise": ((0.45 - 0.25) + (0.30 - 0.25)) / ((0.65 - 0.15) + (0.35 - 0.15)),
                "unseen_noise": (0.45 - 0.25) / (0.55 - 0.15),
                "reverb": ((0.35 - 0.25) + (0.65 - 0.25)) / ((0.25 - 0.15) + (0.45 - 0.15))}
    for family, value in student.items():
        row = ce.loc[("student_sup", family, family == "noise")]
        assert row.ce == pytest.approx(value) and row.relative_ce == pytest.approx(relative[family])
        assert ce.loc[("teacher", family, family == "noise")].ce == pytest.approx(1.0)
    assert ce.loc[("student_sup", "mCE", True)].ce == pytest.approx(sum(student.values()) / 3)  # every family
    assert ce.loc[("student_sup", "mCE", False)].ce == pytest.approx((student["unseen_noise"] + student["reverb"]) / 2)
    assert ce.loc[("student_sup", "mCE", False)].relative_ce == pytest.approx(
        (relative["unseen_noise"] + relative["reverb"]) / 2)


def test_a_missing_severity_is_said_not_averaged_away():
    """A model scored at one of a family's two severities: summing the errors it has would halve its numerator
    against the reference's. Its CE for that family, and the mCE over it, are missing and the row says why."""
    m = three_families()
    m = m[~((m.model == "student_sup") & (m.condition == "reverb") & (m.severity == 0.9))]
    ce = corruption_errors(m).set_index(["model", "family", "seen"])
    row = ce.loc[("student_sup", "reverb", False)]
    assert pd.isna(row.ce) and pd.isna(row.relative_ce) and row.missing == "0.9"
    assert pd.isna(ce.loc[("student_sup", "mCE", False)].ce) and pd.isna(ce.loc[("student_sup", "mCE", True)].ce)
    assert ce.loc[("student_sup", "unseen_noise", False)].ce == pytest.approx(0.45 / 0.55)  # the others stand
