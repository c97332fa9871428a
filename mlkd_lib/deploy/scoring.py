"""A study's models as deployed, exported and scored in one place. Table 3 (each fold's MLKD student in fp32 and
int8 beside its PyTorch self, ``table3.py``) and the depth frontier (every depth's students, ``frontier.py``) both
call it, so they export, reuse and score the same way.

- ``exported``: a model of a fold as fp32 ONNX (``export.export_from_study``: checked against PyTorch to 1e-4)
  and int8 quantized from that checked file (convolutions calibrated on the fold's training speech, as
  ``mlkd export --int8`` does), each kept from an earlier run while newer than what it was made from.
- ``predictions``: every utterance of a fold's test speakers, one at a time (batch 1, as deployed), under the
  given conditions, through each model; the audio is the evaluation's own (``conditions.families.heard``).
- ``latency_ms_per_s``: milliseconds of one onnxruntime thread per second of audio, every model in the same
  interleaved rounds (``time_rounds``), the median round: on a shared machine the load drifts, and timing one
  model after another would hand that drift to their comparison.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from ..data.audio import SAMPLE_RATE
from ..data.conditions.families import heard
from ..data.dataset import AudioCache
from ..layout import StudyLayout
from .export import INPUT, calibration_audio, export_from_study, quantize_int8, write_sidecar
from .predict import ort_session, sidecar_path

LATENCY_THREADS = 1
PRECISIONS = ("fp32", "int8")


def fresh(path: Path, source: Path) -> bool:
    """A file to reuse: there, with its sidecar, and newer than what it was made from."""
    return path.is_file() and sidecar_path(path).is_file() and path.stat().st_mtime >= source.stat().st_mtime


def export_fp32(study_dir: Path, fold: str, model: str, path: Path) -> Path:
    """``model`` of ``fold`` as fp32 ONNX at ``path``, checked against PyTorch, kept while newer than its checkpoint."""
    if not fresh(path, StudyLayout(study_dir).fold(fold).model(model).best_ckpt):
        path.parent.mkdir(parents=True, exist_ok=True)
        export_from_study(study_dir, fold, model, path)
    return path


def quantized(fp32: Path, path: Path, calibration: list[np.ndarray]) -> Path:
    """The int8 version of a checked fp32 export, with a sidecar carrying the fp32 file's provenance and the
    largest logit difference between the two files on four calibration utterances (quantizing the checked file
    saves the second PyTorch export and check that ``export_from_study(int8=True)`` would make)."""
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
    write_sidecar(path, meta["labels"], **provenance, precision="int8", int8_scheme="conv+matmul",
                  calibration_utterances=len(calibration), quantized_from=str(fp32),
                  int8_max_logit_diff_vs_fp32_onnx=diff)
    return path


def exported(study_dir: Path, fold: str, model: str, fp32: Path, int8: Path, calibration) -> dict[str, Path]:
    """``{"fp32": ..., "int8": ...}``: the model exported and quantized (``calibration``: a callable giving the
    fold's calibration audio, asked only where the int8 file must be made)."""
    fp32 = export_fp32(Path(study_dir), fold, model, fp32)
    return {"fp32": fp32, "int8": int8 if fresh(int8, fp32) else quantized(fp32, int8, calibration())}


def fold_calibration(cfg, data) -> list[np.ndarray]:
    """The fold's calibration audio, the same draw as ``mlkd export --int8``'s."""
    return calibration_audio(cfg, data)


def predictions(runners: dict, cfg, data, conditions: list, labels: dict[str, list[str]],
                progress=None) -> pd.DataFrame:
    """One row per utterance × condition × runner (``runners``: key → waveform → logits; ``labels``: key → the
    runner's classes in logit order): utt_id, noise, snr_db, label, pred, key. Every utterance is heard as the
    evaluation made it and classified on its own."""
    audio, rows = AudioCache(cfg.max_seconds), []
    for condition in (progress or (lambda x: x))(conditions):
        for r in data.test.itertuples():
            clean = audio.get(r.utt_id, r.path)
            speech_db = None if condition.is_signal or condition.noise == "clean" else \
                audio.level_db(r.utt_id, r.path, cfg.level)
            x = np.asarray(heard(clean, r.utt_id, condition, data.noise_bank, data.rirs, cfg.seed, cfg.level,
                                 speech_db), dtype=np.float32)
            for key, run in runners.items():
                rows.append(dict(utt_id=r.utt_id, noise=condition.noise, snr_db=condition.snr_db,
                                 label=labels[key].index(r.emotion), pred=int(np.argmax(run(x))), key=key))
    return pd.DataFrame(rows)


def onnx_logits(path: Path, threads: int = 0):
    """A runner of ``predictions``: the ONNX model's logits for one waveform."""
    session = ort_session(path, threads)
    return lambda x: session.run(None, {INPUT: x[None]})[0][0]


def onnx_labels(path: Path) -> list[str]:
    return json.loads(sidecar_path(path).read_text())["labels"]


def onnx_runner(path: str | Path, threads: int) -> Callable[[np.ndarray], None]:
    sess = ort_session(path, threads)
    return lambda w: sess.run(None, {INPUT: w[None]})


def time_rounds(runners: dict[str, Callable[[np.ndarray], None]], waves: list[np.ndarray], rounds: int = 3
                ) -> dict[str, float]:
    """Median over ``rounds`` of each runner's seconds to classify ``waves`` one by one (batch 1).
    Every round runs all runners in turn, in a rotated order; one warm-up call each first."""
    for run in runners.values():
        run(waves[0])
    names, times = list(runners), {k: [] for k in runners}
    for r in range(rounds):
        for name in names[r % len(names):] + names[: r % len(names)]:
            t0 = time.perf_counter()
            for w in waves:
                runners[name](w)
            times[name].append(time.perf_counter() - t0)
    return {k: float(np.median(v)) for k, v in times.items()}


def latency_ms_per_s(paths: dict, waves: list[np.ndarray], rounds: int) -> dict:
    """Each ONNX model's median-round time per second of audio (ms), all timed in the same interleaved rounds on
    ``waves``, one onnxruntime thread each."""
    seconds = time_rounds({k: onnx_runner(p, LATENCY_THREADS) for k, p in paths.items()}, waves, rounds)
    audio_s = sum(len(w) for w in waves) / SAMPLE_RATE
    return {k: 1000 * t / audio_s for k, t in seconds.items()}
