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
from ..config import study_config
from ..data.conditions.families import Condition
from ..data.prepare import load_fold
from ..layout import StudyLayout
from ..method.checkpoint import load_model
from ..method.evaluate import ua_wa
from ..names import CLEAN, NO_LEVEL, reference_noise
from .scoring import exported, fold_calibration, onnx_logits, predictions

DEPLOY_SNRS = (0.0, 10.0)
VERSIONS = ("torch", "onnx_fp32", "onnx_int8")
ONNX_FILES = {"onnx_fp32": "student.onnx", "onnx_int8": "student_int8.onnx"}


def export_fold(study_dir: str | Path, fold: str, cfg=None) -> dict[str, Path]:
    """``student.onnx`` and ``student_int8.onnx`` (with sidecars) in the step folder of the fold's MLKD student
    (``scoring.exported``: kept while newer than the checkpoint)."""
    study = StudyLayout(study_dir)
    cfg = cfg or study_config(study.dir)
    folder = study.fold(fold).model(method_arm().name)
    paths = exported(study.dir, fold, folder.name, *(folder.path / n for n in ONNX_FILES.values()),
                     lambda: fold_calibration(cfg, load_fold(cfg, fold)))
    return {"onnx_fp32": paths["fp32"], "onnx_int8": paths["int8"]}


def conditions_of(cfg) -> list[Condition]:
    """Clean speech and Table 1's noise at 0 and 10 dB (where the study has them)."""
    noise = reference_noise(cfg.noise_types)
    return [Condition(CLEAN)] + [Condition(noise, s) for s in DEPLOY_SNRS if any(np.isclose(s, x) for x in cfg.snrs)]


def score_fold(study_dir: str | Path, cfg, fold: str, threads: int = 1, progress: bool = True) -> pd.DataFrame:
    """Per-utterance predictions of the three versions of the fold's MLKD student (one row per
    utterance × condition × version: utt_id, noise, snr_db, label, pred, version, fold)."""
    paths = export_fold(study_dir, fold, cfg)
    model = load_model(StudyLayout(study_dir).fold(fold).model(method_arm().name).best_ckpt).eval()

    def torch_logits(x):
        with torch.no_grad():
            return model(torch.from_numpy(x)[None]).logits[0].numpy()

    runners = {"torch": torch_logits, **{v: onnx_logits(p, threads) for v, p in paths.items()}}
    bar = lambda c: tqdm(c, desc=f"deployed student {fold}", disable=not progress, leave=False)  # noqa: E731
    rows = predictions(runners, cfg, load_fold(cfg, fold), conditions_of(cfg), {k: model.labels for k in runners},
                       bar)
    return rows.rename(columns={"key": "version"}).assign(fold=fold)


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
        for (noise, snr), c in g.groupby(["noise", g["snr_db"].fillna(NO_LEVEL)], sort=False):
            name = CLEAN if noise == CLEAN else f"{noise} {snr:g} dB"
            row[f"UA {name}"] = 100 * float(np.mean([ua_wa(f["label"], f["pred"])[0] for _, f in c.groupby("fold")]))
        key = ["fold", "utt_id", "noise", "snr_db"]
        for ref in ("torch", "onnx_fp32"):
            both = g.merge(pred[pred.version == ref], on=key, suffixes=("", "_ref"))
            row[f"agrees with {ref} %"] = 100 * float((both["pred"] == both["pred_ref"]).mean())
        row["utterances"] = len(g)
        out.append(row)
    return pd.DataFrame(out)
