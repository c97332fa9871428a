"""A grid of student settings (``study/sweep.py``), chosen as the paper could not show: on validation, reported on
test. For each fold the grid point whose MLKD student had the best validation UA (the fold's own validation
split, the one model selection uses; ties to the study's own setting, then to the first point) is that fold's
choice, and the test UA of the choices is the grid's result. Beside it, labelled optimistic, the figure a
test-chosen grid search reports — the one point with the best mean test UA — and the gap between the two.

``grid.csv``: one row per point × fold: the point's settings, ``val_ua`` (the kept epoch's, %), the MLKD
student's test UA on clean speech, pooled over the trained noisy conditions and over the unseen ones
(``frontier.fold_scores``), the same for the CE-only student it is compared with, ``own`` (the study's setting)
and ``chosen``. ``grid_summary.csv``: per point the means over folds and how many folds chose it; then the
validation-chosen and the test-chosen figures, the inflation (test-chosen − validation-chosen) and the
validation-chosen MLKD − CE-only contrast, each paired over the folds with a 95 % CI and a Wilcoxon p.
``grid.png``: mean validation and mean test UA over the grid (a heatmap for two keys, lines for one)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..arms import method_arm
from ..config import load_config
from ..layout import StudyLayout, read_table
from .frontier import fold_scores
from .plots import SYNTHETIC_SUFFIX, heatmap, save
from .stats import paired_test

MEASURES = ("clean", "noisy", "unseen")
VALIDATION_CHOSEN, TEST_CHOSEN = "validation-chosen", "test-chosen (optimistic)"
INFLATION, CONTRAST = "inflation: test-chosen − validation-chosen", "validation-chosen MLKD − CE-only"


def point_label(point: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in point.items())


def kept_val_ua(history: pd.DataFrame, selection: str) -> float:
    """Validation UA (%) of the epoch training kept: the best (``selection`` "best") or the last."""
    return 100 * float(history.val_ua.iloc[-1] if selection == "last" else history.val_ua.max())


def grid_table(points: list[dict], folders: list[Path], own: list[bool]) -> pd.DataFrame:
    """``grid.csv``'s rows, read from each point's study folder (its steps' history and metrics)."""
    method = method_arm()
    versus = method.against[0]  # the paper's comparison: the CE-only student
    rows = []
    for order, (point, folder, is_own) in enumerate(zip(points, folders, own)):
        study = StudyLayout(folder)
        scored = [read_table(m.metrics) for m in study.models() if m.metrics.is_file()]
        if not scored:  # a point none of whose steps finished: nothing of it to read
            continue
        cfg, metrics = load_config(study.config), pd.concat(scored)
        ours, theirs = fold_scores(metrics, method.name, cfg), fold_scores(metrics, versus, cfg)
        for m in study.models(method.name):
            if not (m.history.is_file() and m.fold in ours.index):
                continue
            rows.append({"point": point_label(point), **point, "order": order, "fold": m.fold,
                         "val_ua": kept_val_ua(pd.read_csv(m.history), cfg.selection),
                         **{f"test_{k}_ua": ours.loc[m.fold, k] for k in MEASURES},
                         **{f"ce_only_{k}_ua": theirs.loc[m.fold, k] if m.fold in theirs.index else np.nan
                            for k in MEASURES}, "own": is_own})
    table = pd.DataFrame(rows)
    return table.assign(chosen=table.index.isin(choices(table).index)) if rows else table


def choices(table: pd.DataFrame) -> pd.DataFrame:
    """Each fold's row of the best validation UA; ties to the study's own setting, then to the earlier point. The
    test UA is never read."""
    ranked = table.assign(_own=~table.own).sort_values(["fold", "val_ua", "_own", "order"],
                                                       ascending=[True, False, True, True])
    return ranked.groupby("fold", sort=True).head(1).drop(columns="_own")


def _with_ci(name: str, point: str, values, **extra) -> dict:
    t = paired_test(np.asarray(values, dtype=float))
    return {"row": name, "point": point, **extra, "mean": t["mean"], "ci_low": t["ci_low"], "ci_high": t["ci_high"],
            "p": t["p"], "n_folds": t["n_folds"]}


def grid_summary(table: pd.DataFrame) -> pd.DataFrame:
    """``grid_summary.csv``: every point's means (``row`` "point"), then the four figures the grid reports, all in
    pooled noisy test UA (points; the validation-chosen and test-chosen rows also give clean and unseen means)."""
    per_point = table.groupby(["order", "point"], sort=True)
    rows = [{"row": "point", "point": point, "folds_chose": int(g.chosen.sum()), "own": bool(g.own.any()),
             "val_ua": g.val_ua.mean(), **{f"{k}_ua": g[f"test_{k}_ua"].mean() for k in MEASURES},
             "n_folds": len(g)} for (_, point), g in per_point]
    chosen = table[table.chosen].set_index("fold").sort_index()
    best = per_point.test_noisy_ua.mean().idxmax()[1]  # the one point a test-chosen search would report
    optimistic = table[table.point == best].set_index("fold").reindex(chosen.index)
    picks = "; ".join(f"{p} ×{n}" for p, n in chosen.point.value_counts(sort=False).items())
    rows += [_with_ci(VALIDATION_CHOSEN, picks, chosen.test_noisy_ua,
                      **{f"{k}_ua": chosen[f"test_{k}_ua"].mean() for k in MEASURES}),
             _with_ci(TEST_CHOSEN, best, optimistic.test_noisy_ua,
                      **{f"{k}_ua": optimistic[f"test_{k}_ua"].mean() for k in MEASURES}),
             _with_ci(INFLATION, best, optimistic.test_noisy_ua - chosen.test_noisy_ua),
             _with_ci(CONTRAST, picks, chosen.test_noisy_ua - chosen.ce_only_noisy_ua)]
    return pd.DataFrame(rows)


def plot_grid(table: pd.DataFrame, keys: list[str], synthetic: bool):
    """Mean validation and mean test (pooled noisy) UA over the grid: a heatmap each for two keys, a line each for
    one, a dot per point for more."""
    means = table.groupby(keys, sort=False)[["val_ua", "test_noisy_ua"]].mean()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, column, title in zip(axes, ("val_ua", "test_noisy_ua"), ("validation UA", "test UA, pooled noisy")):
        if len(keys) == 2:
            grid = means[column].unstack(keys[1])
            heatmap(ax, grid, "{:.1f}", "viridis", float(means.values.min()), float(means.values.max()), "UA (%)")
            ax.set_xlabel(keys[1])
            ax.set_ylabel(keys[0])
        else:
            labels = [", ".join(map(str, i)) if isinstance(i, tuple) else str(i) for i in means.index]
            ax.plot(range(len(means)), means[column], marker="o")
            ax.set_xticks(range(len(means)), labels, rotation=30 if len(keys) > 1 else 0)
            ax.set_xlabel(", ".join(keys))
            ax.set_ylabel("UA (%)")
        ax.set_title(f"mean {title}")
    fig.suptitle("The grid, mean over folds" + (SYNTHETIC_SUFFIX if synthetic else ""))
    fig.tight_layout()
    return fig


def summary_markdown(summary: pd.DataFrame) -> str:
    """The grid's README section: the points, then what a validation-chosen and a test-chosen search report."""
    points = summary[summary.row == "point"]
    lines = ["## The grid: chosen on validation, reported on test", "",
             "| point | folds that chose it | val UA | test UA clean | test UA noisy | test UA unseen |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r.point}{' (the study)' if r.own else ''} | {int(r.folds_chose)} | {r.val_ua:.1f} | "
              f"{r.clean_ua:.1f} | {r.noisy_ua:.1f} | {r.unseen_ua:.1f} |" for r in points.itertuples()]
    lines += ["", "Pooled noisy test UA (points), paired over the folds, 95 % CI, Wilcoxon p:", ""]
    for r in summary[summary.row != "point"].itertuples():
        sign = "+" if r.row in (INFLATION, CONTRAST) else ""
        ci = f" ({r.ci_low:{sign}.1f} … {r.ci_high:{sign}.1f})" if np.isfinite(r.ci_low) else " (one fold: no CI)"
        p = f", p = {r.p:.3f}" if sign and np.isfinite(r.p) else ""
        lines.append(f"- **{r.row}** ({r.point}): {r.mean:{sign}.1f}{ci}{p}")
    lines += ["", "The test-chosen figure picks its point on the test speakers: it is what a grid search scored on "
              "test data would report, and the inflation is how much that choice flatters the result."]
    return "\n".join(lines) + "\n"


def write_grid(out: Path, points: list[dict], folders: list[Path], own: list[bool]) -> list[Path]:
    """``grid.csv``, ``grid_summary.csv``, ``grid.png`` and ``README.md``'s grid section in the sweep folder."""
    table = grid_table(points, folders, own)
    if table.empty:
        raise FileNotFoundError(f"{out}: no grid point has a finished MLKD student to read")
    summary = grid_summary(table)
    keys = list(points[0])
    synthetic = load_config(StudyLayout(folders[0]).config).corpus == "synthetic"
    paths = [out / "grid.csv", out / "grid_summary.csv", out / "grid.png", out / "README.md"]
    table.drop(columns="order").to_csv(paths[0], index=False)
    summary.to_csv(paths[1], index=False)
    save(plot_grid(table, keys, synthetic), paths[2])
    note = "\n(synthetic speech: these figures show the pipeline works, not the paper's)\n" if synthetic else ""
    paths[3].write_text(f"# Sweep of {', '.join(keys)}\n{note}\n" + summary_markdown(summary)
                        + "\n![the grid](grid.png)\n")
    return paths
