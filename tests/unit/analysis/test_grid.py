"""The grid sweep's bookkeeping: the grid is the product of the values, a key outside the ablation keys is
refused, each fold's choice reads validation UA only (ties to the study's setting, then the first point), and the
test-chosen figure is computed and labelled apart from the validation-chosen one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlkd_lib.analysis.grid import (
    CONTRAST,
    INFLATION,
    TEST_CHOSEN,
    VALIDATION_CHOSEN,
    choices,
    grid_summary,
    grid_table,
    kept_val_ua,
    point_label,
    summary_markdown,
    write_grid,
)
from mlkd_lib.config import make_config
from mlkd_lib.study.sweep import ablation_of, grid_points, is_own, parse_grid, point_dir


def test_the_grid_is_the_product_of_the_values_and_refuses_other_keys():
    grid = parse_grid({"temperature": "1, 3,7,3", "alpha": "0.3,0.7"})
    assert grid == {"temperature": ["1", "3", "7"], "alpha": ["0.3", "0.7"]}
    points = grid_points(grid)
    assert len(points) == 6 and points[0] == {"temperature": "1", "alpha": "0.3"} and points[1]["alpha"] == "0.7"
    assert {(p["temperature"], p["alpha"]) for p in points} == {(t, a) for t in "137" for a in ("0.3", "0.7")}
    assert point_dir("/s", points[0]).name == "temperature=1_alpha=0.3"
    assert parse_grid({"student_layers": "4,1,2,2"}) == {"student_layers": ["1", "2", "4"]}
    assert point_dir("/s", {"student_layers": "2"}).name == "depth-2"  # the frontier's folders
    assert ablation_of({"student_layers": "2"}) == {"student_layers": "2", "control_arm": False}
    assert ablation_of({"alpha": "0.3"}) == {"alpha": "0.3"}
    with pytest.raises(ValueError, match=r"not lr, seed$"):
        parse_grid({"temperature": "1,7", "seed": "1,2", "lr": "1e-5"})
    with pytest.raises(ValueError, match="a depth is a whole number"):
        parse_grid({"student_layers": "1,x"})
    cfg = make_config("micro")  # T = 7, alpha = 0.7
    assert is_own(cfg, {"temperature": "7", "alpha": "0.7"}) and not is_own(cfg, {"temperature": "1", "alpha": "0.7"})
    with pytest.raises(ValueError, match="alpha"):
        is_own(cfg, {"alpha": "1.5"})  # a bad value names its key


def _table(val, test, own=None):
    """Two folds × len(val[0]) points; ``val`` and ``test`` per fold and point."""
    rows = []
    for f, (vs, ts) in enumerate(zip(val, test)):
        for k, (v, t) in enumerate(zip(vs, ts)):
            rows.append(dict(point=f"p{k}", order=k, fold=f"f{f}", val_ua=v, test_clean_ua=t + 10, test_noisy_ua=t,
                             test_unseen_ua=t - 5, ce_only_clean_ua=60.0, ce_only_noisy_ua=50.0,
                             ce_only_unseen_ua=45.0, own=k == (own if own is not None else -1)))
    return pd.DataFrame(rows)


def test_each_fold_chooses_by_validation_never_by_test():
    # validation prefers p0 in f0 and p2 in f1; test prefers p1 everywhere
    table = _table(val=[[70, 60, 50], [40, 45, 60]], test=[[50, 80, 55], [52, 90, 51]])
    chosen = choices(table)
    assert chosen.set_index("fold").point.to_dict() == {"f0": "p0", "f1": "p2"}


def test_ties_go_to_the_studys_setting_then_to_the_first_point():
    table = _table(val=[[60, 60, 60], [60, 60, 59]], test=[[1, 2, 3], [4, 5, 6]])
    assert choices(table).point.tolist() == ["p0", "p0"]
    assert choices(_table(val=[[60, 60, 60], [60, 60, 59]], test=[[1, 2, 3], [4, 5, 6]], own=1)).point.tolist() == [
        "p1", "p1"]


def test_the_summary_reports_the_choices_and_the_optimistic_figure_apart():
    table = _table(val=[[70, 60, 50], [40, 45, 60]], test=[[50, 80, 55], [52, 90, 51]])
    table["chosen"] = table.index.isin(choices(table).index)
    s = grid_summary(table).set_index("row")
    points = s.loc["point"]
    assert points.point.tolist() == ["p0", "p1", "p2"] and points.folds_chose.tolist() == [1, 0, 1]
    assert s.loc[VALIDATION_CHOSEN, "mean"] == pytest.approx((50 + 51) / 2)  # the chosen points' test UA
    assert s.loc[VALIDATION_CHOSEN, "clean_ua"] == pytest.approx((60 + 61) / 2)
    assert s.loc[TEST_CHOSEN, "point"] == "p1" and s.loc[TEST_CHOSEN, "mean"] == pytest.approx(85.0)
    assert s.loc[INFLATION, "mean"] == pytest.approx(85.0 - 50.5)  # what choosing on test flatters
    assert s.loc[CONTRAST, "mean"] == pytest.approx(50.5 - 50.0)
    assert "optimistic" in TEST_CHOSEN and np.isfinite(s.loc[INFLATION, "ci_low"])


def test_the_kept_epoch_is_the_best_on_validation_not_the_last():
    history = pd.DataFrame({"epoch": [1, 2, 3, 4], "val_ua": [0.50, 0.75, 0.70, 0.60]})
    assert kept_val_ua(history, "best") == pytest.approx(75.0)  # epoch 2 was kept
    assert kept_val_ua(history, "last") == pytest.approx(60.0)


def _point(folder, selection, histories, test_ua):
    """A grid point's study folder: per fold, the MLKD student's history and metrics (clean, factory 0 dB) and the
    CE-only student's metrics (test UA 0.4 on both)."""
    cfg = make_config("micro", noise_types=["factory"], snrs=[0.0], conditions=[], selection=selection)
    cfg.save(folder / "config.json")
    for fold, history in histories.items():
        for model, ua in (("student_sup", test_ua[fold]), ("student_unsup", 0.4)):
            out = folder / "folds" / fold / model
            out.mkdir(parents=True)
            pd.DataFrame([dict(model=model, condition=c, severity=s, noise=n, snr_db=s, fold=fold, ua=ua + d,
                               wa=ua, n=10) for c, n, s, d in (("clean", "clean", None, 0.1),
                                                               ("noise", "factory", 0.0, 0.0))]).to_csv(
                out / "metrics.csv", index=False)
        pd.DataFrame({"epoch": range(1, len(history) + 1), "val_ua": history}).to_csv(
            folder / "folds" / fold / "student_sup" / "history.csv", index=False)


def test_the_grid_reads_the_kept_epochs_validation_ua_where_best_is_not_last(tmp_path):
    """Point a peaks early on validation and ends low; point b ends higher than a's last epoch but below a's best:
    selection "best" keeps a's peak, so each fold chooses a; reading the last epoch would choose b."""
    a, b = tmp_path / "a", tmp_path / "b"
    _point(a, "best", {"S1": [0.50, 0.80, 0.55], "S2": [0.60, 0.90, 0.62]}, {"S1": 0.5, "S2": 0.6})
    _point(b, "best", {"S1": [0.60, 0.70], "S2": [0.70, 0.85]}, {"S1": 0.7, "S2": 0.8})
    table = grid_table([{"alpha": "0.7"}, {"alpha": "0.3"}], [a, b], [True, False]).set_index(["point", "fold"])
    assert table.val_ua.to_dict() == pytest.approx({("alpha=0.7", "S1"): 80.0, ("alpha=0.7", "S2"): 90.0,
                                                    ("alpha=0.3", "S1"): 70.0, ("alpha=0.3", "S2"): 85.0})
    assert table.loc[("alpha=0.7", "S1"), "test_noisy_ua"] == pytest.approx(50.0)
    assert table.loc[("alpha=0.7", "S1"), "test_clean_ua"] == pytest.approx(60.0)
    assert table.loc[("alpha=0.3", "S2"), "ce_only_noisy_ua"] == pytest.approx(40.0)
    assert table[table.chosen].index.get_level_values("point").tolist() == ["alpha=0.7", "alpha=0.7"]
    # the same histories kept at their last epoch (selection "last"): b is chosen in both folds
    for folder in (a, b):
        cfg = make_config("micro", noise_types=["factory"], snrs=[0.0], conditions=[], selection="last")
        cfg.save(folder / "config.json")
    table = grid_table([{"alpha": "0.7"}, {"alpha": "0.3"}], [a, b], [True, False]).set_index(["point", "fold"])
    assert table.loc["alpha=0.7"].val_ua.tolist() == pytest.approx([55.0, 62.0])
    assert table[table.chosen].index.get_level_values("point").tolist() == ["alpha=0.3", "alpha=0.3"]


GRID_README = """# Sweep of alpha

(synthetic speech: these figures show the pipeline works, not the paper's)

## The grid: chosen on validation, reported on test

| point | folds that chose it | val UA | test UA clean | test UA noisy | test UA unseen |
|---|---|---|---|---|---|
| alpha=0.7 (the study) | 2 | 85.0 | 65.0 | 55.0 | nan |
| alpha=0.3 | 0 | 77.5 | 85.0 | 75.0 | nan |

Pooled noisy test UA (points), paired over the folds, 95 % CI, Wilcoxon p:

- **validation-chosen** (alpha=0.7 ×2): 55.0 (50.0 … 60.0)
- **test-chosen (optimistic)** (alpha=0.3): 75.0 (70.0 … 80.0)
- **inflation: test-chosen − validation-chosen** (alpha=0.3): +20.0 (+20.0 … +20.0), p = 0.500
- **validation-chosen MLKD − CE-only** (alpha=0.7 ×2): +15.0 (+10.0 … +20.0), p = 0.500

The test-chosen figure picks its point on the test speakers: it is what a grid search scored on test data would \
report, and the inflation is how much that choice flatters the result.

![the grid](grid.png)
"""


def test_the_sweep_folder_gets_its_tables_plot_and_readme(tmp_path):
    """The two points above (kept epochs: a 80 and 90, b 70 and 85; noisy test UA a 50 and 60, b 70 and 80; the
    CE-only student 40): a is chosen in both folds; a test-chosen search would report b."""
    a, b = tmp_path / "a", tmp_path / "b"
    _point(a, "best", {"S1": [0.50, 0.80, 0.55], "S2": [0.60, 0.90, 0.62]}, {"S1": 0.5, "S2": 0.6})
    _point(b, "best", {"S1": [0.60, 0.70], "S2": [0.70, 0.85]}, {"S1": 0.7, "S2": 0.8})
    paths = write_grid(tmp_path, [{"alpha": "0.7"}, {"alpha": "0.3"}], [a, b], [True, False])
    assert [p.name for p in paths] == ["grid.csv", "grid_summary.csv", "grid.png", "README.md"]
    assert paths[2].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert paths[3].read_text() == GRID_README
    grid = pd.read_csv(paths[0])
    assert list(grid.columns) == ["point", "alpha", "fold", "val_ua", "test_clean_ua", "test_noisy_ua",
                                  "test_unseen_ua", "ce_only_clean_ua", "ce_only_noisy_ua", "ce_only_unseen_ua", "own",
                                  "chosen"]
    assert grid.chosen.tolist() == [True, True, False, False] and grid.own.tolist() == [True, True, False, False]
    summary = pd.read_csv(paths[1])
    assert list(summary.columns) == ["row", "point", "folds_chose", "own", "val_ua", "clean_ua", "noisy_ua",
                                     "unseen_ua", "n_folds", "mean", "ci_low", "ci_high", "p"]
    assert summary.row.tolist() == ["point", "point", VALIDATION_CHOSEN, TEST_CHOSEN, INFLATION, CONTRAST]
    assert summary.n_folds.tolist() == [2] * 6 and summary.own.tolist()[:2] == [True, False]
    (tmp_path / "failed").mkdir()  # a point none of whose steps finished: left out, and with no other, said so
    assert len(grid_table([{"alpha": "0.7"}, {"alpha": "0.1"}], [a, tmp_path / "failed"], [True, False])) == 2
    with pytest.raises(FileNotFoundError, match="no grid point has a finished MLKD student to read"):
        write_grid(tmp_path, [{"alpha": "0.1"}], [tmp_path / "failed"], [False])


def test_a_figure_of_one_fold_says_it_has_no_interval():
    summary = pd.DataFrame([{"row": "point", "point": "alpha=0.7", "folds_chose": 1, "own": False, "val_ua": 80.0,
                             "clean_ua": 70.0, "noisy_ua": 60.0, "unseen_ua": 50.0},
                            {"row": INFLATION, "point": "alpha=0.7", "mean": 2.0, "ci_low": np.nan, "ci_high": np.nan,
                             "p": np.nan}])
    text = summary_markdown(summary)
    assert "| alpha=0.7 | 1 | 80.0 | 70.0 | 60.0 | 50.0 |\n" in text
    assert "- **inflation: test-chosen − validation-chosen** (alpha=0.7): +2.0 (one fold: no CI)\n" in text


def test_the_summary_in_point_order_whatever_the_rows_order_with_its_picks_and_a_fold_a_point_lacks():
    """Three folds: validation picks p0 in f0 and p2 in f1 and f2; p1 has the best mean test UA but lacks f2."""
    table = _table(val=[[70, 60, 50], [40, 45, 60], [30, 35, 90]], test=[[50, 80, 55], [52, 90, 51], [40, 0, 45]])
    table["fold"] = [f"f{i // 3}" for i in range(9)]
    table = table[~((table.point == "p1") & (table.fold == "f2"))].iloc[::-1]  # rows in reverse, p1 without f2
    table["chosen"] = table.index.isin(choices(table).index)
    s = grid_summary(table).set_index("row")
    assert s.loc["point"].point.tolist() == ["p0", "p1", "p2"] and s.loc["point"].folds_chose.tolist() == [1, 0, 2]
    assert s.loc[VALIDATION_CHOSEN, "point"] == "p0 ×1; p2 ×2"  # in the order of the folds that chose them
    assert s.loc[TEST_CHOSEN, "point"] == "p1" and s.loc[TEST_CHOSEN, "mean"] == pytest.approx(85.0)
    assert s.loc[TEST_CHOSEN, "n_folds"] == 2  # f2 has no test-chosen figure: left out, not shifted
    assert s.loc[TEST_CHOSEN, "clean_ua"] == pytest.approx(95.0)
    assert s.loc[INFLATION, "mean"] == pytest.approx(((80 - 50) + (90 - 51)) / 2)
    assert point_label({"temperature": "7", "alpha": "0.3"}) == "temperature=7, alpha=0.3"


def test_the_grid_passes_over_folds_without_a_history_and_ce_only_scores_it_lacks(tmp_path):
    a = tmp_path / "a"
    _point(a, "best", {"S1": [0.50, 0.80], "S2": [0.60, 0.90]}, {"S1": 0.5, "S2": 0.6})
    extra = a / "folds" / "S0"
    (extra / "student_sup").mkdir(parents=True)  # an MLKD step still running (no history yet) in fold S0
    pd.read_csv(a / "folds" / "S1" / "student_sup" / "metrics.csv").assign(fold="S0").to_csv(
        extra / "student_sup" / "metrics.csv", index=False)
    pd.DataFrame({"epoch": [1], "val_ua": [0.5]}).to_csv(a / "folds" / "S1" / "student_unsup" / "history.csv",
                                                         index=False)  # the CE-only student's own history: not read
    for f in (tmp_path / "failed", tmp_path / "b"):
        f.mkdir()
    _point(tmp_path / "b", "best", {"S1": [0.7]}, {"S1": 0.7})
    (tmp_path / "b" / "folds" / "S1" / "student_unsup" / "metrics.csv").unlink()  # no CE-only score in S1
    table = grid_table([{"alpha": "0.1"}, {"alpha": "0.7"}, {"alpha": "0.3"}], [tmp_path / "failed", a, tmp_path / "b"],
                       [False, True, False])
    assert list(zip(table.point, table.fold)) == [("alpha=0.7", "S1"), ("alpha=0.7", "S2"), ("alpha=0.3", "S1")]
    assert np.isnan(table.ce_only_noisy_ua.iloc[2]) and table.ce_only_noisy_ua.iloc[0] == pytest.approx(40.0)


def test_the_readme_of_a_two_key_sweep_of_real_speech_has_no_synthetic_note(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    _point(a, "best", {"S1": [0.5, 0.8]}, {"S1": 0.5})
    _point(b, "best", {"S1": [0.6, 0.7]}, {"S1": 0.7})
    for folder in (a, b):
        make_config("micro", corpus="manifest", manifest=str(tmp_path / "own.csv"), noise_types=["factory"],
                    snrs=[0.0], conditions=[]).save(folder / "config.json")
    readme = write_grid(tmp_path, [{"temperature": "7", "alpha": "0.7"}, {"temperature": "1", "alpha": "0.3"}],
                        [a, b], [True, False])[3].read_text()
    assert readme.startswith("# Sweep of temperature, alpha\n\n## The grid: chosen on validation, reported on test\n")
