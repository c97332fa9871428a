"""Does a model know when it is wrong? Calibration and selective prediction, from the per-utterance probabilities every
fold's ``predictions.csv`` holds, and the temperature each trained model carries (``docs/calibration.md``).

Per model × condition × fold, on the raw probabilities and on the temperature-scaled ones:

    ECE       top-label expected calibration error: the utterances binned by their top probability in ``ECE_BINS``
              equal-width bins (0, 1/15], (1/15, 2/15], …, (14/15, 1]; Σ_bin (n_bin / n) · |accuracy − mean top
              probability|
    NLL       mean −ln p(true class)
    Brier     mean Σ_class (p − 1[true class])², between 0 and 2
    AURC      the area under the risk–coverage curve: abstain on the least confident first; at coverage k / n the risk
              is the error rate of the k most confident, AURC their mean over k = 1 … n (a tie in confidence counts
              as every order of the tied utterances would, on average)
    UA at 80 % coverage   UA of the 80 % most confident utterances

Temperature scaling divides a model's logits by one T > 0, fitted by minimising the NLL on its fold's validation
split (clean speech: training speakers only, never a test utterance), which changes no prediction. Probabilities
rescale exactly: softmax(ln p / T) = softmax(z / T). The baseline is the fold's teacher behind a front-end and uses
the teacher's temperature. The contrasts (MLKD − CE-only, MLKD − control, MLKD − teacher in ECE and AURC, both after
scaling) are paired over the folds like the UA contrasts (``stats.py``), with Benjamini–Hochberg within each metric's
own family of tests, so the UA rows of ``stats.csv`` are untouched.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import softmax

from ..arms import color, label, method_arm, models
from ..layout import StudyLayout
from ..method.temperature import checked
from ..names import BASELINE, CLEAN, NO_LEVEL, NOISE, TEACHER

ECE_BINS = 15
COVERAGE = 0.8  # of UA at coverage: the share of utterances a model answers
BIN_SCHEME = f"{ECE_BINS} equal-width bins of the top probability"
RAW, SCALED = "raw", "scaled"  # calibration.csv's ``scaling``
P_FLOOR = np.finfo(np.float32).tiny  # the probabilities were float32: none is below this but 0
SCORES = ("ece", "nll", "brier", "aurc", "ua_at_80")


# ------------------------------------------------------------------ the arithmetic, on one set of utterances

def bin_of(confidence: np.ndarray, bins: int = ECE_BINS) -> np.ndarray:
    """Each top probability's bin: (0, 1/bins] is 0, …, ((bins − 1)/bins, 1] is bins − 1 (an edge belongs below)."""
    return np.digitize(confidence, np.arange(1, bins) / bins, right=True)


def reliability(confidence, correct, bins: int = ECE_BINS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per bin of the top probability that holds an utterance: (utterances, mean top probability, accuracy), what a
    reliability diagram draws and the ECE sums."""
    which = bin_of(confidence, bins)
    n = np.bincount(which)
    has = n > 0

    def mean(values) -> np.ndarray:
        return np.bincount(which, values)[has] / n[has]
    return n[has], mean(confidence), mean(correct)


def top_label_ece(probs, labels, bins: int = ECE_BINS) -> float:
    """Top-label ECE over ``bins`` equal-width bins of the top probability (right-closed: (a, b])."""
    p, y = checked(probs, labels)
    n, confidence, accuracy = reliability(p.max(1), p.argmax(1) == y, bins)
    return float((n * np.abs(accuracy - confidence)).sum() / n.sum())


def negative_log_likelihood(probs, labels) -> float:
    p, y = checked(probs, labels)
    return float(-np.log(np.maximum(p[np.arange(len(y)), y], P_FLOOR)).mean())


def brier_score(probs, labels) -> float:
    p, y = checked(probs, labels)
    onehot = np.eye(p.shape[1])[y]
    return float(((p - onehot) ** 2).sum(1).mean())


def rescaled(probs, temperature: float) -> np.ndarray:
    """The probabilities a model gives with its logits divided by ``temperature``: softmax(ln p / T)."""
    return softmax(np.log(np.maximum(np.asarray(probs, dtype=float), P_FLOOR)) / temperature, axis=1)


def risk_coverage(confidence, correct) -> tuple[np.ndarray, np.ndarray]:
    """(coverage, risk) at k = 1 … n answered utterances, the most confident first; among tied confidences the
    errors are spread evenly (the mean over every order of the tied utterances)."""
    c = np.asarray(confidence, dtype=float)
    wrong = 1.0 - np.asarray(correct, dtype=float)
    order = np.argsort(-c, kind="stable")
    c, wrong = c[order], wrong[order]
    n = len(c)
    errors = np.concatenate([[0.0], np.cumsum(wrong)])  # errors among the first k, k = 0 … n
    starts = np.concatenate([[0], np.flatnonzero(np.diff(c)) + 1])  # where each run of equal confidence starts
    ends = np.append(starts[1:], n)
    group = np.repeat(np.arange(len(starts)), ends - starts)
    k = np.arange(1, n + 1)
    rate = (errors[ends] - errors[starts]) / (ends - starts)
    expected = errors[starts[group]] + (k - starts[group]) * rate[group]
    return k / n, expected / k


def aurc(confidence, correct) -> float:
    return float(risk_coverage(confidence, correct)[1].mean())


def ua_at_coverage(probs, labels, coverage: float = COVERAGE) -> float:
    """UA (recall averaged over the classes present) of the ⌈coverage · n⌉ most confident utterances (ties in the
    given order)."""
    p, y = checked(probs, labels)
    kept = np.argsort(-p.max(1), kind="stable")[:int(np.ceil(coverage * len(y) - 1e-9))]
    yk, pk = y[kept], p[kept].argmax(1)
    return float(np.mean([(pk[yk == c] == c).mean() for c in np.unique(yk)]))


def scores(probs, labels) -> dict[str, float]:
    """Every score of one set of utterances."""
    p, y = checked(probs, labels)
    return {"ece": top_label_ece(p, y), "nll": negative_log_likelihood(p, y), "brier": brier_score(p, y),
            "aurc": aurc(p.max(1), p.argmax(1) == y), "ua_at_80": ua_at_coverage(p, y)}


# ------------------------------------------------------------------ a study's calibration

def temperature_source(model: str) -> str:
    """Whose temperature a model's probabilities are scaled with: its own; the baseline's, its teacher's."""
    return TEACHER if model == BASELINE else model


def study_temperatures(study_dir: str | Path) -> pd.DataFrame:
    """model, fold, temperature, fitted: each scored model's temperature (1 and fitted False where its checkpoint has
    none: a model trained before temperatures were fitted)."""
    from ..method.checkpoint import read_temperature_scaling
    study = StudyLayout(study_dir)
    rows = []
    for m in study.models():
        if not m.predictions.is_file():
            continue
        ckpt = study.fold(m.fold).model(temperature_source(m.name)).best_ckpt
        scaling = read_temperature_scaling(ckpt) if ckpt.is_file() else None
        rows.append(dict(model=m.name, fold=m.fold, temperature=scaling["temperature"] if scaling else 1.0,
                         fitted=scaling is not None))
    return pd.DataFrame(rows, columns=["model", "fold", "temperature", "fitted"])


KEYS = ["model", "condition", "severity", "noise", "snr_db", "fold"]


def with_scaled(predictions: pd.DataFrame, temperatures: pd.DataFrame, emotions) -> tuple[pd.DataFrame, np.ndarray,
                                                                                          np.ndarray]:
    """(predictions with their ``temperature``, raw probabilities, scaled probabilities), rows aligned."""
    t = predictions.merge(temperatures[["model", "fold", "temperature"]], on=["model", "fold"], how="left")
    t["temperature"] = t.temperature.fillna(1.0)
    raw = t[[f"p_{e}" for e in emotions]].to_numpy(float)
    scaled = np.empty_like(raw)
    for temp, idx in t.groupby("temperature").indices.items():
        scaled[idx] = rescaled(raw[idx], temp)
    return t, raw, scaled


def calibration_table(predictions: pd.DataFrame, temperatures: pd.DataFrame, emotions) -> pd.DataFrame:
    """``calibration.csv``: per model × condition × fold and scaling (raw, scaled), the scores and the temperature."""
    t, raw, scaled = with_scaled(predictions, temperatures, emotions)
    keys = [t[k].fillna(NO_LEVEL) if k in ("severity", "snr_db") else t[k] for k in KEYS]
    rows = []
    for key, idx in t.groupby(keys, sort=True).indices.items():
        row = {k: (None if k in ("severity", "snr_db") and v == NO_LEVEL else v) for k, v in zip(KEYS, key)}
        y, temp = t.label.to_numpy()[idx], float(t.temperature.iloc[idx[0]])
        for scaling, p, tt in ((RAW, raw, 1.0), (SCALED, scaled, temp)):
            rows.append({**row, "scaling": scaling, "temperature": tt, **scores(p[idx], y), "n": len(idx)})
    return pd.DataFrame(rows)


def family_scores(cal: pd.DataFrame) -> pd.DataFrame:
    """The scores per model × scaling × family × fold: a family's noise types averaged within a severity (as Table 4
    does), then its severities."""
    from .corruption import family_means
    per_severity = family_means(cal, SCORES, by=("model", "scaling"))
    return per_severity.groupby(["model", "scaling", "condition", "fold"])[list(SCORES)].mean().reset_index()


ECE_KIND, AURC_KIND = "ECE (scaled)", "AURC (scaled)"  # stats.csv's kind of the calibration contrasts
CALIBRATION_KINDS = (ECE_KIND, AURC_KIND)
MLKD_VS_TEACHER = "MLKD − teacher"


def calibration_pairs(arms: dict) -> list[tuple[str, str, str]]:
    """(name, a, b): MLKD against each arm it is compared with (the CE-only student, the control) and the teacher."""
    from .stats import arm_name
    method = method_arm()
    pairs = [(f"{arm_name(arms[method.name])} − {arm_name(arms[b])}", method.name, b)
             for b in method.against if b in arms and arms[b] != arms[method.name]]
    return pairs + [(MLKD_VS_TEACHER, method.name, TEACHER)]


def calibration_differences(cal: pd.DataFrame, arms: dict, seed: int = 0) -> pd.DataFrame:
    """stats.csv's rows of the calibration contrasts, in points (× 100), after temperature scaling: pooled over the
    trained noise (``pooled``, the pre-specified test) and over the unseen families' severities (``pooled unseen``),
    and per family (clean, each unseen family, another corpus), Benjamini–Hochberg over the families of each
    comparison × metric."""
    from .corruption import CORPUS, UNSEEN_POOLED, family_means
    from .stats import ALPHA, POOLED, bh_q, paired_test
    scaled = cal[cal.scaling == SCALED]
    per_severity = family_means(scaled, ("ece", "aurc"))
    unseen = per_severity[~per_severity.condition.isin([CLEAN, NOISE, CORPUS])]
    tables = {"family": per_severity.groupby(["model", "condition", "fold"])[["ece", "aurc"]].mean()}
    if len(unseen):
        tables[UNSEEN_POOLED] = unseen.groupby(["model", "fold"])[["ece", "aurc"]].mean()
    rows, scored = [], set(scaled.model)
    for name, a, b in calibration_pairs(arms):
        if not {a, b} <= scored:
            continue
        for metric, kind in (("ece", ECE_KIND), ("aurc", AURC_KIND)):
            d = {k: (100 * (t[metric].xs(a, level="model") - t[metric].xs(b, level="model"))).dropna()
                 for k, t in tables.items()}
            by_family = dict(list(d["family"].groupby(level="condition")))
            cell = {"comparison": name, "kind": kind, "snr_db": None}
            pooled = ([(POOLED, by_family.pop(NOISE))] if NOISE in by_family else []) + (
                [(UNSEEN_POOLED, d[UNSEEN_POOLED])] if UNSEEN_POOLED in d else [])
            rows += [{**cell, "noise": where, **paired_test(g.to_numpy(), seed), "q_bh": np.nan} for where, g in pooled]
            cells = [{**cell, "noise": family if family == CLEAN else f"pooled {family}",
                      **paired_test(g.to_numpy(), seed)} for family, g in by_family.items()]
            rows += [dict(c, q_bh=q) for c, q in zip(cells, bh_q([c["p"] for c in cells]))]
    out = pd.DataFrame(rows)
    if len(out):
        pooled = out.noise.isin([POOLED, UNSEEN_POOLED])
        out["significant"] = np.where(pooled, out.p < ALPHA, out.q_bh < ALPHA)
    return out


def verdict(row) -> str:
    """One sentence on an ECE contrast a − b (lower is better calibrated), a difference the test cannot tell from
    zero said as such."""
    from .stats import ALPHA, describe
    if not np.isfinite(row["p"]):
        n = int(row["n_folds"])
        return f"{row['mean']:+.1f} points over {n} fold{'s' if n != 1 else ''}: too few folds for a test"
    if row["p"] >= ALPHA:
        return f"{describe(row)}: no detectable difference in calibration"
    return f"{describe(row)}: " + ("better calibrated (lower ECE)" if row["mean"] < 0
                                   else "worse calibrated (higher ECE)")


def contrast_cells(differences: pd.DataFrame) -> pd.DataFrame:
    """The contrasts as Table 5 shows them: a row per comparison and where, a column per score."""
    from .corruption import UNSEEN_POOLED, shown_name
    from .stats import POOLED
    named = {POOLED: "trained noise, pooled", UNSEEN_POOLED: "unseen families, pooled", CLEAN: "clean"}

    def where(noise: str) -> str:
        return named.get(noise) or shown_name(noise.removeprefix("pooled "))

    def cell(r) -> str:
        ci = f" ({r['ci_low']:+.1f} … {r['ci_high']:+.1f})" if np.isfinite(r["ci_low"]) else ""
        test = f", p = {r['p']:.2g}" if np.isfinite(r["p"]) else ""
        return f"{r['mean']:+.1f}{ci}{test}" + (f", q = {r['q_bh']:.2g}" if np.isfinite(r["q_bh"]) else "")

    d = differences.assign(cell=[cell(r) for r in differences.to_dict("records")], where=differences.noise.map(where))
    wide = d.pivot_table(index=["comparison", "where"], columns="kind", values="cell", aggfunc="first", sort=False)
    return wide.reset_index()[["comparison", "where", *CALIBRATION_KINDS]]


def table5(cal: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """Long Table 5: per family × model, UA and the scores raw and scaled, mean and std over the folds."""
    from .corruption import family_means, family_order
    fam = family_scores(cal)
    ua = family_means(metrics).groupby(["model", "condition", "fold"]).ua.mean().rename("ua").reset_index()
    wide = fam.pivot_table(index=["model", "condition", "fold"], columns="scaling", values=list(SCORES))
    wide.columns = [f"{s}_{k}" for s, k in wide.columns]
    per_fold = wide.reset_index().merge(ua, on=["model", "condition", "fold"], how="left")
    values = ["ua", *wide.columns]
    g = per_fold.groupby(["model", "condition"])[values]
    out = g.mean().join(g.std().add_suffix("_std")).join(g.size().rename("n_folds")).reset_index()
    order = {f: i for i, f in enumerate((CLEAN, *family_order()))}
    rank = {m: i for i, m in enumerate(models())}
    return out.sort_values(["condition", "model"], key=lambda s: s.map(order if s.name == "condition" else rank),
                           ignore_index=True)


TABLE5_CAPTION = (f"Per family (noise types averaged within a severity, then the severities, as in Table 4), the mean "
                  f"over the folds. ECE: top-label, {BIN_SCHEME}, in %; raw → after temperature scaling (one T per "
                  "model and fold, fitted on the fold's clean validation speech). NLL, Brier (summed over the "
                  "classes), AURC (%, the area under the risk–coverage curve) and UA at 80 % coverage (the most "
                  "confident 80 % answered) after scaling. The contrasts below are paired over the folds, in points; "
                  "q: Benjamini–Hochberg over the families of a comparison and metric.")


def write_table5(study_dir: str | Path, cal: pd.DataFrame, metrics: pd.DataFrame, differences: pd.DataFrame,
                 temperatures: pd.DataFrame, synthetic: bool) -> Path:
    """``table5.csv`` (the family scores, then the contrasts) and ``table5.md``: the answer first, the scores per
    family × model, the contrasts, and each model's temperatures."""
    from .corruption import shown_name
    from .stats import POOLED
    from .tables import save_table
    study_dir = Path(study_dir)
    t = table5(cal, metrics)
    shown = pd.DataFrame({
        "condition": t.condition.map(shown_name), "model": t.model.map(label), "UA %": (100 * t.ua).round(1),
        "ECE % raw → scaled": [f"{100 * a:.1f} → {100 * b:.1f}" for a, b in zip(t.ece_raw, t.ece_scaled)],
        "NLL": t.nll_scaled.round(3), "Brier": t.brier_scaled.round(3), "AURC %": (100 * t.aurc_scaled).round(1),
        "UA % at 80 % coverage": (100 * t.ua_at_80_scaled).round(1)})
    lines = []
    if len(differences):
        head = differences[(differences.kind == ECE_KIND) & (differences.noise == POOLED)]
        lines = [f"- {r['comparison']}, ECE after scaling, pooled over the trained noise: {verdict(r)}"
                 for r in head.to_dict("records")]
    temps = temperatures.groupby("model").temperature.agg(["mean", "min", "max"])
    temps = temps.loc[[m for m in models() if m in temps.index]]
    temp_line = "Temperatures (mean over the folds, range): " + "; ".join(
        f"{label(m)} {r['mean']:.2f} ({r['min']:.2f}–{r['max']:.2f})" for m, r in temps.iterrows()
        if m != BASELINE) + "; the baseline uses its teacher's." + (
        "" if temperatures.fitted.all() else " Models without a fitted temperature are scored raw (T = 1).")
    caption = "\n".join(lines) + ("\n\n" if lines else "") + TABLE5_CAPTION + "\n\n" + temp_line
    md = save_table(shown, study_dir, "table5", "Table 5 — calibration and selective prediction", synthetic, caption)
    if len(differences):
        with open(md, "a") as f:
            f.write("\nPaired contrasts after temperature scaling, in points (lower: better calibrated, or fewer "
                    "errors among the answered): the mean difference (95 % CI), Wilcoxon p, BH q.\n\n"
                    + contrast_cells(differences).to_markdown(index=False, disable_numparse=True) + "\n")
    pd.concat([t.assign(part="family"), differences.assign(part="contrast")], ignore_index=True).to_csv(
        study_dir / "table5.csv", index=False)
    return md


# ------------------------------------------------------------------ figures

def reliability_diagrams(predictions: pd.DataFrame, temperatures: pd.DataFrame, emotions, synthetic: bool):
    """Accuracy against the top probability per bin, clean speech against the lowest SNR of the trained noise, a
    panel per model: raw above, temperature-scaled below; on the diagonal a model is calibrated."""
    import matplotlib.pyplot as plt

    from .plots import _title
    from .tables import with_conditions
    t, raw, scaled = with_scaled(with_conditions(predictions), temperatures, emotions)
    noise = t.condition == NOISE
    low = t.snr_db[noise].min()
    where = {"clean": (t.noise == CLEAN).to_numpy(), f"{low:g} dB, trained noise": (noise & (t.snr_db == low))
             .to_numpy()}
    present = set(t.model)
    shown = [m for m in models() if m in present]
    fig, axes = plt.subplots(2, len(shown), figsize=(2.8 * len(shown), 5.6), sharex=True, sharey=True, squeeze=False)
    y = t.label.to_numpy()
    for r, (name, p) in enumerate(((RAW, raw), (SCALED, scaled))):
        for c, model in enumerate(shown):
            ax = axes[r][c]
            ax.plot([0, 1], [0, 1], c="grey", lw=0.8, ls=":")
            for (cond, sel), ls in zip(where.items(), ("-", "--")):
                idx = sel & (t.model == model).to_numpy()
                if not idx.any():
                    continue
                _, mean_conf, acc = reliability(p[idx].max(1), p[idx].argmax(1) == y[idx])
                ax.plot(mean_conf, acc, marker="o", ms=3, ls=ls, color=color(model),
                        label=f"{cond} (ECE {100 * top_label_ece(p[idx], y[idx]):.1f} %)")
            ax.legend(fontsize=6, loc="upper left")
            ax.set(xlim=(0, 1), ylim=(0, 1), title=f"{label(model)}\n{name}" if r == 0 else name)
            ax.title.set_fontsize(8)
    for ax in axes[1]:
        ax.set_xlabel("top probability")
    for row in axes:
        row[0].set_ylabel("accuracy")
    fig.suptitle(_title("Reliability: accuracy against confidence", synthetic))
    fig.tight_layout()
    return fig


def risk_coverage_plot(predictions: pd.DataFrame, temperatures: pd.DataFrame, emotions, synthetic: bool):
    """The risk–coverage curve per family (temperature-scaled confidence), a line a model, the family's utterances
    pooled over the folds and severities: read at a coverage, the error rate of what the model answers there."""
    from .corruption import family_order, shown_name
    from .plots import _title, legend_below, panel_grid
    from .tables import with_conditions
    t, _, scaled = with_scaled(with_conditions(predictions), temperatures, emotions)
    present, scored = set(t.condition), set(t.model)
    families = [f for f in (CLEAN, *family_order()) if f in present]
    shown = [m for m in models() if m in scored]
    fig, axes = panel_grid(len(families), 3.4)
    y = t.label.to_numpy()
    for ax, family in zip(axes.flat, families):
        for model in shown:
            idx = ((t.condition == family) & (t.model == model)).to_numpy()
            if not idx.any():
                continue
            p = scaled[idx]
            coverage, risk = risk_coverage(p.max(1), p.argmax(1) == y[idx])
            drawn = np.unique(np.linspace(0, len(risk) - 1, 200).astype(int))  # enough points for the eye
            ax.plot(coverage[drawn], 100 * risk[drawn], color=color(model), lw=1.2, label=label(model))
        ax.axvline(COVERAGE, c="grey", lw=0.6, ls=":")
        ax.set(title=shown_name(family), xlim=(0, 1), xlabel="coverage")
        ax.title.set_fontsize(9)
    return legend_below(fig, axes, "risk: error % of the answered",
                        _title("Risk against coverage (abstaining on the least confident first; dotted: 80 %)",
                               synthetic))
