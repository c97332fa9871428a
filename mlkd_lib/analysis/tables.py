"""Collect a study's metrics and write the paper's Tables 1–3 and the plots.

Every UA cell is the mean over folds (in %, as in the paper) with the spread across
folds (std) beside it. For synthetic-speech studies every table and plot says so.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..arms import STUDENT_SUP, STUDENT_UNSUP, label, method_arm, models, study_arms
from ..layout import StudyLayout, read_table
from ..names import BASELINE, CLEAN, NO_LEVEL, NOISE, TEACHER, reference_noise

# The paper's own figures (UA %), shown beside ours for the paper preset.
PAPER_TABLE1 = {  # factory noise
    TEACHER: [41.03, 53.95, 65.00, 71.55, 75.75, 77.78],
    STUDENT_UNSUP: [57.88, 61.68, 65.13, 67.78, 68.00, 72.18],
    STUDENT_SUP: [63.98, 66.10, 68.50, 69.10, 69.57, 73.86],
}
PAPER_TABLE2 = {  # (baseline, MLKD) at 0, 5, 10, 15, 20 dB
    "babble": ([45.12, 46.87, 53.01, 55.81, 56.12], [61.25, 66.90, 68.67, 69.40, 71.70]),
    "f16": ([40.32, 41.03, 44.65, 48.11, 53.51], [61.00, 64.07, 68.40, 69.15, 70.62]),
    "factory": ([42.71, 43.93, 46.01, 48.12, 49.13], [63.98, 66.10, 68.50, 69.10, 69.57]),
    "hfchannel": ([45.01, 46.73, 48.12, 48.76, 50.98], [59.50, 64.65, 67.23, 70.35, 70.60]),
    "volvo": ([48.93, 51.87, 54.76, 56.95, 59.10], [68.05, 69.18, 69.55, 70.25, 70.75]),
}
PAPER_TABLE3 = {"teacher": (360.17, 926.0), "student": (197.91, 444.0)}  # MiB, seconds for 507 utterances
PAPER_SNRS = [0.0, 5.0, 10.0, 15.0, 20.0]
# The paper's printed baseline "Mean" row repeats its 10 dB row (53.01, 44.65, 46.01, 48.12, 54.76),
# so our paper Mean cells are the mean of the paper's five SNR rows, marked so nobody mistakes them.
PAPER_MEAN_NOTE = ("† Paper Mean: recomputed from the paper's five SNR rows (its printed baseline Mean row "
                   "repeats the 10 dB row).")
SYNTHETIC_NOTE = ("Synthetic speech (demo preset): these numbers show that the pipeline works end to end; "
                  "they are not the paper's figures.")


METRICS_COLUMNS = ["model", "condition", "severity", "noise", "snr_db", "fold", "ua", "wa", "n"]


def with_conditions(metrics: pd.DataFrame) -> pd.DataFrame:
    """Metrics rows with ``condition`` and ``severity``, also from a study made before the test-only conditions."""
    if "condition" in metrics:
        return metrics
    return metrics.assign(condition=np.where(metrics.noise == CLEAN, CLEAN, NOISE), severity=metrics.snr_db)


def trained_conditions(metrics: pd.DataFrame) -> pd.DataFrame:
    """The paper's conditions only — clean speech and the noise types the students trained on — for Tables
    1–2, the statistics and every figure of the paper's question; the test-only ones go to Table 4."""
    metrics = with_conditions(metrics)
    return metrics[metrics.condition.isin([CLEAN, NOISE])].reset_index(drop=True)


def collect_metrics(study_dir: str | Path) -> pd.DataFrame:
    """Concatenate every step's ``metrics.csv`` into ``<study>/metrics.csv`` (long format, every condition)."""
    study = StudyLayout(study_dir)
    files = [m.metrics for m in study.models() if m.metrics.is_file()]
    if not files:
        raise FileNotFoundError(f"{study.dir}: no model of any fold has metrics.csv yet — run the training notebooks")
    df = with_conditions(pd.concat([read_table(f) for f in files], ignore_index=True))
    df = df[METRICS_COLUMNS].sort_values(["model", "condition", "noise", "snr_db", "severity", "fold"],
                                         ignore_index=True)
    df.to_csv(study.metrics, index=False)
    return df


def summarise(metrics: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over folds of UA and WA (in %) per model and condition."""
    m = metrics.assign(snr_db=metrics["snr_db"].fillna(NO_LEVEL))
    g = m.groupby(["model", "noise", "snr_db"])
    out = g.agg(ua_mean=("ua", "mean"), ua_std=("ua", "std"), wa_mean=("wa", "mean"), wa_std=("wa", "std"),
                folds=("fold", "nunique")).reset_index()
    for c in ("ua_mean", "ua_std", "wa_mean", "wa_std"):
        out[c] = 100 * out[c]
    out["snr_db"] = out["snr_db"].replace(NO_LEVEL, np.nan)
    return out


def _cell(mean: float, std: float) -> str:
    if np.isnan(mean):
        return "–"
    return f"{mean:.2f} ± {std:.2f}" if not np.isnan(std) else f"{mean:.2f}"


def _lookup(summary: pd.DataFrame, model: str, noise: str, snr: float | None) -> tuple[float, float]:
    sel = summary[(summary.model == model) & (summary.noise == noise)]
    sel = sel[sel.snr_db.isna()] if snr is None else sel[np.isclose(sel.snr_db, snr)]
    return (float(sel.ua_mean.iloc[0]), float(sel.ua_std.iloc[0])) if len(sel) else (np.nan, np.nan)


def table1(summary: pd.DataFrame, snrs: list[float], noise: str = "factory", paper: bool = False,
           marked: set | None = None, labels: dict | None = None, arms=(STUDENT_UNSUP, STUDENT_SUP)) -> pd.DataFrame:
    """The teacher and the study's student ``arms`` (``arms.study_arms``) on ``noise`` at each SNR and clean.
    ``marked``: the (noise, snr) cells where MLKD differs significantly from the paper's CE-only student (*);
    ``labels``: row names (``arm_labels``)."""
    cols = [f"SNR = {s:g} dB" for s in snrs] + ["clean speech"]
    keys = [(noise, float(s)) for s in snrs] + [("clean", None)]
    rows = []
    for model in (TEACHER, *arms):
        cells = [_lookup(summary, model, noise, s) for s in snrs] + [_lookup(summary, model, "clean", None)]
        star = [" *" if model == method_arm().name and k in (marked or set()) else "" for k in keys]
        rows.append({"model": (labels or {m: label(m) for m in models()})[model],
                     **{c: _cell(*v) + m for c, v, m in zip(cols, cells, star)},
                     **{f"{c} mean": v[0] for c, v in zip(cols, cells)},
                     **{f"{c} std": v[1] for c, v in zip(cols, cells)}})
        if paper and list(snrs) == PAPER_SNRS and model in PAPER_TABLE1:
            rows.append({"model": label(model) + " (paper)",
                         **{c: f"{v:.2f}" for c, v in zip(cols, PAPER_TABLE1[model])}})
    return pd.DataFrame(rows)


def arm_labels(arms: dict[str, tuple[str, str]]) -> dict[str, str]:
    """Row names that say what each student arm is: its loss and where its layers started."""
    where = {"teacher": "from the teacher's even layers", "pretrained": "from the pretrained encoder's even layers"}
    return {**{m: label(m) for m in models()}, **{m: f"{label(m)}, {where[init]}" for m, (_, init) in arms.items()}}


def table2(summary: pd.DataFrame, noise_types: list[str], snrs: list[float], paper: bool = False,
           marked: set | None = None) -> pd.DataFrame:
    """Baseline vs MLKD for each noise type and SNR, with per-type means over SNRs (with ``paper``, the
    paper's cells beside ours; its Mean cells recomputed, see ``PAPER_MEAN_NOTE``).
    ``marked``: the (noise, snr) cells where MLKD differs significantly from the baseline (*)."""
    rows = []
    for s in list(snrs) + ["Mean"]:
        row = {"SNR": f"{s:g} dB" if s != "Mean" else "Mean"}
        for nt in noise_types:
            for model, tag in ((BASELINE, "baseline"), (method_arm().name, "MLKD")):
                if s == "Mean":
                    vals = [_lookup(summary, model, nt, x)[0] for x in snrs]
                    mean, std = float(np.nanmean(vals)) if not all(np.isnan(vals)) else np.nan, np.nan
                else:
                    mean, std = _lookup(summary, model, nt, s)
                star = tag == "MLKD" and s != "Mean" and (nt, float(s)) in (marked or set())
                row[f"{nt} {tag}"] = _cell(mean, std) + (" *" if star else "")
                row[f"{nt} {tag} mean"] = mean
                if paper and nt in PAPER_TABLE2 and list(snrs) == PAPER_SNRS:
                    ref = PAPER_TABLE2[nt][0 if model == BASELINE else 1]
                    row[f"{nt} {tag} (paper)"] = (f"{np.mean(ref):.2f} †" if s == "Mean"
                                                   else f"{ref[snrs.index(s)]:.2f}")
        rows.append(row)
    return pd.DataFrame(rows)


TABLE3_ROW = {"torch": "Student", "onnx_fp32": "Student ONNX fp32", "onnx_int8": "Student ONNX int8"}


def table3(bench: dict, paper: bool = False, deployed: pd.DataFrame | None = None) -> pd.DataFrame:
    """Parameters (fp32 MiB) and inference time of teacher vs student, measured together; when the
    bench timed the deployed student (``student_onnx_s`` …) its ONNX rows follow: file MiB, time in the
    same rounds, and from ``deployed`` (:func:`.deploy.summarise_deployed`) UA and agreement."""
    student = TABLE3_ROW["torch"]
    rows = [{"model": "Teacher", "param_mib": round(bench["teacher_mib"], 2), "time_s": round(bench["teacher_s"], 3)},
            {"model": student, "param_mib": round(bench["student_mib"], 2), "time_s": round(bench["student_s"], 3)},
            {"model": f"{student} / teacher", "param_mib": round(bench["student_mib"] / bench["teacher_mib"], 3),
             "time_s": round(bench["ratio"], 3)}]
    for key, version in (("onnx", "onnx_fp32"), ("onnx_int8", "onnx_int8")):
        label = TABLE3_ROW[version]
        if f"student_{key}_s" in bench:
            rows += [{"model": label, "param_mib": round(bench[f"student_{key}_mib"], 2),
                      "time_s": round(bench[f"student_{key}_s"], 3)},
                     {"model": f"{label} / teacher",
                      "param_mib": round(bench[f"student_{key}_mib"] / bench["teacher_mib"], 3),
                      "time_s": round(bench[f"student_{key}_vs_teacher"], 3)}]
    df = pd.DataFrame(rows)
    df["utterances"] = bench["utterances"]
    if deployed is not None:
        by_row = {TABLE3_ROW[v]: r for v, r in deployed.set_index("version").iterrows()}
        for c in [c for c in deployed.columns if c.startswith(("UA ", "agrees with torch"))]:
            df[c] = [round(float(by_row[m][c]), 2) if m in by_row else np.nan for m in df["model"]]
    if paper:
        (t_mib, t_s), (s_mib, s_s) = PAPER_TABLE3["teacher"], PAPER_TABLE3["student"]
        rest = [np.nan] * (len(df) - 3)
        df["param_mib (paper)"] = [t_mib, s_mib, round(s_mib / t_mib, 3)] + rest
        df["time_s (paper, 507 utt.)"] = [t_s, s_s, round(s_s / t_s, 3)] + rest
    return df


UA_CAPTION = "UA in % (mean ± std over folds)."


def save_table(df: pd.DataFrame, study_dir: Path, name: str, title: str, synthetic: bool,
               caption: str = UA_CAPTION) -> Path:
    """``name.csv`` (all columns, numbers included) and ``name.md`` (the readable cells)."""
    df.to_csv(study_dir / f"{name}.csv", index=False)
    shown = df[[c for c in df.columns if not c.endswith((" mean", " std"))]]
    shown = shown.astype(object).where(shown.notna(), "–")  # an empty cell reads as a dash, not "nan"
    note = f"\n\n> {SYNTHETIC_NOTE}\n" if synthetic else "\n"
    (study_dir / f"{name}.md").write_text(f"### {title}\n\n{caption}{note}\n"
                                          + shown.to_markdown(index=False, disable_numparse=True) + "\n")
    return study_dir / f"{name}.md"


SIGNIFICANCE = "Wilcoxon signed-rank over folds, Benjamini–Hochberg q < 0.05 over the cells of the comparison"
TABLE1_CAPTION = UA_CAPTION + (" The student without supervision is the paper's \"trained independently\" "
                               "(cross-entropy only); the control has its loss and the MLKD student's start. "
                               f"* MLKD differs from the student without supervision ({SIGNIFICANCE}; stats.csv).")
TABLE2_CAPTION = UA_CAPTION + f" * MLKD differs from the baseline ({SIGNIFICANCE}; stats.csv)."
ENHANCEMENT_CAPTION = ("Mean over the scored test utterances of every fold (02b): noisy and enhanced audio against "
                       "the clean speech; Δ = enhanced − noisy.")
TABLE3_CAPTION = ("Parameters: fp32 MiB (ONNX rows: file MiB). Time: seconds to classify the utterances one by one "
                  "on the CPU, median of interleaved rounds, same threads. UA (%, mean over all folds, batch 1) and "
                  "agreement with the PyTorch student's predictions: the MLKD student exported by `mlkd export` "
                  "(deployed.csv).")


def write_table1(study_dir: Path, summary: pd.DataFrame, cfg, marked: set) -> Path:
    noise = reference_noise(cfg.noise_types)
    synthetic = cfg.corpus == "synthetic"
    arms = study_arms(cfg)
    t1 = table1(summary, cfg.snrs, noise, paper=not synthetic, marked=marked, labels=arm_labels(arms), arms=arms)
    return save_table(t1, study_dir, "table1", f"Table 1 — UA on {noise} noise", synthetic, TABLE1_CAPTION)


def write_table2(study_dir: Path, summary: pd.DataFrame, cfg, marked: set) -> Path:
    synthetic = cfg.corpus == "synthetic"
    t2 = table2(summary, cfg.noise_types, cfg.snrs, paper=not synthetic, marked=marked)
    caption = TABLE2_CAPTION + ("" if synthetic else " " + PAPER_MEAN_NOTE)
    return save_table(t2, study_dir, "table2", "Table 2 — baseline (VAD + NMF) vs MLKD", synthetic, caption)


def write_enhancement_table(study_dir: Path, synthetic: bool) -> Path:
    return save_table(enhancement_table(study_dir), study_dir, "enhancement",
                      "VAD + NMF enhancement: PESQ-WB and STOI", synthetic, ENHANCEMENT_CAPTION)


def write_table3(study_dir: Path, timing: dict, synthetic: bool, deployed: pd.DataFrame | None) -> Path:
    title = (f"Table 3 — size and inference time ({timing['utterances']} test utterances of fold {timing['fold']}, "
             f"{timing['device']})")
    return save_table(table3(timing, paper=not synthetic, deployed=deployed), study_dir, "table3", title, synthetic,
                      TABLE3_CAPTION)


def collect_predictions(study_dir: str | Path) -> pd.DataFrame:
    """Every step's per-utterance predictions, with ``model`` and ``fold`` columns."""
    parts = []
    for m in StudyLayout(study_dir).models():
        if m.predictions.is_file():
            parts.append(read_table(m.predictions).assign(model=m.name, fold=m.fold))
    if not parts:
        raise FileNotFoundError(f"{study_dir}: no predictions yet")
    return pd.concat(parts, ignore_index=True)


def enhancement_table(study_dir: str | Path) -> pd.DataFrame:
    """PESQ-WB and STOI of the noisy and the VAD + NMF-enhanced audio (02b's ``enhancement.csv``),
    mean over every fold's scored utterances per noise and SNR: does the enhancement itself help?"""
    files = [m.enhancement for m in StudyLayout(study_dir).models(BASELINE) if m.enhancement.is_file()]
    if not files:
        raise FileNotFoundError(f"{study_dir}: no fold's baseline/enhancement.csv yet — run 02b first")
    scores = pd.concat([read_table(f) for f in files], ignore_index=True)
    table = scores.groupby(["noise", "snr_db"]).agg(
        utterances=("utt_id", "size"),
        **{f"{m} {k}": (f"{m}_{k}", "mean") for m in ("pesq_wb", "stoi") for k in ("noisy", "enhanced")}).reset_index()
    for m in ("pesq_wb", "stoi"):
        table[f"{m} Δ"] = table[f"{m} enhanced"] - table[f"{m} noisy"]
    return table.round(3)


def write_study_readme(study_dir: Path, tables: list[Path], plots: list[Path], synthetic: bool,
                       notes: list[str] = ()) -> Path:
    """``<study>/README.md``: the tables and links to the plots and notebooks; ``notes``: what the reader should
    know first (a test family the data left out)."""
    parts = [f"# Study `{study_dir.name}`\n"]
    if synthetic:
        parts.append(f"> {SYNTHETIC_NOTE}\n")
    parts += [f"> Note: {n}\n" for n in notes]
    parts += [t.read_text() for t in tables]
    parts.append("## Plots\n" + "\n".join(f"![{p.stem}]({p.relative_to(study_dir)})" for p in plots))
    nbs = sorted(study_dir.glob("*.ipynb")) + sorted(study_dir.glob("folds/*/*.ipynb"))
    parts.append("## Executed notebooks\n" + "\n".join(f"- {n.relative_to(study_dir)}" for n in nbs))
    path = study_dir / "README.md"
    path.write_text("\n\n".join(parts) + "\n")
    return path
