"""The depth frontier measured: every depth's students exported, timed and (int8) scored, then written with the
analysis's tables and plot (``analysis/frontier.py`` says what each column means). Exports go to the sweep's
``exports/`` folder, never into a study's step folder (the study's own depth and the teachers are links into
the study), and are reused while newer than their checkpoints (``scoring.exported``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ..analysis.frontier import (
    ARMS,
    TEACHER_ARM,
    condition_kinds,
    fold_scores,
    frontier_contrasts,
    plot_frontier,
    read_sweep,
    seen_text,
    spread,
    step_metrics,
)
from ..analysis.plots import save
from ..arms import study_arms
from ..config import load_config, study_config
from ..data.audio import SAMPLE_RATE
from ..data.conditions.families import trained_conditions
from ..data.dataset import AudioCache
from ..data.prepare import load_fold
from ..layout import StudyLayout
from ..method.checkpoint import load_model
from ..method.evaluate import metrics_from_predictions
from ..method.models import count_parameters
from ..names import CLEAN, TEACHER
from .scoring import (
    LATENCY_THREADS,
    PRECISIONS,
    export_fp32,
    exported,
    fold_calibration,
    latency_ms_per_s,
    onnx_labels,
    onnx_logits,
    predictions,
)
from .table3 import conditions_of

INT8_UA = ("deploy", "all", "off")
EXPORTS = "exports"


def int8_conditions(cfg, which: str) -> list:
    """The conditions the int8 exports are scored under (``which``: one of ``INT8_UA``)."""
    if which not in INT8_UA:
        raise ValueError(f"int8_ua must be one of {INT8_UA}, got {which!r}")
    return [] if which == "off" else trained_conditions(cfg.noise_types, cfg.snrs) if which == "all" else \
        conditions_of(cfg)


def _depth_sources(out: Path, sweep: dict) -> dict[int, Path]:
    """depth → its study folder, for the depths where both arms finished in some fold."""
    sources = {}
    for n, info in sorted(sweep["depths"].items(), key=lambda kv: int(kv[0])):
        folder = Path(info["folder"])
        done = [{m.fold for m in StudyLayout(folder).models(model) if m.done.is_file()} for model in ARMS]
        if set.intersection(*done):
            sources[int(n)] = folder
        else:
            print(f"frontier: depth {n} left out — no fold of {folder} has both students finished")
    if not sources:
        raise FileNotFoundError(f"{out}: no depth of the sweep has finished students to compare")
    return sources


def export_all(root: Path, study: StudyLayout, sources: dict[int, Path], layers: int, folds: list[str],
               timing_fold: str, cfg, progress: bool = True) -> dict[tuple, Path]:
    """(depth, model, precision, fold) → ONNX file under ``root``: each student of ``folds`` in fp32 and int8,
    and the teacher of the timing fold in fp32."""
    calibration = {}

    def calibrated(fold: str):  # a fold's calibration audio, made once
        return lambda: calibration.setdefault(fold, fold_calibration(cfg, load_fold(cfg, fold)))

    teacher = root / TEACHER / timing_fold / f"{TEACHER}.onnx"
    paths = {(layers, TEACHER, "fp32", timing_fold): export_fp32(study.dir, timing_fold, TEACHER, teacher)}
    jobs = [(n, model, fold) for n in sources for model in ARMS for fold in folds]
    for n, model, fold in tqdm(jobs, desc="ONNX exports", disable=not progress):
        where = root / f"depth-{n}" / fold
        made = exported(sources[n], fold, model, where / f"{model}.onnx", where / f"{model}_int8.onnx",
                        calibrated(fold))
        paths |= {(n, model, precision, fold): path for precision, path in made.items()}
    return paths


def _per_fold(cfg, study: StudyLayout, sources: dict, layers: int) -> tuple[list, dict, pd.DataFrame]:
    """Each depth's arms' and the teacher's per-fold UA from the steps' own metrics.csv (fp32, PyTorch)."""
    per_fold, metrics = [], {}
    for n, folder in sources.items():
        metrics[n] = step_metrics(folder, ARMS)
        for model, arm in ARMS.items():
            per_fold.append(fold_scores(metrics[n], model, cfg).assign(depth=n, arm=arm, model=model, precision="fp32"))
    teacher = step_metrics(study.dir, [TEACHER])
    per_fold.append(fold_scores(teacher, TEACHER, cfg).assign(depth=layers, arm=TEACHER_ARM, model=TEACHER,
                                                              precision="fp32"))
    return per_fold, metrics, teacher


def _common_folds(per_fold: list, study: StudyLayout, sources: dict, out: Path) -> list[str]:
    """The folds where every depth's two arms finished and the teacher and both arms have checkpoints."""
    folds = sorted(set.intersection(*[set(f.dropna(how="all", subset=["clean", "noisy"]).index)
                                      for f in per_fold[:-1]]))
    folds = [f for f in folds if study.fold(f).model(TEACHER).best_ckpt.is_file()
             and all(StudyLayout(src).fold(f).model(m).best_ckpt.is_file() for src in sources.values() for m in ARMS)]
    if not folds:
        raise FileNotFoundError(f"{out}: no fold has the teacher and both student arms at every depth")
    return folds


def measure(out: str | Path, int8_ua: str = "deploy", rounds: int = 5, progress: bool = True
            ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(``frontier.csv``'s rows, the per-fold UA behind them: depth, arm, model, precision, fold, clean, noisy,
    unseen). Exports what it needs into ``<out>/exports/`` (reusing exports newer than their checkpoints)."""
    out = Path(out)
    sweep = read_sweep(out)
    study = StudyLayout(sweep["study"])
    cfg, layers = study_config(study.dir), int(sweep["teacher_layers"])
    sources = _depth_sources(out, sweep)
    conditions = int8_conditions(cfg, int8_ua)
    per_fold, metrics, teacher_metrics = _per_fold(cfg, study, sources, layers)
    folds = _common_folds(per_fold, study, sources, out)
    timing_fold = folds[0]
    paths = export_all(out / EXPORTS, study, sources, layers, folds if conditions else [timing_fold], timing_fold,
                       cfg, progress)
    # latency: every model of the timing fold in the same rounds, on its test speaker's utterances
    audio = AudioCache(cfg.max_seconds)
    waves = [audio.get(r.utt_id, r.path) for r in load_fold(cfg, timing_fold).test.head(cfg.bench_utterances)
             .itertuples()]
    timed = {k[:3]: p for k, p in paths.items() if k[3] == timing_fold}
    latency = latency_ms_per_s(timed, waves, rounds)
    for fold in tqdm(folds if conditions else [], desc="int8 UA", disable=not progress):
        mine = {k[:3]: p for k, p in paths.items() if k[3] == fold and k[2] == "int8"}
        rows = predictions({k: onnx_logits(p, cfg.threads) for k, p in mine.items()}, cfg, load_fold(cfg, fold),
                           conditions, {k: onnx_labels(p) for k, p in mine.items()})
        for (n, model, _), g in rows.groupby("key", sort=False):
            scores = fold_scores(metrics_from_predictions(g.drop(columns="key"), model, fold), model, cfg)
            per_fold.append(scores.assign(depth=n, arm=ARMS[model], model=model, precision="int8"))
    per_fold = pd.concat(per_fold).rename_axis("fold").reset_index()
    per_fold = per_fold[per_fold.fold.isin(folds)].reset_index(drop=True)
    context = dict(cfg=cfg, study=study, sources=sources, layers=layers, own=int(sweep["study_depth"]),
                   metrics=metrics, teacher_metrics=teacher_metrics, folds=folds, conditions=conditions,
                   int8_ua=int8_ua, timing_fold=timing_fold, waves=waves, rounds=rounds)
    return _rows(per_fold, timed, latency, context), per_fold


def _same_conditions(context: dict, n: int, model: str) -> float:
    """The fp32 model's UA on exactly the int8 rows' noisy conditions (from metrics.csv): what an int8 UA is read
    against."""
    cfg, metrics, folds = context["cfg"], context["metrics"], context["folds"]
    keys = {(c.noise, float(c.snr_db)) for c in context["conditions"] if c.noise != CLEAN}
    m = metrics[n][(metrics[n].model == model) & metrics[n].fold.isin(folds)]
    m = m[condition_kinds(m, cfg) == "seen"]
    sel = m[[(r.noise, float(r.snr_db)) in keys for r in m.itertuples()]]
    return spread(100 * sel.groupby("fold")["ua"].mean())[0] if len(sel) else np.nan


def _rows(per_fold: pd.DataFrame, timed: dict, latency: dict, c: dict) -> pd.DataFrame:
    """frontier.csv: one row per depth × arm × precision, and the teacher's."""
    cfg, conditions = c["cfg"], c["conditions"]
    has_unseen = any("condition" in m and (condition_kinds(m, cfg) == "unseen").any()
                     for m in [*c["metrics"].values(), c["teacher_metrics"]])
    seen, unseen = seen_text(cfg), "; unseen conditions pooled" if has_unseen else ""
    int8_text = ("not scored (int8_ua=off)" if not conditions else
                 "clean; noisy: " + ", ".join(f"{k.noise} {k.snr_db:g} dB" for k in conditions if k.noise != CLEAN)
                 + " (the int8 export, scored here)")
    out, parameters = [], {}
    keys = [(c["layers"], TEACHER, "fp32")] + [(n, m, p) for n in c["sources"] for m in ARMS for p in PRECISIONS]
    for n, model, precision in keys:
        src = c["study"].dir if model == TEACHER else c["sources"][n]
        f = per_fold[(per_fold.depth == n) & (per_fold.model == model) & (per_fold.precision == precision)]
        clean, noisy, unseen_ua = (spread(f[k]) for k in ("clean", "noisy", "unseen"))
        ckpt = StudyLayout(src).fold(c["timing_fold"]).model(model).best_ckpt
        parameters.setdefault(ckpt, count_parameters(load_model(ckpt)))
        fp32 = precision == "fp32"
        out.append({
            "depth": n, "arm": TEACHER_ARM if model == TEACHER else ARMS[model], "model": model,
            "precision": precision, "study_depth": model != TEACHER and n == c["own"],
            "parameters": parameters[ckpt], "file_mib": timed[(n, model, precision)].stat().st_size / 2**20,
            "latency_ms_per_s": latency[(n, model, precision)],
            "clean_ua_mean": clean[0], "clean_ua_std": clean[1], "noisy_ua_mean": noisy[0], "noisy_ua_std": noisy[1],
            "unseen_ua_mean": unseen_ua[0], "unseen_ua_std": unseen_ua[1], "n_folds": max(clean[2], noisy[2]),
            "ua_source": "the steps' metrics.csv (PyTorch)" if fp32 else ("int8 ONNX" if conditions else ""),
            "ua_conditions": f"clean; {seen}{unseen}" if fp32 else int8_text,
            "noisy_as_fp32": fp32 or c["int8_ua"] == "all",
            "fp32_noisy_ua_same_conditions_mean": np.nan if fp32 or not conditions else _same_conditions(c, n, model),
            "latency_fold": c["timing_fold"], "latency_utterances": len(c["waves"]),
            "latency_audio_s": round(sum(len(w) for w in c["waves"]) / SAMPLE_RATE, 3),
            "latency_threads": LATENCY_THREADS, "latency_rounds": c["rounds"]})
    return pd.DataFrame(out)


def write_frontier(out: str | Path, int8_ua: str = "deploy", rounds: int = 5, progress: bool = True) -> list[Path]:
    """``frontier.csv``, ``frontier_folds.csv`` (the per-fold UA behind it), ``frontier_contrasts.csv`` and
    ``frontier.png`` in the sweep folder ``out``; returns their paths."""
    out = Path(out)
    sweep = read_sweep(out)
    cfg = load_config(StudyLayout(sweep["study"]).config)
    frontier, per_fold = measure(out, int8_ua, rounds, progress)
    contrasts = frontier_contrasts(per_fold, int(sweep["study_depth"]), study_arms(cfg), cfg.seed)
    paths = [out / "frontier.csv", out / "frontier_folds.csv", out / "frontier_contrasts.csv", out / "frontier.png"]
    frontier.to_csv(paths[0], index=False)
    per_fold.to_csv(paths[1], index=False)
    contrasts.to_csv(paths[2], index=False)
    save(plot_frontier(frontier, contrasts, cfg.corpus == "synthetic"), paths[3])
    return paths
