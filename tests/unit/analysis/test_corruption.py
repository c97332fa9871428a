"""Table 4's scores on metrics with a known answer: UA per family and severity, CE, relative CE and mCE as the
field defines them, and the contrast pooled over the unseen conditions."""

from __future__ import annotations

import numpy as np
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


# UA per model, condition, severity (fold A = UA + 0.05, fold B = UA − 0.05). The teacher hears the unseen noise as
# well as clean speech (no drop: no relative CE); the CE-only student lacks music at 10 dB and two reverberations.
UA = {"teacher": {("clean", None): 0.8, ("noise", 0.0): 0.5, ("noise", 10.0): 0.7, ("unseen_noise", 5.0): 0.8,
                  ("unseen_noise", 10.0): 0.8, ("reverb", 0.3): 0.6, ("reverb", 0.6): 0.5, ("reverb", 0.9): 0.4},
      "student_unsup": {("clean", None): 0.7, ("noise", 0.0): 0.6, ("noise", 10.0): 0.7, ("unseen_noise", 5.0): 0.6,
                        ("reverb", 0.3): 0.5},
      "student_sup": {("clean", None): 0.75, ("noise", 0.0): 0.65, ("noise", 10.0): 0.75, ("unseen_noise", 5.0): 0.7,
                      ("unseen_noise", 10.0): 0.75, ("reverb", 0.3): 0.6, ("reverb", 0.6): 0.5, ("reverb", 0.9): 0.45}}
NOISE_OF = {"clean": "clean", "noise": "babble", "unseen_noise": "music", "reverb": "reverb"}


def every_case() -> pd.DataFrame:
    return pd.DataFrame([dict(model=m, condition=c, severity=s, noise=NOISE_OF[c], fold=f, ua=u + shift, wa=u, n=10,
                              snr_db=s if c in ("noise", "unseen_noise") else None)
                         for m, cells in UA.items() for (c, s), u in cells.items()
                         for f, shift in (("A", 0.05), ("B", -0.05))])


def test_table4_whole_its_order_and_its_clean_rows_without_a_severity():
    t = table4(every_case())
    rank = {"clean": 0, "noise": 1, "unseen_noise": 2, "reverb": 3}
    expected = sorted(((m, c, s, c in ("clean", "noise"), u) for m, cells in UA.items() for (c, s), u in cells.items()),
                      key=lambda r: (rank[r[1]], np.inf if r[2] is None else r[2], r[0]))
    assert list(zip(t.model, t.condition, [None if pd.isna(s) else s for s in t.severity], t.seen)) == [
        r[:4] for r in expected]
    assert t.ua_mean.tolist() == pytest.approx([r[4] for r in expected])
    assert t.ua_std.tolist() == pytest.approx([0.05 * np.sqrt(2)] * len(expected)) and (t.n_folds == 2).all()
    assert list(t.columns) == ["model", "condition", "severity", "seen", "ua_mean", "ua_std", "n_folds"]


def test_corruption_errors_whole_with_missing_severities_and_a_reference_without_a_drop():
    """Errors (1 − UA): teacher clean 0.2, noise 0.5 and 0.3, unseen 0.2 and 0.2, reverb 0.4, 0.5, 0.6; MLKD clean
    0.25, noise 0.35 and 0.25, unseen 0.3 and 0.25, reverb 0.4, 0.5, 0.55; CE-only clean 0.3, noise 0.4 and 0.3."""
    ce = corruption_errors(every_case())
    nan = np.nan
    rows = [("teacher", "noise", True, 1.0, 1.0, ""),
            ("student_unsup", "noise", True, 0.7 / 0.8, (0.1 + 0.0) / 0.4, ""),
            ("student_sup", "noise", True, 0.6 / 0.8, (0.1 + 0.0) / 0.4, ""),
            ("teacher", "unseen_noise", False, 1.0, nan, ""),  # the teacher's drop is 0: no relative CE
            ("student_unsup", "unseen_noise", False, nan, nan, "10"),
            ("student_sup", "unseen_noise", False, 0.55 / 0.4, nan, ""),
            ("teacher", "reverb", False, 1.0, 1.0, ""),
            ("student_unsup", "reverb", False, nan, nan, "0.6, 0.9"),
            ("student_sup", "reverb", False, 1.45 / 1.5, (0.15 + 0.25 + 0.3) / 0.9, ""),
            ("teacher", "mCE", True, 1.0, nan, ""), ("teacher", "mCE", False, 1.0, nan, ""),
            ("student_unsup", "mCE", True, nan, nan, "unseen_noise, reverb"),
            ("student_unsup", "mCE", False, nan, nan, "unseen_noise, reverb"),
            ("student_sup", "mCE", True, (0.75 + 1.375 + 1.45 / 1.5) / 3, nan, ""),
            ("student_sup", "mCE", False, (1.375 + 1.45 / 1.5) / 2, nan, "")]
    expected = pd.DataFrame(rows, columns=["model", "family", "seen", "ce", "relative_ce", "missing"])
    pd.testing.assert_frame_equal(ce, expected, check_dtype=False)


def test_a_reference_without_errors_gives_no_corruption_error():
    """The teacher never wrong on a family: no CE (not an infinite one), and no relative CE (its errors fall)."""
    m = every_case()
    m.loc[(m.model == "teacher") & (m.condition == "reverb"), "ua"] = 1.0
    ce = corruption_errors(m).set_index(["model", "family"])
    assert ce.loc[("student_sup", "reverb")][["ce", "relative_ce"]].isna().all()
    with pytest.raises(ValueError, match="the reference model 'baseline' has no clean UA in the metrics"):
        corruption_errors(m, reference="baseline")


def test_the_unseen_contrasts_whole_pooled_by_p_families_by_bh_q(monkeypatch):
    """MLKD − CE-only per fold (points): music 10 and 5 (family 7.5), reverb 10 and 2 (6), the corpus 20 and 5
    (12.5); pooled unseen (10 + 5 + 10 + 2) / 4 = 6.75. Each test's p given by its mean: the pooled unseen 0.05 (no
    star: a star needs p below 0.05), the corpus 0.01; the families 0.05 and 0.025, whose BH q are both 0.05 (no
    star, though 0.025 < 0.05)."""
    from mlkd_lib.analysis import stats
    seeds = []
    p_of = {6.75: 0.05, 12.5: 0.01, 7.5: 0.025, 6.0: 0.05}
    monkeypatch.setattr(stats, "paired_test", lambda d, seed=0: seeds.append(seed) or {
        "n_folds": len(d), "mean": float(np.mean(d)), "ci_low": -1.0, "ci_high": 1.0,
        "p": p_of[round(float(np.mean(d)), 2)], "sd": 0.0, "mde_80": 0.0})
    ua = {("unseen_noise", "music", 5.0): (0.7, 0.6), ("unseen_noise", "music", 10.0): (0.65, 0.6),
          ("reverb", "reverb", 0.3): (0.6, 0.5), ("reverb", "reverb", 0.9): (0.5, 0.48),
          ("corpus", "emodb/clean", None): (0.6, 0.4), ("corpus", "emodb/babble", 0.0): (0.5, 0.45),
          ("clean", "clean", None): (0.9, 0.8), ("noise", "babble", 0.0): (0.8, 0.2)}  # trained: not in these
    m = pd.DataFrame([dict(model=model, condition=c, severity=s, noise=n, snr_db=None, fold=f, ua=u + shift, wa=u, n=9)
                      for (c, n, s), pair in ua.items() for model, u in zip(("student_sup", "student_unsup"), pair)
                      for f, shift in (("A", 0.01), ("B", -0.01))])
    arms = study_arms(pytest.importorskip("mlkd_lib.config").make_config("micro", control_arm=False))
    d = unseen_differences(m, arms, seed=7)
    paper = "MLKD (teacher init) − CE (pretrained init)"
    assert seeds == [7, 7, 7, 7]
    unseen_differences(m, arms)
    assert seeds[4:] == [0, 0, 0, 0]  # the seed unless one is asked for
    assert list(d.columns) == ["comparison", "kind", "noise", "snr_db", "n_folds", "mean", "ci_low", "ci_high", "p",
                               "sd", "mde_80", "q_bh", "significant"]
    assert list(d.noise) == ["pooled unseen", "pooled corpus", "pooled reverb", "pooled unseen_noise"]
    assert set(d.comparison) == {paper} and set(d.kind) == {"unseen"} and d.snr_db.isna().all()
    assert d["mean"].tolist() == pytest.approx([6.75, 12.5, 6.0, 7.5]) and (d.n_folds == 2).all()
    assert d.q_bh.iloc[:2].isna().all()  # the pooled rows: each its own pre-specified test
    assert d.q_bh.iloc[2:].tolist() == pytest.approx([0.05, 0.05])
    assert d.significant.tolist() == [False, True, False, False]


def test_table4_as_written_its_cells_and_corruption_errors(tmp_path):
    """The two-fold metrics above: UA % mean ± std over the folds (std 7.1 everywhere), then CE (rel. CE) rows."""
    from mlkd_lib.analysis.corruption import write_table4
    from mlkd_lib.analysis.tables import SYNTHETIC_NOTE
    md = write_table4(tmp_path, metrics(), synthetic=True).read_text()
    head, table = md.split("\n\n| ")
    assert head.startswith("### Table 4 — robustness beyond the training noise\n\nUA in % (mean ± std over the folds;")
    assert head.endswith(f"\n\n> {SYNTHETIC_NOTE}")
    lines = ("| " + table).strip().splitlines()
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines if not line.startswith("|:")]
    assert rows == [
        ["condition", "severity", "Teacher", "Student without supervision (CE only)",
         "Student with supervision (MLKD)"],
        ["clean", "", "80.0 ± 7.1", "70.0 ± 7.1", "70.0 ± 7.1"],
        ["reverb (unseen)", "0.3 RT60 s", "60.0 ± 7.1", "50.0 ± 7.1", "60.0 ± 7.1"],
        ["reverb (unseen)", "0.9 RT60 s", "40.0 ± 7.1", "40.0 ± 7.1", "50.0 ± 7.1"],
        ["CE: reverb (unseen)", "", "1.00 (rel. 1.00)", "1.10 (rel. 0.83)", "0.90 (rel. 0.50)"],
        ["CE: mCE, every family", "", "1.00 (rel. 1.00)", "1.10 (rel. 0.83)", "0.90 (rel. 0.50)"],
        ["CE: mCE, unseen families", "", "1.00 (rel. 1.00)", "1.10 (rel. 0.83)", "0.90 (rel. 0.50)"]]
    written = pd.read_csv(tmp_path / "table4.csv")
    assert written.kind.tolist() == ["ua"] * 9 + ["ce"] * 9
    assert written[written.kind == "ce"].ce.tolist()[:3] == pytest.approx([1.0, 1.1, 0.9])


def test_table4_says_a_missing_severity_and_a_missing_relative_ce(tmp_path):
    from mlkd_lib.analysis.corruption import write_table4
    m = metrics()
    m = m[~((m.model == "student_unsup") & (m.severity == 0.9))]
    m.loc[(m.model == "teacher") & (m.condition == "clean"), "ua"] = 0.3  # its clean error above its reverb ones
    md = write_table4(tmp_path, m, synthetic=False).read_text()
    assert "| – (none at 0.9)" in md and "(rel. –)" in md and "Synthetic" not in md


def test_how_a_family_is_named_measured_and_which_way_it_gets_worse():
    from mlkd_lib.analysis.corruption import shown_name, unit_of, worse
    assert [shown_name(f) for f in ("clean", "noise", "unseen_noise", "reverb_noise")] == [
        "clean", "noise (trained)", "unseen noise (unseen)", "reverb noise (unseen)"]
    assert [unit_of(f) for f in ("clean", "noise", "reverb", "codec")] == ["", "dB SNR", "RT60 s", "kbps"]
    assert [worse(f) for f in ("noise", "reverb", "codec", "telephone")] == ["lower", "higher", "lower", None]


def test_models_missing_a_family_or_clean_speech_are_passed_over_not_the_others():
    m = every_case()
    m = m[~((m.model == "student_unsup") & (m.condition == "reverb"))]  # the CE-only student never heard reverb
    ce = corruption_errors(m).set_index(["model", "family"])
    assert ("student_unsup", "reverb") not in ce.index and ce.loc[("student_sup", "reverb")].ce == pytest.approx(
        1.45 / 1.5)
    no_clean = corruption_errors(m[~((m.model == "student_unsup") & (m.condition == "clean"))])
    assert "student_unsup" not in set(no_clean.model)


def test_table4_cells_of_one_fold_a_wide_spread_and_a_model_absent_from_a_severity(tmp_path):
    from mlkd_lib.analysis.corruption import write_table4
    m = metrics()
    m.loc[m.fold == "A", "ua"] += 0.05  # folds 0.1 on either side of the mean: std 14.1 (14.3 at 101 %)
    m.loc[m.fold == "B", "ua"] -= 0.05
    m = m[~((m.model == "student_unsup") & (m.severity == 0.9))]
    m = m[~((m.model == "student_sup") & (m.condition == "reverb") & (m.fold == "B"))]  # one fold: no spread
    md = write_table4(tmp_path, m, synthetic=False)
    assert md == tmp_path / "table4.md"
    text = md.read_text()
    assert text.startswith(
        "### Table 4 — robustness beyond the training noise\n\nUA in % (mean ± std over the folds; a family's noise "
        "types averaged), every trained model under every condition; unseen: no model trained on it. CE = Σ error / "
        "Σ error of the teacher over a family's severities (relative CE: of the drop from clean UA); mCE their mean "
        "over families. Below 1: more robust than the clean-trained teacher.\n\n| condition")
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in text.splitlines() if line.startswith("| rev")]
    rows = {tuple(c[:2]): c[2:] for c in cells}
    assert rows[("reverb (unseen)", "0.3 RT60 s")] == ["60.0 ± 14.1", "50.0 ± 14.1", "70.0"]
    assert rows[("reverb (unseen)", "0.9 RT60 s")] == ["40.0 ± 14.1", "", "60.0"]
    assert list(pd.read_csv(tmp_path / "table4.csv").columns) == [
        "model", "condition", "severity", "seen", "ua_mean", "ua_std", "n_folds", "kind", "family", "ce", "relative_ce",
        "missing"]


def test_the_baseline_contrast_stands_without_the_ce_only_student_and_a_family_of_one_fold_has_no_q():
    arms = study_arms(pytest.importorskip("mlkd_lib.config").make_config("micro", control_arm=False))
    m = metrics().replace({"student_unsup": "baseline"})
    m = pd.concat([m, m[(m.model != "teacher") & (m.condition == "reverb") & (m.fold == "A")].assign(
        condition="clipping", noise="clipping", severity=0.2)])
    d = unseen_differences(m, arms).set_index("noise")
    assert set(d.comparison) == {"MLKD − baseline"}
    assert d.loc["pooled reverb", "mean"] == pytest.approx(100 * ((0.6 - 0.5) + (0.5 - 0.4)) / 2)
    assert np.isnan(d.loc["pooled clipping", "p"]) and np.isnan(d.loc["pooled clipping", "q_bh"])
