"""What a study's headline rests on, gathered from its step folders: how far each model's layer states
are from the teacher's clean ones (``representation.csv``), whether model selection moved the result
(the selected against the last epoch), how much validation UA moves from epoch to epoch, and whether
the multi-level loss had flattened by the epoch that was kept."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..arms import trained
from ..layout import StudyLayout, read_table
from ..names import CLEAN
from .tables import trained_conditions, with_conditions


def collect_representation(study_dir: str | Path) -> pd.DataFrame:
    """Every trained model's ``representation.csv``, gathered into ``<study>/representation.csv``:
    model, fold, layer, teacher_layer, condition, severity, noise, snr_db, value (1 − R², see
    ``method/representation.py``)."""
    study = StudyLayout(study_dir)
    files = [m.path / "representation.csv" for m in study.models() if (m.path / "representation.csv").is_file()]
    columns = ["model", "fold", "layer", "teacher_layer", "condition", "severity", "noise", "snr_db", "value"]
    if not files:
        return pd.DataFrame(columns=columns)
    df = with_conditions(pd.concat([read_table(f) for f in files], ignore_index=True))[columns]
    df = df.sort_values(["model", "fold", "teacher_layer", "condition", "noise", "snr_db", "severity"],
                        ignore_index=True)
    df.to_csv(study.dir / "representation.csv", index=False)
    return df


def _pooled(metrics: pd.DataFrame) -> tuple[float, float]:
    """(mean UA over the noisy conditions, clean UA) of one model and fold, in %."""
    noisy = metrics[metrics.noise != CLEAN].ua.mean()
    clean = metrics[metrics.noise == CLEAN].ua.mean()
    return 100 * float(noisy), 100 * float(clean)


def selection_diagnostic(study_dir: str | Path) -> pd.DataFrame:
    """Per fold and trained model: the epoch model selection kept and the last one, and the test UA at
    each (pooled over the noisy conditions, and clean). Written to ``<study>/selection.csv``: if the
    two differ by more than the effects a table reports, selection decides the answer."""
    study = StudyLayout(study_dir)
    rows = []
    for m in study.models():
        record = m.path / "selection.json"
        if m.name not in trained() or not m.metrics.is_file() or not record.is_file():
            continue
        epochs = json.loads(record.read_text())
        kept = trained_conditions(read_table(m.metrics))
        last = trained_conditions(read_table(m.path / "metrics_last.csv")) \
            if (m.path / "metrics_last.csv").is_file() else kept
        (sel_noisy, sel_clean), (last_noisy, last_clean) = _pooled(kept), _pooled(last)
        rows.append(dict(model=m.name, fold=m.fold, **epochs, noisy_ua_selected=sel_noisy, noisy_ua_last=last_noisy,
                         clean_ua_selected=sel_clean, clean_ua_last=last_clean))
    df = pd.DataFrame(rows)
    if len(df):
        df["noisy_ua_last_minus_selected"] = df.noisy_ua_last - df.noisy_ua_selected
        df.to_csv(study.dir / "selection.csv", index=False)
    return df


def training_curves(study_dir: str | Path) -> pd.DataFrame:
    """Every trained model's ``history.csv``, with model and fold columns."""
    parts = [pd.read_csv(m.history).assign(model=m.name, fold=m.fold) for m in StudyLayout(study_dir).models()
             if m.name in trained() and m.history.is_file()]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def validation_movement(curves: pd.DataFrame) -> pd.DataFrame:
    """Per model: how much validation UA moves between consecutive epochs (mean and largest |Δ|, in
    points, over folds and epochs): the noise a single epoch's spike brings into model selection."""
    rows = []
    for model, g in curves.groupby("model"):
        steps = np.concatenate([np.abs(np.diff(f.sort_values("epoch").val_ua.to_numpy()))
                                for _, f in g.groupby("fold")])
        rows.append(dict(model=model, mean_abs_change=100 * float(steps.mean()) if len(steps) else np.nan,
                         max_abs_change=100 * float(steps.max()) if len(steps) else np.nan))
    return pd.DataFrame(rows)


def multilevel_convergence(curves: pd.DataFrame) -> pd.DataFrame:
    """For the distilled students: L_ML (training and validation) at the first and last epochs, mean over
    folds, and its fall over the last quarter of the epochs relative to its total fall (near 0: flattened)."""
    if "ml" not in curves:
        return pd.DataFrame()
    rows = []
    for model, g in curves.dropna(subset=["ml"]).groupby("model"):
        mean = g.groupby("epoch")[[c for c in ("ml", "val_ml") if c in g]].mean()
        tail = mean.index[-max(2, len(mean) // 4):]
        row = {"model": model, "epochs": len(mean)}
        for c in mean:
            total = mean[c].iloc[0] - mean[c].iloc[-1]
            row |= {f"{c}_first": mean[c].iloc[0], f"{c}_last": mean[c].iloc[-1],
                    f"{c}_late_share": (mean[c].loc[tail[0]] - mean[c].iloc[-1]) / total if total else np.nan}
        rows.append(row)
    return pd.DataFrame(rows)
