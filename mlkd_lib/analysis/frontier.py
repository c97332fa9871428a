"""The depth frontier of a sweep (``study/sweep.py``): accuracy in noise against CPU cost, depth by depth — its tables
and plot from what ``deploy/frontier.py`` measured.

``frontier.csv``: one row per depth × arm (MLKD, CE-only) × precision (fp32, int8), and the teacher's (fp32).
- parameters: counted in the fold's checkpoint; file_mib: the exported ONNX file (``deploy/export.py``).
- latency_ms_per_s: milliseconds of onnxruntime CPU time per second of audio, one thread, batch 1, on the
  test utterances of one fold (``bench_utterances`` of them), every model timed in the same interleaved rounds
  (``deploy/scoring.py``), the median round. Measured on the machine that writes the table, each run.
- UA (%): clean, pooled noisy (per fold the mean over the study's training noise × SNR conditions, then
  mean and std over folds) and, where ``metrics.csv`` has a ``condition`` column naming test-only conditions,
  pooled unseen. fp32 rows read the depth folder's steps' own ``metrics.csv`` (the PyTorch models, which the
  fp32 exports match to 1e-4 in the logits). int8 rows score the int8 export of every fold here, on the same test audio
  (``deploy/scoring.py``), under ``int8_ua``'s conditions: "deploy" (default; Table 3's: clean and Table 1's
  noise at 0 and 10 dB where the study has them — every fold × arm × depth then costs an fp32 export, its
  quantization and the scoring, seconds each on the tiny encoder), "all" (every training condition: comparable
  to the fp32 rows, and plotted with them; about eight times the scoring of "deploy" in the demo) or "off"
  (int8 UA left empty, only the timing fold exported; latency and size are still measured). ``ua_conditions`` says
  what each row's UA covers, ``noisy_as_fp32`` whether its noisy UA pools the fp32 rows' conditions, and
  ``fp32_noisy_ua_same_conditions_mean`` gives int8 rows the fp32 model's UA on exactly their conditions.

``frontier_contrasts.csv``: MLKD − CE-only in pooled noisy UA points, paired by fold at each depth
(``stats.paired_test``: 95 % bootstrap CI, Wilcoxon p), Benjamini–Hochberg q over the depths.
``frontier.png``: noisy UA against latency and against size, a line per arm, and the contrast per depth.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from ..arms import ARMS as STUDENT_ARMS
from ..arms import color, method_arm
from ..layout import StudyLayout, read_table
from ..names import CLEAN, TEACHER
from .plots import SYNTHETIC_SUFFIX
from .stats import paired_test, paper_contrast

ARMS = {a.name: a.short for a in STUDENT_ARMS if a.frontier}  # the arms retrained at every depth
TEACHER_ARM = "teacher"
PRECISIONS = ("fp32", "int8")
# a ``condition`` value that names a training noise row of metrics.csv rather than a test-only condition
SEEN_CONDITION_NAMES = {"", "noise", "seen", "train", "training", CLEAN}


def read_sweep(out: str | Path) -> dict:
    """``sweep.json``: the study, the depths and their folders, the study's own depth."""
    path = Path(out) / "sweep.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: is {out} a sweep folder made by `mlkd sweep`?")
    return json.loads(path.read_text())


def condition_kinds(metrics: pd.DataFrame, cfg) -> pd.Series:
    """Each metrics row as "clean", "seen" (a training noise at a training SNR) or "unseen" (a test-only
    condition: only where metrics.csv has a ``condition`` column, whose value then names the condition —
    empty, the noise, or its "noise SNR dB" label for the training ones)."""
    snr = metrics["snr_db"].astype(float)
    seen = metrics["noise"].isin(cfg.noise_types) & snr.apply(lambda s: any(np.isclose(s, x) for x in cfg.snrs))
    clean = metrics["noise"] == CLEAN
    if "condition" in metrics:
        name = metrics["condition"].fillna("").astype(str).str.strip()
        label = metrics["noise"] + " " + snr.map(lambda s: f"{s:g}") + " dB"
        plain = name.str.lower().isin(SEEN_CONDITION_NAMES) | (name == metrics["noise"]) | (name == label)
        kinds = np.where(clean & plain, "clean", np.where(seen & plain, "seen", "unseen"))
    else:
        kinds = np.where(clean, "clean", np.where(seen, "seen", "other"))
    return pd.Series(kinds, index=metrics.index)


def fold_scores(metrics: pd.DataFrame, model: str, cfg) -> pd.DataFrame:
    """Per fold, ``model``'s UA (%) on clean speech, pooled over the seen noisy conditions and over the unseen
    ones (NaN where there are none): index fold, columns clean, noisy, unseen."""
    m = metrics[metrics["model"] == model]
    if not len(m):
        return pd.DataFrame(columns=["clean", "noisy", "unseen"], dtype=float)
    kind = condition_kinds(m, cfg)
    parts = {k: 100 * m[kind == k].groupby("fold")["ua"].mean() for k in ("clean", "seen", "unseen")}
    table = pd.DataFrame({"clean": parts["clean"], "noisy": parts["seen"], "unseen": parts["unseen"]})
    return table.sort_index()


def spread(values) -> tuple[float, float, int]:
    """(mean, std over folds, number of folds) of the finite ``values``; the std is NaN below two folds."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if not len(v):
        return np.nan, np.nan, 0
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else np.nan, len(v)


def _snr_text(snrs) -> str:
    return ", ".join(f"{s:g}" for s in snrs) + " dB"


def seen_text(cfg) -> str:
    """What a pooled noisy UA of the study covers, in words."""
    n = len(cfg.noise_types) * len(cfg.snrs)
    return f"{n} noisy ({', '.join(cfg.noise_types)} at {_snr_text(cfg.snrs)})"


def step_metrics(study_dir: str | Path, models) -> pd.DataFrame:
    """The metrics rows of ``models``' finished steps, read from each step's own ``metrics.csv`` (every column it
    has, ``condition`` included; the study's collected metrics.csv is the analysis step's, which may lag)."""
    files = [m.metrics for model in models for m in StudyLayout(study_dir).models(model)
             if m.done.is_file() and m.metrics.is_file()]
    return pd.concat([read_table(f) for f in files], ignore_index=True) if files else pd.DataFrame(
        columns=["model", "noise", "snr_db", "fold", "ua", "wa", "n"])


def frontier_contrasts(per_fold: pd.DataFrame, study_depth: int, arms: dict, seed: int = 0) -> pd.DataFrame:
    """MLKD − CE-only (fp32, pooled noisy UA points) paired by fold at each depth: ``stats.paired_test``'s mean,
    95 % CI, Wilcoxon p, MDE, and the Benjamini–Hochberg q over the depths."""
    fp32 = per_fold[per_fold.precision == "fp32"]
    rows = []
    for n, g in fp32.groupby("depth", sort=True):
        wide = g.pivot_table(index="fold", columns="model", values="noisy")
        if not set(ARMS) <= set(wide.columns):
            continue
        method, paper_ce = method_arm().name, method_arm().against[0]
        d = (wide[method] - wide[paper_ce]).dropna()
        rows.append({"depth": int(n), "study_depth": int(n) == study_depth, "comparison": paper_contrast(arms),
                     "measure": "pooled noisy UA (points), MLKD − CE-only", **paired_test(d.to_numpy(), seed),
                     "mlkd_noisy_ua": float(wide[method].mean()), "ce_noisy_ua": float(wide[paper_ce].mean())})
    table = pd.DataFrame(rows)
    if len(table):
        p = table["p"].to_numpy(dtype=float)
        q, ok = np.full(len(p), np.nan), np.isfinite(p)
        if ok.any():
            q[ok] = scipy_stats.false_discovery_control(p[ok])
        table.insert(table.columns.get_loc("p") + 1, "q_bh", q)
    return table


def _arm_lines(ax, frontier: pd.DataFrame, x: str, comparable_int8: bool) -> None:
    for model, arm in ARMS.items():
        for precision in PRECISIONS if comparable_int8 else ("fp32",):
            f = frontier[(frontier.model == model) & (frontier.precision == precision)].sort_values("depth")
            if not len(f) or f["noisy_ua_mean"].isna().all():
                continue
            fp32 = precision == "fp32"
            ax.errorbar(f[x], f["noisy_ua_mean"], yerr=f["noisy_ua_std"].fillna(0), color=color(model),
                        ls="-" if fp32 else "--", marker="o", mfc=color(model) if fp32 else "white", capsize=3,
                        label=f"{arm} {precision}")
            for r in f.itertuples():
                ax.annotate(f"{r.depth}", (getattr(r, x), r.noisy_ua_mean), textcoords="offset points",
                            xytext=(7, 6), fontsize=8, color=color(model))
            own = f[f.study_depth]
            ax.scatter(own[x], own["noisy_ua_mean"], s=220, facecolors="none", edgecolors="black", lw=1.2,
                       label="the study's own depth" if model == method_arm().name and fp32 else None, zorder=5)
    t = frontier[frontier.model == TEACHER]
    ax.errorbar(t[x], t["noisy_ua_mean"], yerr=t["noisy_ua_std"].fillna(0), color=color(TEACHER), marker="*",
                ms=14, ls="none", capsize=3, label="teacher (clean-trained)")
    for r in t.itertuples():
        ax.annotate(f"teacher, {r.depth}", (getattr(r, x), r.noisy_ua_mean), textcoords="offset points",
                    xytext=(6, -10), fontsize=8, color=color(TEACHER))


def plot_frontier(frontier: pd.DataFrame, contrasts: pd.DataFrame, synthetic: bool):
    """Noisy UA against CPU latency and against file size (a line per arm, points labelled by their depth,
    error bars: std over folds; int8 lines only where their UA covers the fp32 rows' conditions), and MLKD −
    CE-only per depth with its 95 % CI: does distillation help more when the student is small?"""
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6))
    int8 = frontier[frontier.precision == "int8"]
    comparable = bool(len(int8)) and bool(int8["noisy_as_fp32"].all()) and int8["noisy_ua_mean"].notna().any()
    for ax, x, label in ((axes[0], "latency_ms_per_s", "CPU latency (ms per s of audio, 1 thread, ONNX)"),
                         (axes[1], "file_mib", "ONNX file size (MiB)")):
        _arm_lines(ax, frontier, x, comparable)
        ax.set(xlabel=label, ylabel="UA % pooled over the noisy conditions (labels: layers)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, loc="best")
    n_folds = int(frontier["n_folds"].max()) if len(frontier) else 0
    note = "" if comparable else "int8 rows (their UA covers fewer conditions): frontier.csv"
    axes[0].set_title(f"error bars: std over {n_folds} fold(s)" + (f"\n{note}" if note else ""), fontsize=9)
    ax = axes[2]
    if len(contrasts):
        c = contrasts.sort_values("depth")
        lo, hi = (c["mean"] - c["ci_low"]).fillna(0), (c["ci_high"] - c["mean"]).fillna(0)
        ax.errorbar(c["depth"], c["mean"], yerr=[lo, hi], color=color(method_arm().name), marker="o",
                    capsize=4)
        for r in c.itertuples():
            text = f"q={r.q_bh:.2g}" if np.isfinite(r.q_bh) else f"{r.n_folds} fold(s)"
            ax.annotate(text, (r.depth, r.mean), textcoords="offset points", xytext=(5, 5), fontsize=8)
        own = c[c.study_depth]
        ax.scatter(own["depth"], own["mean"], s=220, facecolors="none", edgecolors="black", lw=1.2, zorder=5)
        ax.set_xticks(sorted(c["depth"]))
    ax.axhline(0, ls=":", c="grey")
    ax.set(xlabel="student layers", ylabel="MLKD − CE-only (noisy UA points)",
           title="paired by fold, 95 % bootstrap CI; q: BH over depths")
    ax.title.set_fontsize(9)
    fig.suptitle("How small can the student be? Accuracy in noise against CPU cost"
                 + (SYNTHETIC_SUFFIX if synthetic else ""))
    fig.tight_layout()
    return fig
