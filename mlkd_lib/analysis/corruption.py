"""Robustness beyond the training noise, scored the way the field scores corruption (ImageNet-C; ROBUSER for
speech emotion): Table 4, the corruption errors and the plot of UA against severity.

Per model, family and severity, error = 1 − UA averaged over the folds (and over the family's noise types). With
the clean-trained teacher as the reference model:

    CE_f        = Σ_severity error(model) / Σ_severity error(teacher)
    relative CE = Σ_severity (error(model) − error_clean(model)) / Σ_severity (error(teacher) − error_clean(teacher))

mCE and relative mCE are their means over every corruption family (every family but clean and ``corpus``). The
trained noise types are a family too (``noise``, the only one a student has heard); every other family is unseen
by every model. CE below 1: fewer errors than the teacher under that corruption; relative CE: a smaller drop from
its own clean UA. Another corpus (``corpus``: its clean speech, severity empty, and its speech under the trained
noise types, severity the SNR) is a change of speakers, language and recording, not a corruption: it has its CE
and its contrasts, and stays out of the mCE and of the pooled unseen contrast.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..arms import color, label, method_arm, models
from ..data.conditions import corpus, families
from ..names import BASELINE, CLEAN, NO_LEVEL, NOISE, TEACHER
from .tables import save_table, with_conditions

CORPUS = corpus.FAMILY
def family_order() -> tuple[str, ...]:
    """The trained noise, then every test family in its ``RANK`` order (read when asked: a family added to the
    registry is in it)."""
    return (NOISE, *families.registry())


def family_means(metrics: pd.DataFrame, values=("ua",), by=("model",)) -> pd.DataFrame:
    """``values`` (UA; the calibration's scores too) per ``by`` × family × severity × fold (a family's noise types
    averaged within the fold), clean included."""
    m = with_conditions(metrics)
    m = m.assign(severity=m.severity.where(m.condition != CLEAN, np.nan))
    keys = [*by, "condition", m.severity.fillna(NO_LEVEL).rename("sev"), "fold"]
    out = m.groupby(keys)[list(values)].mean().reset_index()
    out["severity"] = out.pop("sev").replace(NO_LEVEL, np.nan)
    return out


def table4(metrics: pd.DataFrame) -> pd.DataFrame:
    """Long Table 4: model, condition, severity, seen (the students trained on it), ua_mean, ua_std, n_folds."""
    per_fold = family_means(metrics)
    g = per_fold.groupby(["model", "condition", per_fold.severity.fillna(NO_LEVEL).rename("sev")]).ua
    out = g.agg(ua_mean="mean", ua_std="std", n_folds="count").reset_index()
    out["severity"] = out.pop("sev").replace(NO_LEVEL, np.nan)
    out["seen"] = out.condition.isin([CLEAN, NOISE])
    order = {f: i for i, f in enumerate((CLEAN, *family_order()))}
    out = out.sort_values(["condition", "severity", "model"], key=lambda s: s.map(order) if s.name == "condition"
                          else s).reset_index(drop=True)
    return out[["model", "condition", "severity", "seen", "ua_mean", "ua_std", "n_folds"]]


def corruption_errors(metrics: pd.DataFrame, reference: str = TEACHER) -> pd.DataFrame:
    """CE and relative CE per model × family, with the ``reference`` model (the clean-trained teacher) as 1,
    and rows ``mCE`` (the mean over families; ``seen`` False: over the unseen ones only). ``missing`` names the
    severities (for an mCE, the families) a model lacks: its CE is then left empty, never summed over fewer
    severities than the reference's."""
    t = table4(metrics)
    error = t.assign(error=1 - t.ua_mean).set_index(["model", "condition", "severity"]).error
    clean = t[t.condition == CLEAN].set_index("model").ua_mean.rsub(1)
    if reference not in clean.index:
        raise ValueError(f"the reference model {reference!r} has no clean UA in the metrics")
    rows = []
    for family in [f for f in family_order() if f in set(t.condition)]:
        ref = error.xs((reference, family), level=("model", "condition"))
        for model in sorted(set(t.model), key=list(models()).index):
            if (model, family) not in error.index.droplevel("severity") or model not in clean.index:
                continue
            e = error.xs((model, family), level=("model", "condition")).reindex(ref.index)
            # a severity the model lacks: its sum would count fewer errors than the reference's, so none is given
            missing = ", ".join(f"{s:g}" for s in e.index[e.isna()] if pd.notna(s))
            drop = float((ref - clean[reference]).sum())  # no drop of the reference: a relative CE means nothing
            whole = not e.isna().any()
            rows.append(dict(model=model, family=family, seen=family == NOISE,
                             ce=float(e.sum() / ref.sum()) if ref.sum() > 0 and whole else np.nan,
                             relative_ce=float((e - clean[model]).sum() / drop) if drop > 0 and whole else np.nan,
                             missing=missing))
    ce = pd.DataFrame(rows)
    means = []
    for model, g in ce[ce.family != CORPUS].groupby("model", sort=False):
        for seen, part in ((True, g), (False, g[~g.seen])):  # every family; the unseen ones
            if len(part):  # a family without a CE leaves the mean without one (skipna=False)
                means.append(dict(model=model, family="mCE", seen=seen, ce=part.ce.mean(skipna=False),
                                  relative_ce=part.relative_ce.mean(skipna=False),
                                  missing=", ".join(f for f in part.family[part.missing != ""])))
    return pd.concat([ce, pd.DataFrame(means)], ignore_index=True)


def shown_name(family: str) -> str:
    """How a table names a family: the trained noise, or an unseen family."""
    return {CLEAN: "clean", NOISE: "noise (trained)"}.get(family, f"{family.replace('_', ' ')} (unseen)")


def unit_of(name: str) -> str:
    if name in (CLEAN, NOISE):
        return "" if name == CLEAN else "dB SNR"
    return families.unit(name)


def worse(name: str) -> str | None:
    """Which way a family's severity gets worse: "higher", "lower" (a lower SNR, fewer kbps) or None (one level)."""
    return "lower" if name == NOISE else families.family(name).WORSE


def write_table4(study_dir: str | Path, metrics: pd.DataFrame, synthetic: bool) -> Path:
    """``table4.csv`` (long UA, then the corruption errors) and ``table4.md``: UA % (mean ± std over folds) per
    family × severity × model, seen / unseen marked; CE and relative CE per family, mCE."""
    t = table4(metrics)
    ce = corruption_errors(metrics)
    study_dir = Path(study_dir)
    present = [m for m in models() if m in set(t.model)]
    cells = t.assign(cell=[f"{100 * m:.1f} ± {100 * s:.1f}" if np.isfinite(s) else f"{100 * m:.1f}"
                           for m, s in zip(t.ua_mean, t.ua_std)])
    rows = []
    for (family, severity), g in cells.groupby(["condition", cells.severity.fillna(NO_LEVEL)], sort=False):
        level = ("clean" if family == CORPUS else "") if severity == NO_LEVEL else f"{severity:g} {unit_of(family)}"
        row = {"condition": shown_name(family), "severity": level}
        row.update({label(m): g.set_index("model").cell.get(m, "") for m in present})
        rows.append(row)
    ce_rows = []
    for (family, seen), g in ce.groupby(["family", "seen"], sort=False):
        cells = {label(m): f"– (none at {gone})" if gone else f"{v:.2f} (rel. {'–' if np.isnan(r) else f'{r:.2f}'})"
                 for m, v, r, gone in zip(g.model, g.ce, g.relative_ce, g.missing)}
        name = ("mCE, every family" if seen else "mCE, unseen families") if family == "mCE" else shown_name(family)
        ce_rows.append({"condition": f"CE: {name}", "severity": "", **cells})
    table = pd.DataFrame(rows + ce_rows)
    caption = ("UA in % (mean ± std over the folds; a family's noise types averaged), every trained model under every "
               "condition; unseen: no model trained on it. CE = Σ error / Σ error of the teacher over a family's "
               "severities (relative CE: of the drop from clean UA); mCE their mean over families. Below 1: more "
               "robust than the clean-trained teacher.")
    md = save_table(table, study_dir, "table4", "Table 4 — robustness beyond the training noise", synthetic, caption)
    # the csv holds the numbers: UA rows (kind ua) and the corruption errors (kind ce), long
    pd.concat([t.assign(kind="ua"), ce.assign(kind="ce")], ignore_index=True).to_csv(study_dir / "table4.csv",
                                                                                     index=False)
    return md


def _panel(ax, t: pd.DataFrame, name: str) -> None:
    """One family's UA against severity, a line a model, worse to the right; a family with one severity (the
    telephone channel) as one point a model, side by side, over its one level's name."""
    rows = t[t.condition == name]
    one_level = worse(name) is None
    if name == CORPUS:  # the other corpus's clean speech sits right of its highest SNR
        clean_at = rows.severity.max() + 10 if rows.severity.notna().any() else 0.0
        rows = rows.assign(severity=rows.severity.fillna(clean_at))
        ticks = sorted(rows.severity.unique())
        ax.set_xticks(ticks, [f"{s:g}" if s != clean_at else "clean" for s in ticks])
    shown = list(dict.fromkeys(rows.model))
    for k, (model, g) in enumerate(rows.groupby("model", sort=False)):
        x = [(k - (len(shown) - 1) / 2) * 0.15] * len(g) if one_level else g.severity
        ax.errorbar(x, 100 * g.ua_mean, yerr=100 * g.ua_std.fillna(0), marker="o", capsize=2, ms=3,
                    ls="none" if one_level else "-", color=color(model), label=label(model))
        clean = t[(t.condition == CLEAN) & (t.model == model)]
        if len(clean):
            ax.axhline(100 * clean.ua_mean.iloc[0], color=color(model), ls=":", lw=0.8)
    if one_level:
        ax.set_xticks([0.0], [f"{rows.severity.iloc[0]:g} {unit_of(name)}" if len(rows) else unit_of(name)])
        ax.set_xlim(-0.5, 0.5)
    ax.set(title=shown_name(name), xlabel="" if one_level else unit_of(name))
    ax.title.set_fontsize(9)
    if worse(name) == "lower":
        ax.invert_xaxis()  # worse to the right: a lower SNR, fewer kbps


def ua_against_severity(metrics: pd.DataFrame, synthetic: bool):
    """UA against severity, one panel a family, a line a model (mean ± std over folds)."""
    from .plots import _title, legend_below, panel_grid
    t = table4(metrics)
    shown = [f for f in family_order() if f in set(t.condition)]
    fig, axes = panel_grid(len(shown), 3.6)
    for ax, name in zip(axes.flat, shown):
        _panel(ax, t, name)
    return legend_below(fig, axes, "UA % (mean ± std over folds)\ndotted: clean",
                        _title("UA against severity, beyond the training noise", synthetic))


UNSEEN_POOLED = "pooled unseen"
UNSEEN_KIND = "unseen"  # stats.csv's kind of these contrasts
CORPUS_POOLED = "pooled corpus"  # every other corpus, clean and noisy: its own pre-specified test


def unseen_differences(metrics: pd.DataFrame, arms: dict, seed: int = 0) -> pd.DataFrame:
    """The contrasts that answer "does MLKD keep its edge where no model has trained?": MLKD − CE-only (each
    reading) and MLKD − baseline, pooled over every unseen corruption (one pre-specified test) and per unseen
    family (BH q over the families), and pooled over the other corpora (``corpus``, its own test), paired over the
    folds, in UA points."""
    from .stats import MLKD_VS_BASELINE, arm_name, bh_q, paired_test
    per_fold = family_means(metrics)
    unseen = per_fold[~per_fold.condition.isin([CLEAN, NOISE])]
    if unseen.empty:
        return pd.DataFrame()
    method = method_arm()
    pairs = [(f"{arm_name(arms[method.name])} − {arm_name(arms[b])}", method.name, b, UNSEEN_KIND)
             for b in method.against if b in arms and arms[b] != arms[method.name]]
    pairs.append((MLKD_VS_BASELINE, method.name, BASELINE, UNSEEN_KIND))
    rows = []
    for name, a, b, kind in pairs:
        if not {a, b} <= set(unseen.model):
            continue
        ua = unseen.set_index(["model", "condition", "severity", "fold"]).ua
        both = (100 * (ua.xs(a, level="model") - ua.xs(b, level="model"))).dropna().rename("d").reset_index()
        d, other = both[both.condition != CORPUS], both[both.condition == CORPUS]
        for pooled, g in ((UNSEEN_POOLED, d), (CORPUS_POOLED, other)):
            if len(g):
                rows.append({"comparison": name, "kind": kind, "noise": pooled, "snr_db": None,
                             **paired_test(g.groupby("fold").d.mean().to_numpy(), seed), "q_bh": np.nan})
        cells = [{"comparison": name, "kind": kind, "noise": f"pooled {family}", "snr_db": None,
                  **paired_test(g.groupby("fold").d.mean().to_numpy(), seed)} for family, g in d.groupby("condition")]
        rows += [dict(c, q_bh=q) for c, q in zip(cells, bh_q([c["p"] for c in cells]))]
    out = pd.DataFrame(rows)
    if len(out):
        out["significant"] = np.where(out.noise.isin([UNSEEN_POOLED, CORPUS_POOLED]), out.p < 0.05, out.q_bh < 0.05)
    return out
