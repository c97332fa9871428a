"""Table 3 as deployed: each fold's MLKD student exported (ONNX fp32 and int8) and scored beside
its PyTorch self on the same test audio, so that a deployment's loss of accuracy is measured, not assumed.

The three versions classify every utterance on its own (batch 1, as deployed), under clean speech
and Table 1's noise (factory, as in the paper, where the study has it) at 0 and 10 dB; others in the study
are skipped.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from ..arms import method_arm
from ..data.conditions.families import Condition, heard
from ..data.dataset import AudioCache
from ..data.prepare import load_fold
from ..layout import StudyLayout
from ..method.checkpoint import load_model
from ..method.evaluate import ua_wa
from ..names import CLEAN, reference_noise
from .export import export_from_study
from .predict import ort_session

DEPLOY_SNRS = (0.0, 10.0)
VERSIONS = ("torch", "onnx_fp32", "onnx_int8")
ONNX_FILES = {"onnx_fp32": "student.onnx", "onnx_int8": "student_int8.onnx"}


def export_fold(study_dir: str | Path, fold: str, role: str | None = None, reuse: bool = False) -> dict[str, Path]:
    """``student.onnx`` and ``student_int8.onnx`` (with sidecars) in the fold's step folder of ``role`` (the method's
    student by default). ``reuse``: keep files newer than the checkpoint (the timing reuses what the scoring just
    exported)."""
    role = role or method_arm().name
    folder = StudyLayout(study_dir).fold(fold).model(role)
    paths = {v: folder.path / name for v, name in ONNX_FILES.items()}
    for version, path in paths.items():
        if not (reuse and path.is_file() and path.stat().st_mtime >= folder.best_ckpt.stat().st_mtime):
            export_from_study(study_dir, fold, role, path, int8=version == "onnx_int8")
    return paths


def conditions_of(cfg) -> list[tuple[str, float | None]]:
    noise = reference_noise(cfg.noise_types)
    return [(CLEAN, None)] + [(noise, s) for s in DEPLOY_SNRS if any(np.isclose(s, x) for x in cfg.snrs)]


def score_fold(study_dir: str | Path, cfg, fold: str, threads: int = 1, progress: bool = True) -> pd.DataFrame:
    """Per-utterance predictions of the three versions of the fold's MLKD student (one row per
    utterance × condition × version: utt_id, noise, snr_db, label, pred, version, fold)."""
    paths = export_fold(study_dir, fold)
    model = load_model(StudyLayout(study_dir).fold(fold).model(method_arm().name).best_ckpt).eval()
    sessions = {v: ort_session(p, threads) for v, p in paths.items()}
    data, audio = load_fold(cfg, fold), AudioCache(cfg.max_seconds)
    rows = []
    for noise, snr in tqdm(conditions_of(cfg), desc=f"deployed student {fold}", disable=not progress, leave=False):
        for r in data.test.itertuples():
            clean = audio.get(r.utt_id, r.path)
            x = heard(clean, r.utt_id, Condition(noise, snr), data.noise_bank, None, cfg.seed, cfg.level,
                      None if noise == CLEAN else audio.level_db(r.utt_id, r.path, cfg.level))
            x = np.asarray(x, dtype=np.float32)
            with torch.no_grad():
                logits = {"torch": model(torch.from_numpy(x)[None]).logits[0].numpy()}
            logits |= {v: s.run(None, {"waveform": x[None]})[0][0] for v, s in sessions.items()}
            label = model.labels.index(r.emotion)  # the model's classes, in its logit order
            rows += [dict(utt_id=r.utt_id, noise=noise, snr_db=snr, label=label, pred=int(np.argmax(z)), version=v,
                          fold=fold) for v, z in logits.items()]
    return pd.DataFrame(rows)


def score_study(study_dir: str | Path, cfg, threads: int = 1, progress: bool = True) -> pd.DataFrame:
    """:func:`score_fold` for every fold with a trained MLKD student; also written to ``deployed.csv``."""
    folds = [m.fold for m in StudyLayout(study_dir).models(method_arm().name) if m.best_ckpt.is_file()]
    if not folds:
        raise FileNotFoundError(f"{study_dir}: no fold has a trained MLKD student ({method_arm().name}) to deploy")
    pred = pd.concat([score_fold(study_dir, cfg, f, threads, progress) for f in folds], ignore_index=True)
    pred.to_csv(Path(study_dir) / "deployed.csv", index=False)
    return pred


def summarise_deployed(pred: pd.DataFrame) -> pd.DataFrame:
    """UA (%, mean over folds) per version and condition, and how often each version's prediction
    equals the PyTorch student's and the fp32 ONNX one's (over all utterances and conditions)."""
    out = []
    for version, g in pred.groupby("version", sort=False):
        row = {"version": version}
        for (noise, snr), c in g.groupby(["noise", g["snr_db"].fillna(-1.0)], sort=False):
            name = CLEAN if noise == CLEAN else f"{noise} {snr:g} dB"
            row[f"UA {name}"] = 100 * float(np.mean([ua_wa(f["label"], f["pred"])[0] for _, f in c.groupby("fold")]))
        key = ["fold", "utt_id", "noise", "snr_db"]
        for ref in ("torch", "onnx_fp32"):
            both = g.merge(pred[pred.version == ref], on=key, suffixes=("", "_ref"))
            row[f"agrees with {ref} %"] = 100 * float((both["pred"] == both["pred_ref"]).mean())
        row["utterances"] = len(g)
        out.append(row)
    return pd.DataFrame(out)
