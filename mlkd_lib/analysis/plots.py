"""Figures for the notebooks and the study folder (matplotlib + seaborn)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .. import arms
from ..arms import DEEP
from ..data.audio import SAMPLE_RATE
from ..method.evaluate import confusion
from ..names import BASELINE

SYNTHETIC_SUFFIX = "\n(synthetic speech — shows the pipeline, not the paper's figures)"


def _title(text: str, synthetic: bool) -> str:
    return text + (SYNTHETIC_SUFFIX if synthetic else "")


def panel_grid(n: int, width: float, height: float = 3.0):
    """A figure of ``n`` panels, at most four a row, sharing the y axis; the spare places left blank."""
    cols = min(4, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False, sharey=True)
    for ax in axes.flat[n:]:
        ax.axis("off")
    return fig, axes


def legend_below(fig, axes, ylabel: str, title: str):
    """``panel_grid``'s figure finished: the y label on each row, the first panel's legend under all, the title."""
    for row in axes:
        row[0].set_ylabel(ylabel)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, frameon=False)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig


def heatmap(ax, grid: pd.DataFrame, fmt: str, cmap: str, vmin: float, vmax: float, label: str | None = None):
    """A table of numbers as coloured cells, each written in, the rows and columns named (a colour bar
    when ``label`` is given)."""
    values = grid.to_numpy(dtype=float)
    image = ax.imshow(values, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    for (r, c), v in np.ndenumerate(values):
        if np.isfinite(v):
            red, green, blue, _ = image.cmap(image.norm(v))
            dark = 0.299 * red + 0.587 * green + 0.114 * blue < 0.5  # white text on a dark cell
            ax.text(c, r, fmt.format(v), ha="center", va="center", fontsize=8, color="white" if dark else "black")
    ax.set_xticks(range(values.shape[1]), [str(c) for c in grid.columns])
    ax.set_yticks(range(values.shape[0]), [str(i) for i in grid.index])
    if label:
        ax.figure.colorbar(image, ax=ax, label=label)


def spectrogram(ax, x: np.ndarray, title: str = "") -> None:
    ax.specgram(x, NFFT=512, Fs=SAMPLE_RATE, noverlap=352, cmap="magma", vmin=-140)
    ax.set(title=title, xlabel="time (s)", ylabel="Hz")


def spectrograms(signals: dict[str, np.ndarray | list[np.ndarray]], seconds: float | None = None):
    """One spectrogram per signal, side by side (the first ``seconds`` of each; of a noise type with several
    recordings, its first)."""
    fig, axes = plt.subplots(1, len(signals), figsize=(3.6 * len(signals), 3), sharey=True, squeeze=False)
    for ax, (name, x) in zip(axes[0], signals.items()):
        x = x[0] if isinstance(x, (list, tuple)) else x
        spectrogram(ax, x[: int(seconds * SAMPLE_RATE)] if seconds else x, name)
    fig.tight_layout()
    return fig


def durations(manifest: pd.DataFrame, corpus: str):
    """Utterance durations per emotion, stacked."""
    import seaborn as sns  # only 01 draws it
    ax = sns.histplot(manifest, x="duration_s", hue="emotion", multiple="stack", bins=30)
    ax.set(xlabel="duration (s)", title=f"{corpus}: {manifest.duration_s.sum() / 60:.1f} minutes of speech")
    return ax.figure


def nmf_convergence(histories: dict[str, dict[str, list[float]]]):
    """The KL objective of the baseline's two NMF fits against the iteration, relative to its
    last value (log scale): the noise basis on the non-speech frames, then the activations."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
    for label, h in histories.items():
        for ax, part in zip(axes, ("noise basis", "fit")):
            v = np.asarray(h[part])
            ax.semilogy(np.arange(1, len(v) + 1), v / v[-1] - 1 + 1e-6, label=label)
    for ax, title in zip(axes, ("noise basis (non-speech frames)", "activations (whole utterance)")):
        ax.set(title=title, xlabel="iteration", ylabel="KL / final KL − 1")
        ax.axhline(0.01, ls=":", c="grey")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    return fig


def enhancement_summary(scores: pd.DataFrame):
    """Mean PESQ-WB and STOI of noisy and enhanced speech per noise type and SNR."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    for ax, measure in zip(axes, ("pesq_wb", "stoi")):
        g = scores.groupby(["noise", "snr_db"])[[f"{measure}_noisy", f"{measure}_enhanced"]].mean().reset_index()
        for i, nt in enumerate(sorted(g.noise.unique())):
            d = g[g.noise == nt]
            color = DEEP[i % len(DEEP)]
            ax.plot(d.snr_db, d[f"{measure}_noisy"], ls="--", marker="o", color=color, ms=3)
            ax.plot(d.snr_db, d[f"{measure}_enhanced"], ls="-", marker="o", color=color, ms=3, label=nt)
        ax.set(title=f"{'PESQ-WB' if measure == 'pesq_wb' else 'STOI'} (dashed: noisy, solid: enhanced)",
               xlabel="SNR (dB)")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    return fig


def learning_curves(history: pd.DataFrame, title: str):
    """Training losses and validation UA per epoch; for a distilled student also L_ML on training and
    validation, to see whether the multi-level term had flattened by the epoch that was kept."""
    ml = "ml" in history
    fig, axes = plt.subplots(1, 3 if ml else 2, figsize=(15 if ml else 10, 3.2))
    loss_cols = [c for c in ("loss", "ce", "kd", "ml") if c in history]
    history.plot(x="epoch", y=loss_cols, ax=axes[0], marker="o", title="training loss")
    history.plot(x="epoch", y=["val_ua", "val_wa"], ax=axes[1], marker="o", title="validation (training speakers)")
    axes[1].axhline(0.25, ls=":", c="grey", label="chance")
    axes[1].set_ylim(0, 1)
    if ml:
        history.plot(x="epoch", y=[c for c in ("ml", "val_ml") if c in history], ax=axes[2], marker="o",
                     title="L_ML: training and validation")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def representation(distances: pd.DataFrame, synthetic: bool):
    """The layer distance 1 − R² of each model's states on the test audio to the teacher's on its clean
    version, against SNR (mean over folds and noise types; clean at the right), one panel per teacher
    layer. If MLKD works as the paper says, its line lies below the CE-only students' at low SNR."""
    d = distances.assign(snr=distances.snr_db.fillna(np.inf))
    mean = d.groupby(["teacher_layer", "model", "snr"]).value.mean().reset_index()
    layers = sorted(mean.teacher_layer.unique())
    snrs = sorted(mean.snr.unique())
    fig, axes = plt.subplots(1, len(layers), figsize=(2.6 * len(layers), 3.2), sharey=True, squeeze=False)
    for ax, t in zip(axes[0], layers):
        for model in [m for m in arms.models() if m in set(mean.model)]:
            g = mean[(mean.teacher_layer == t) & (mean.model == model)].sort_values("snr")
            ax.plot([snrs.index(x) for x in g.snr], g.value, marker="o", ms=3, label=arms.label(model),
                    color=arms.color(model), ls="--" if model == "teacher" else "-")
        ax.set_xticks(range(len(snrs)), ["clean" if np.isinf(x) else f"{x:g}" for x in snrs], fontsize=7)
        ax.set(title=f"teacher layer {t}", xlabel="SNR (dB)")
        ax.axhline(1, c="grey", lw=0.6, ls=":")
    axes[0][0].set_ylabel("1 − R² to the teacher's clean states")
    handles, names = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=len(names), fontsize=7, frameon=False)
    fig.suptitle(_title("Layer states against the teacher's on clean speech", synthetic))
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def condition_heatmap(metrics: pd.DataFrame, title: str):
    """UA per noise type × SNR for one model and fold (clean shown as its own row)."""
    m = metrics.assign(snr=metrics["snr_db"].map(lambda s: "clean" if pd.isna(s) else f"{s:g} dB"))
    grid = m.pivot_table(index="noise", columns="snr", values="ua", aggfunc="mean")
    cols = sorted([c for c in grid.columns if c != "clean"], key=lambda c: float(c.split()[0])) + \
        (["clean"] if "clean" in grid.columns else [])
    fig, ax = plt.subplots(figsize=(1.1 * len(cols) + 2, 0.5 * len(grid) + 1.5))
    heatmap(ax, 100 * grid[cols], "{:.0f}", "viridis", 0, 100, "UA %")
    ax.set(title=title, xlabel="", ylabel="")
    fig.tight_layout()
    return fig


def ua_vs_snr(summary: pd.DataFrame, synthetic: bool):
    """UA (mean ± std over folds) against SNR, one panel per noise type, one line per model;
    the clean-speech UA is drawn as a dashed line in each model's colour."""
    noisy = summary[summary.noise != "clean"]
    types = sorted(noisy.noise.unique())
    fig, axes = plt.subplots(1, len(types), figsize=(3.6 * len(types), 3.6), sharey=True, squeeze=False)
    for ax, nt in zip(axes[0], types):
        for model, label in ((m, arms.label(m)) for m in arms.models()):
            d = noisy[(noisy.noise == nt) & (noisy.model == model)].sort_values("snr_db")
            if d.empty:
                continue
            ax.errorbar(d.snr_db, d.ua_mean, yerr=d.ua_std.fillna(0), marker="o", capsize=3, label=label,
                        color=arms.color(model))
            clean = summary[(summary.noise == "clean") & (summary.model == model)]
            if len(clean):
                ax.axhline(clean.ua_mean.iloc[0], ls="--", lw=0.8, color=arms.color(model))
        ax.axhline(25, ls=":", c="grey")
        ax.set(title=nt, xlabel="SNR (dB)", ylim=(0, 100))
    axes[0][0].set_ylabel("UA % (dashed: clean)")
    axes[0][-1].legend(fontsize=7, loc="lower right")
    fig.suptitle(_title("UA against SNR", synthetic))
    fig.tight_layout()
    return fig


def mlkd_minus_baseline(summary: pd.DataFrame, synthetic: bool):
    piv = {m: summary[(summary.model == m) & (summary.noise != "clean")].pivot(index="noise", columns="snr_db",
                                                                                  values="ua_mean")
           for m in (arms.method_arm().name, BASELINE)}
    diff = piv[arms.method_arm().name] - piv[BASELINE]
    fig, ax = plt.subplots(figsize=(1.2 * diff.shape[1] + 2.5, 0.6 * diff.shape[0] + 1.8))
    lim = max(5.0, float(np.nanmax(np.abs(diff.values))) if diff.size else 5.0)
    heatmap(ax, diff, "{:+.1f}", "RdBu", -lim, lim, "UA points")
    ax.set(title=_title("MLKD minus baseline (UA points)", synthetic), xlabel="SNR (dB)", ylabel="")
    fig.tight_layout()
    return fig


def paired_differences(table: pd.DataFrame, synthetic: bool):
    """Each comparison's mean difference with its 95 % CI over folds: per noise type along
    SNR, then clean speech and the pooled noisy conditions (black)."""
    comps = list(dict.fromkeys(table.comparison))
    fig, axes = plt.subplots(1, len(comps), figsize=(4.3 * len(comps), 3.9), sharey=True, squeeze=False)
    for ax, comp in zip(axes[0], comps):
        d = table[table.comparison == comp]
        noisy = d[~d.noise.isin(["clean", "pooled"])]
        snrs = sorted(noisy.snr_db.dropna().unique())
        types = sorted(noisy.noise.unique())
        labels = [f"{s:g}" for s in snrs]
        for i, nt in enumerate(types):
            g = noisy[noisy.noise == nt].sort_values("snr_db")
            x = np.array([snrs.index(s) for s in g.snr_db]) + (i - (len(types) - 1) / 2) * 0.13
            ax.errorbar(x, g["mean"], yerr=[g["mean"] - g.ci_low, g.ci_high - g["mean"]], fmt="o", ms=3.5,
                        capsize=2, lw=1, label=nt)
        for name, color in (("clean", "grey"), ("pooled", "black")):
            g = d[d.noise == name]
            if len(g):
                labels.append(name if name == "clean" else "pooled\nnoisy")
                ax.errorbar([len(labels) - 1], g["mean"], yerr=[g["mean"] - g.ci_low, g.ci_high - g["mean"]],
                            fmt="D", ms=6, capsize=3, color=color)
        ax.axhline(0, c="grey", lw=0.8)
        ax.set_xticks(range(len(labels)), labels, fontsize=8)
        ax.set(title=comp, xlabel="SNR (dB)")
    axes[0][0].set_ylabel("difference in UA points\n(mean, 95 % bootstrap CI over folds)")
    handles, names = axes[0][0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, names, loc="lower center", ncol=len(names), fontsize=8, frameon=False)
    fig.suptitle(_title("Paired differences between models", synthetic))
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig


def confusion_grid(predictions: pd.DataFrame, labels: list[str], synthetic: bool):
    """Row-normalised confusion matrices over the study's classes (``labels``, in logit order), pooled over
    folds: clean speech and the lowest SNR."""
    models = [m for m in arms.models() if m in set(predictions.model)]
    low = predictions.snr_db.min()
    rows = [("clean", predictions[predictions.noise == "clean"]),
            (f"{low:g} dB, all noises", predictions[predictions.snr_db == low])]
    scale = max(1.0, len(labels) / 4)  # room for each class's cell
    fig, axes = plt.subplots(len(rows), len(models), figsize=(3.2 * scale * len(models), 3.0 * scale * len(rows)),
                             squeeze=False)
    for r, (cond, sub) in enumerate(rows):
        for c, model in enumerate(models):
            d = sub[sub.model == model]
            ax = axes[r][c]
            if d.empty:
                ax.axis("off")
                continue
            m = confusion(d.label, d.pred, len(labels)).astype(float)
            m = m / np.maximum(m.sum(1, keepdims=True), 1)
            heatmap(ax, pd.DataFrame(m, index=labels, columns=labels), "{:.2f}", "Blues", 0, 1)
            ax.set(title=f"{arms.label(model)}\n{cond}", xlabel="predicted", ylabel="true")
            ax.title.set_fontsize(8)
    fig.suptitle(_title("Confusion matrices", synthetic))
    fig.tight_layout()
    return fig


def save(fig, path: str | Path) -> Path:
    """``fig`` written to ``path`` and closed: a notebook shows the file (``IPython.display.Image``) instead of
    drawing the figure again, which took as long as writing it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)  # laid out already (tight_layout): a "tight" bounding box would draw it twice
    plt.close(fig)
    return path
