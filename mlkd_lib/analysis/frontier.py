"""The depth frontier of a sweep (``study/sweep.py``): accuracy in noise against CPU cost, depth by depth.

``frontier.csv``: one row per depth × arm (MLKD, CE-only) × precision (fp32, int8), and the teacher's (fp32).
- parameters: counted in the fold's checkpoint; file_mib: the exported ONNX file (``deploy/export.py``).
- latency_ms_per_s: milliseconds of onnxruntime CPU time per second of audio, one thread, batch 1, on the
  test utterances of one fold (``bench_utterances`` of them), every model timed in the same interleaved rounds
  (``bench.time_rounds``), the median round. Measured on the machine that writes the table, each run.
- UA (%): clean, pooled noisy (per fold the mean over the study's training noise × SNR conditions, then
  mean and std over folds) and, where ``metrics.csv`` has a ``condition`` column naming test-only conditions,
  pooled unseen. fp32 rows read the depth folder's steps' own ``metrics.csv`` (the PyTorch models, which the
  fp32 exports match to 1e-4 in the logits). int8 rows score the int8 export of every fold here, on the same test audio
  (``NoisyPairDataset``), under ``int8_ua``'s conditions: "deploy" (default; Table 3's: clean and Table 1's
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
from tqdm.auto import tqdm

from ..arms import ARMS as STUDENT_ARMS
from ..arms import color, method_arm, study_arms
from ..config import load_config
from ..layout import StudyLayout
from ..names import CLEAN, TEACHER
from .plots import SYNTHETIC_SUFFIX, save
from .stats import paired_test, paper_contrast

ARMS = {a.name: a.short for a in STUDENT_ARMS if a.frontier}  # the arms retrained at every depth
TEACHER_ARM = "teacher"
PRECISIONS = ("fp32", "int8")
INT8_UA = ("deploy", "all", "off")
LATENCY_THREADS = 1
EXPORTS = "exports"
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


def int8_conditions(cfg, which: str) -> list:
    """The conditions the int8 exports are scored under (``which``: one of ``INT8_UA``)."""
    from ..data.conditions.families import Condition, trained_conditions
    from ..deploy.table3 import conditions_of
    if which not in INT8_UA:
        raise ValueError(f"int8_ua must be one of {INT8_UA}, got {which!r}")
    if which == "off":
        return []
    if which == "all":
        return trained_conditions(cfg.noise_types, cfg.snrs)
    return [Condition(n, s) for n, s in conditions_of(cfg)]


def _fresh(path: Path, source: Path) -> bool:
    """A file to reuse: there, with its sidecar, and newer than what it was made from."""
    from ..deploy.predict import sidecar_path
    return path.is_file() and sidecar_path(path).is_file() and path.stat().st_mtime >= source.stat().st_mtime


def export_fp32(study_dir: Path, fold: str, model: str, path: Path) -> Path:
    """``model`` of ``fold`` as fp32 ONNX at ``path``, checked against PyTorch (``export.export_from_study``), kept
    from an earlier run while newer than its checkpoint. The file lies in the sweep's ``exports/`` folder, never in
    a study's step folder (the study's own depth and the teachers are links into the study, never written)."""
    from ..deploy.export import export_from_study
    if not _fresh(path, StudyLayout(study_dir).fold(fold).model(model).best_ckpt):
        path.parent.mkdir(parents=True, exist_ok=True)
        export_from_study(study_dir, fold, model, path)
    return path


def quantized(fp32: Path, path: Path, calibration: list[np.ndarray]) -> Path:
    """The int8 version of the fp32 export (``export.quantize_int8``, convolutions calibrated as ``mlkd export
    --int8`` does, on the fold's training speech), with a sidecar carrying the fp32 file's provenance and the largest
    logit difference between the two files on four calibration utterances. Quantizing the checked fp32 file saves
    the second PyTorch export and check that ``export_from_study(int8=True)`` would make."""
    import shutil
    import tempfile

    from ..deploy.export import INPUT, quantize_int8, write_sidecar
    from ..deploy.predict import ort_session, sidecar_path
    with tempfile.TemporaryDirectory() as tmp:
        done = quantize_int8(fp32, Path(tmp) / "int8.onnx", "conv+matmul", calibration)
        a, b = ort_session(fp32, 1), ort_session(done, 1)
        diff = max(float(np.abs(a.run(None, {INPUT: w[None]})[0] - b.run(None, {INPUT: w[None]})[0]).max())
                   for w in calibration[:4])
        shutil.move(done, path)
    meta = json.loads(sidecar_path(fp32).read_text())
    made = {"labels", "sample_rate", "input", "output", "input_note", "size_mib", "exported", "export_git_commit",
            "versions", "precision"}
    provenance = {k: v for k, v in meta.items() if k not in made}
    provenance["fp32_max_logit_diff_vs_torch"] = provenance.pop("max_logit_diff_vs_torch", None)
    write_sidecar(path, meta["labels"], **provenance, precision="int8",
                  int8_scheme="conv+matmul", calibration_utterances=len(calibration), quantized_from=str(fp32),
                  int8_max_logit_diff_vs_fp32_onnx=diff)
    return path


def score_onnx(paths: dict, cfg, fold: str, conditions: list, threads: int = 0) -> pd.DataFrame:
    """Long metrics rows (``evaluate.metrics_from_predictions``) of each ONNX model of ``paths`` (key → file) on
    ``fold``'s test speaker under ``conditions``, one utterance at a time, with a ``key`` column. The noisy
    audio is the evaluation's own (``NoisyPairDataset``: seed, utterance, noise, SNR), made once for all."""
    from ..data.dataset import AudioCache, NoisyPairDataset
    from ..data.prepare import load_fold
    from ..deploy.export import INPUT
    from ..deploy.predict import ort_session, sidecar_path
    from ..method.evaluate import metrics_from_predictions
    data, audio = load_fold(cfg, fold), AudioCache(cfg.max_seconds)
    sessions = {k: ort_session(p, threads) for k, p in paths.items()}
    labels = {k: json.loads(sidecar_path(p).read_text())["labels"] for k, p in paths.items()}
    rows = {k: [] for k in paths}
    for condition in conditions:
        ds = NoisyPairDataset(data.test, data.noise_bank, condition, seed=cfg.seed, level=cfg.level, audio=audio,
                              labels=cfg.emotions)
        for i in range(len(ds)):
            item = ds[i]
            x = np.asarray(item["noisy"], dtype=np.float32)[None]
            emotion = cfg.emotions[int(item["label"])]
            for k, sess in sessions.items():
                rows[k].append(dict(utt_id=item["utt_id"], noise=condition.noise, snr_db=condition.snr_db,
                                    label=labels[k].index(emotion), pred=int(np.argmax(sess.run(None, {INPUT: x})[0]))))
    parts = []
    for k, r in rows.items():
        m = metrics_from_predictions(pd.DataFrame(r), str(k), fold)
        parts.append(m.assign(key=[k] * len(m)))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def latency_ms_per_s(paths: dict, waves: list[np.ndarray], rounds: int) -> dict:
    """Each ONNX model's median-round time per second of audio (ms), all timed in the same interleaved rounds
    on ``waves``, one onnxruntime thread each."""
    from ..data.audio import SAMPLE_RATE
    from .bench import onnx_runner, time_rounds
    seconds = time_rounds({k: onnx_runner(p, LATENCY_THREADS) for k, p in paths.items()}, waves, rounds)
    audio_s = sum(len(w) for w in waves) / SAMPLE_RATE
    return {k: 1000 * t / audio_s for k, t in seconds.items()}


def step_metrics(study_dir: str | Path, models) -> pd.DataFrame:
    """The metrics rows of ``models``' finished steps, read from each step's own ``metrics.csv`` (every column it
    has, ``condition`` included; the study's collected metrics.csv is the analysis step's, which may lag)."""
    files = [m.metrics for model in models for m in StudyLayout(study_dir).models(model)
             if m.done.is_file() and m.metrics.is_file()]
    return pd.concat([pd.read_csv(f) for f in files], ignore_index=True) if files else pd.DataFrame(
        columns=["model", "noise", "snr_db", "fold", "ua", "wa", "n"])


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
    from ..data.prepare import load_fold
    from ..deploy.export import calibration_audio
    calibration = {}

    def calibrated(fold: str) -> list[np.ndarray]:  # a fold's calibration audio: the same draw as `mlkd export`'s
        if fold not in calibration:
            calibration[fold] = calibration_audio(cfg, load_fold(cfg, fold))
        return calibration[fold]

    paths = {(layers, TEACHER, "fp32", timing_fold): export_fp32(study.dir, timing_fold, TEACHER,
                                                                 root / TEACHER / timing_fold / f"{TEACHER}.onnx")}
    jobs = [(n, model, fold) for n in sources for model in ARMS for fold in folds]
    for n, model, fold in tqdm(jobs, desc="ONNX exports", disable=not progress):
        where = root / f"depth-{n}" / fold
        fp32 = paths[(n, model, "fp32", fold)] = export_fp32(sources[n], fold, model, where / f"{model}.onnx")
        int8 = where / f"{model}_int8.onnx"
        paths[(n, model, "int8", fold)] = int8 if _fresh(int8, fp32) else quantized(fp32, int8, calibrated(fold))
    return paths


def frontier_table(out: str | Path, int8_ua: str = "deploy", rounds: int = 5, progress: bool = True
                   ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(``frontier.csv``'s rows, the per-fold UA behind them: depth, arm, model, precision, fold, clean, noisy,
    unseen). Exports what it needs into ``<out>/exports/`` (reusing exports newer than their checkpoints)."""
    from ..data.audio import SAMPLE_RATE
    from ..data.dataset import AudioCache
    from ..data.prepare import load_fold
    from ..method.checkpoint import load_model
    from ..method.models import count_parameters
    out = Path(out)
    sweep = read_sweep(out)
    study = StudyLayout(sweep["study"])
    cfg, own, layers = load_config(study.config), int(sweep["study_depth"]), int(sweep["teacher_layers"])
    sources = _depth_sources(out, sweep)
    conditions = int8_conditions(cfg, int8_ua)
    per_fold, metrics = [], {}
    for n, folder in sources.items():
        metrics[n] = step_metrics(folder, ARMS)
        for model, arm in ARMS.items():
            per_fold.append(fold_scores(metrics[n], model, cfg).assign(depth=n, arm=arm, model=model, precision="fp32"))
    # the folds every depth's two arms finished (the teacher's are the study's, a superset)
    folds = sorted(set.intersection(*[set(f.dropna(how="all", subset=["clean", "noisy"]).index) for f in per_fold]))
    teacher_metrics = step_metrics(study.dir, [TEACHER])
    per_fold.append(fold_scores(teacher_metrics, TEACHER, cfg).assign(depth=layers, arm=TEACHER_ARM, model=TEACHER,
                                                                      precision="fp32"))
    folds = [f for f in folds if study.fold(f).model(TEACHER).best_ckpt.is_file()
             and all(StudyLayout(src).fold(f).model(m).best_ckpt.is_file() for src in sources.values() for m in ARMS)]
    if not folds:
        raise FileNotFoundError(f"{out}: no fold has the teacher and both student arms at every depth")
    timing_fold = folds[0]
    paths = export_all(out / EXPORTS, study, sources, layers, folds if conditions else [timing_fold], timing_fold,
                       cfg, progress)
    # latency: every model of the timing fold in the same rounds, on its test speaker's utterances
    rows = load_fold(cfg, timing_fold).test.head(cfg.bench_utterances)
    audio = AudioCache(cfg.max_seconds)
    waves = [audio.get(r.utt_id, r.path) for r in rows.itertuples()]
    timed = {k[:3]: p for k, p in paths.items() if k[3] == timing_fold}
    latency = latency_ms_per_s(timed, waves, rounds)
    # int8 UA: every fold's int8 exports on the same test audio
    scored = []
    for fold in tqdm(folds if conditions else [], desc="int8 UA", disable=not progress):
        mine = {k[:3]: p for k, p in paths.items() if k[3] == fold and k[2] == "int8"}
        scored.append(score_onnx(mine, cfg, fold, conditions, cfg.threads))
    if scored:
        int8 = pd.concat(scored, ignore_index=True)
        for (n, model, _), g in int8.groupby("key", sort=False):
            scores = fold_scores(g.assign(model=model), model, cfg)
            per_fold.append(scores.assign(depth=n, arm=ARMS[model], model=model, precision="int8"))
    per_fold = pd.concat(per_fold).rename_axis("fold").reset_index()
    per_fold = per_fold[per_fold.fold.isin(folds)]
    # the fp32 models' UA on exactly the int8 conditions (from metrics.csv): the reference an int8 UA is read against
    deploy_keys = {(c.noise, float(c.snr_db)) for c in conditions if c.noise != CLEAN}

    def same_conditions(n: int, model: str) -> float:
        m = metrics[n][(metrics[n].model == model) & metrics[n].fold.isin(folds)]
        m = m[condition_kinds(m, cfg) == "seen"]
        sel = m[[(r.noise, float(r.snr_db)) in deploy_keys for r in m.itertuples()]]
        return spread(100 * sel.groupby("fold")["ua"].mean())[0] if len(sel) else np.nan

    has_unseen = any("condition" in m and (condition_kinds(m, cfg) == "unseen").any()
                     for m in [*metrics.values(), teacher_metrics])
    seen, unseen = seen_text(cfg), "; unseen conditions pooled" if has_unseen else ""
    int8_text = ("not scored (int8_ua=off)" if not conditions else
                 "clean; noisy: " + ", ".join(f"{c.noise} {c.snr_db:g} dB" for c in conditions if c.noise != CLEAN)
                 + " (the int8 export, scored here)")
    out_rows, parameters = [], {}
    keys = [(layers, TEACHER, "fp32")] + [(n, m, p) for n in sources for m in ARMS for p in PRECISIONS]
    for n, model, precision in keys:
        src = study.dir if model == TEACHER else sources[n]
        f = per_fold[(per_fold.depth == n) & (per_fold.model == model) & (per_fold.precision == precision)]
        clean, noisy, unseen_ua = (spread(f[c]) for c in ("clean", "noisy", "unseen"))
        ckpt = StudyLayout(src).fold(timing_fold).model(model).best_ckpt
        if ckpt not in parameters:
            parameters[ckpt] = count_parameters(load_model(ckpt))
        path = timed[(n, model, precision)]
        fp32 = precision == "fp32"
        out_rows.append({
            "depth": n, "arm": TEACHER_ARM if model == TEACHER else ARMS[model], "model": model,
            "precision": precision, "study_depth": model != TEACHER and n == own,
            "parameters": parameters[ckpt], "file_mib": path.stat().st_size / 2**20,
            "latency_ms_per_s": latency[(n, model, precision)],
            "clean_ua_mean": clean[0], "clean_ua_std": clean[1], "noisy_ua_mean": noisy[0], "noisy_ua_std": noisy[1],
            "unseen_ua_mean": unseen_ua[0], "unseen_ua_std": unseen_ua[1],
            "n_folds": max(clean[2], noisy[2]),
            "ua_source": "the steps' metrics.csv (PyTorch)" if fp32 else ("int8 ONNX" if conditions else ""),
            "ua_conditions": f"clean; {seen}{unseen}" if fp32 else int8_text,
            "noisy_as_fp32": fp32 or int8_ua == "all",
            "fp32_noisy_ua_same_conditions_mean": np.nan if fp32 or not conditions else same_conditions(n, model),
            "latency_fold": timing_fold, "latency_utterances": len(waves),
            "latency_audio_s": round(sum(len(w) for w in waves) / SAMPLE_RATE, 3), "latency_threads": LATENCY_THREADS,
            "latency_rounds": rounds})
    return pd.DataFrame(out_rows), per_fold.reset_index(drop=True)


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


def write_frontier(out: str | Path, int8_ua: str = "deploy", rounds: int = 5, progress: bool = True) -> list[Path]:
    """``frontier.csv``, ``frontier_folds.csv`` (the per-fold UA behind it), ``frontier_contrasts.csv`` and
    ``frontier.png`` in the sweep folder ``out``; returns their paths."""
    out = Path(out)
    sweep = read_sweep(out)
    cfg = load_config(StudyLayout(sweep["study"]).config)
    frontier, per_fold = frontier_table(out, int8_ua, rounds, progress)
    contrasts = frontier_contrasts(per_fold, int(sweep["study_depth"]), study_arms(cfg), cfg.seed)
    paths = [out / "frontier.csv", out / "frontier_folds.csv", out / "frontier_contrasts.csv", out / "frontier.png"]
    frontier.to_csv(paths[0], index=False)
    per_fold.to_csv(paths[1], index=False)
    contrasts.to_csv(paths[2], index=False)
    fig = plot_frontier(frontier, contrasts, cfg.corpus == "synthetic")
    save(fig, paths[3])
    return paths
