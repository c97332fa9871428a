"""`mlkd export`: a trained classifier as one ONNX file (waveform in, logits out), fp32 or int8.

Why these choices:
- The graph takes whole utterances, ``(batch, samples)`` float32 at 16 kHz with a dynamic
  length axis, and normalises each one inside (zero mean, unit variance, as in training), so a
  user feeds raw audio. Without padding the frame mask is all ones, so the masked mean of the
  trained model is a plain mean here; :func:`export_onnx` checks the logits against PyTorch.
- The TorchScript exporter (``dynamo=False``, opset 17): it writes the same graph to 1e-6 in a
  few seconds, where the dynamo exporter took 20 s for the tiny model (tests and the demo
  export every fold).
- int8 ``conv+matmul`` (default): the CNN feature encoder is about half of the student's CPU
  time in onnxruntime; its convolutions are quantized statically (QDQ, per-channel weights,
  activation ranges calibrated on the fold's training speech, clean and noisy), then every
  MatMul/Gemm dynamically. The first convolution, which reads the waveform itself, stays fp32:
  8-bit waveform samples changed 7 % of the demo students' predictions, against 1 % without
  it, for about 2 % of the time. Dynamic int8 convolutions (ConvInteger) were slower than fp32
  on wav2vec2-base; ``matmul`` (dynamic MatMul/Gemm only, no calibration) is the fallback.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
import warnings
from importlib import metadata
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..arms import trained
from ..config import study_config
from ..data.audio import SAMPLE_RATE
from ..data.dataset import AudioCache, NoisyPairDataset
from ..data.prepare import load_fold
from ..layout import StudyLayout
from ..method.checkpoint import load_model
from ..method.models import EmotionClassifier, normalize_waveforms
from ..paths import git_commit
from .predict import MIN_SAMPLES, ort_session, sidecar_path

INT8_SCHEMES = ("conv+matmul", "matmul")
INPUT, OUTPUT = "waveform", "logits"


class Deployable(nn.Module):
    """``waveform (batch, samples)`` → ``logits``: every row one whole utterance (no padding)."""

    def __init__(self, model: EmotionClassifier):
        super().__init__()
        self.model = model

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        x = normalize_waveforms(waveform, torch.ones_like(waveform, dtype=torch.bool))
        hidden = self.model.encoder(x).last_hidden_state
        return self.model.head(hidden.mean(1))


def max_logit_difference(model: EmotionClassifier, onnx_path: str | Path, waves: list[np.ndarray]) -> float:
    """Largest |logit(PyTorch) − logit(onnxruntime)| over ``waves`` (each run on its own)."""
    sess, worst = ort_session(onnx_path), 0.0
    model.eval()
    for w in waves:
        with torch.no_grad():
            ref = model(torch.from_numpy(w)[None]).logits.numpy()
        got = sess.run(None, {INPUT: w[None]})[0]
        worst = max(worst, float(np.abs(ref - got).max()))
    return worst


def _check_waves(seed: int = 0) -> list[np.ndarray]:
    """Three lengths that share no common factor with the CNN's strides (0.5 s, 1.3 s, 2.7 s)."""
    rng = np.random.default_rng(seed)
    return [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in (8_000, 20_803, 43_211)]


def export_onnx(model: EmotionClassifier, out: str | Path, tolerance: float = 1e-4) -> float:
    """Write ``model`` as fp32 ONNX to ``out``; return the max logit difference to PyTorch on
    three lengths, raising when it exceeds ``tolerance`` (an export is not right until checked)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    wrapped = Deployable(model.eval().cpu()).eval()
    example = torch.zeros(1, 2 * SAMPLE_RATE).normal_(0, 0.1, generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings():  # deprecation of the TorchScript exporter, tracer notes on HF's code
        warnings.simplefilter("ignore")
        torch.onnx.export(wrapped, (example,), str(out), dynamo=False, opset_version=17,
                          input_names=[INPUT], output_names=[OUTPUT],
                          dynamic_axes={INPUT: {0: "batch", 1: "samples"}, OUTPUT: {0: "batch"}})
    diff = max_logit_difference(model, out, _check_waves())
    if diff > tolerance:
        raise RuntimeError(f"{out}: ONNX logits differ from PyTorch's by {diff:.2e} (> {tolerance:g})")
    return diff


def quantize_int8(fp32_path: str | Path, out: str | Path, scheme: str = "conv+matmul",
                  calibration: list[np.ndarray] | None = None) -> Path:
    """int8 version of an exported model (see the module notes for the two ``scheme`` values)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )
    if scheme not in INT8_SCHEMES:
        raise ValueError(f"int8 scheme must be one of {INT8_SCHEMES}, got {scheme!r}")
    if scheme == "conv+matmul" and not calibration:
        raise ValueError("int8 scheme 'conv+matmul' needs calibration audio (a list of waveforms)")
    out, src = Path(out), Path(fp32_path)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter(calibration or [])

        def get_next(self):
            w = next(self.items, None)
            return None if w is None else {INPUT: np.asarray(w, dtype=np.float32)[None]}

    root, level = logging.getLogger(), logging.getLogger().level
    root.setLevel(logging.ERROR)  # onnxruntime.quantization prints its advice on the root logger
    try:
        with tempfile.TemporaryDirectory() as tmp:
            if scheme == "conv+matmul":
                conv = Path(tmp) / "conv_int8.onnx"
                quantize_static(src, conv, Reader(), quant_format=QuantFormat.QDQ, op_types_to_quantize=["Conv"],
                                per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                                nodes_to_exclude=[first_conv(src)])
                src = conv
            quantize_dynamic(src, out, op_types_to_quantize=["MatMul", "Gemm"], weight_type=QuantType.QInt8)
    finally:
        root.setLevel(level)
    return out


def first_conv(path: str | Path) -> str:
    """Name of the convolution that reads the waveform (the first Conv; ONNX nodes are in topological order)."""
    import onnx
    names = [n.name for n in onnx.load(str(path)).graph.node if n.op_type == "Conv"]
    if not names:
        raise ValueError(f"{path}: no Conv node — not an exported classifier of a CNN-front-end encoder?")
    return names[0]


def _version(pkg: str) -> str | None:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return None


def write_sidecar(onnx_path: str | Path, labels, **provenance) -> Path:
    """``<name>.json`` beside the model: what ``mlkd predict`` needs (``labels``: the model's classes in
    logit order), and where the model came from."""
    meta = {"labels": list(labels), "sample_rate": SAMPLE_RATE, "input": INPUT, "output": OUTPUT,
            "input_note": f"(batch, samples) float32 mono at {SAMPLE_RATE} Hz, one whole utterance per row, "
                          f"at least {MIN_SAMPLES} samples; normalised inside the graph",
            "size_mib": round(Path(onnx_path).stat().st_size / 2**20, 3),
            "exported": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "export_git_commit": git_commit(),
            "versions": {p: _version(p) for p in ("torch", "transformers", "onnx", "onnxruntime")}, **provenance}
    path = sidecar_path(onnx_path)
    path.write_text(json.dumps(meta, indent=2, default=str))
    return path


def temperature_record(model: EmotionClassifier, raw: bool) -> dict | None:
    """The model's temperature as an export carries it, and whether the export applies it (not with ``raw``)."""
    return {**model.temperature_scaling, "applied": not raw} if model.temperature_scaling else None


def export_model(model: EmotionClassifier, out: str | Path, int8: bool = False, scheme: str = "conv+matmul",
                 calibration: list[np.ndarray] | None = None, raw: bool = False, **provenance) -> dict:
    """Export (and check) fp32; with ``int8`` quantize it into ``out`` instead. Writes the sidecar (with the model's
    temperature, which `mlkd predict` applies to the graph's logits unless ``raw``); returns it."""
    out = Path(out)
    if out.suffix != ".onnx":
        raise ValueError(f"{out}: the output file must end in .onnx")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:  # the file appears at ``out`` only once it is checked
        fp32, done = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        diff = export_onnx(model, fp32)
        info = {"precision": "fp32", "max_logit_diff_vs_torch": diff}
        if int8:
            quantize_int8(fp32, done, scheme, calibration)
            info = {"precision": "int8", "int8_scheme": scheme, "fp32_max_logit_diff_vs_torch": diff,
                    "calibration_utterances": len(calibration) if scheme == "conv+matmul" else 0,
                    "int8_max_logit_diff_vs_torch": max_logit_difference(model, done, _check_waves())}
        shutil.move(done if int8 else fp32, out)
    return json.loads(write_sidecar(out, model.labels, encoder=model.family, **info,
                                    temperature_scaling=temperature_record(model, raw), **provenance).read_text())


def calibration_audio(cfg, data, n: int = 16) -> list[np.ndarray]:
    """``n`` training utterances of the fold, each clean and once with a training noise at a random
    SNR of the study: what the deployed student hears, never a test speaker or test noise segment."""
    rows = data.train.sample(min(n, len(data.train)), random_state=cfg.seed)
    ds = NoisyPairDataset(rows, data.train_noise, "random", cfg.snrs, cfg.seed + 2, cfg.level,
                          AudioCache(cfg.max_seconds), cfg.emotions)
    items = [ds[i] for i in range(len(ds))]
    return [np.asarray(it[k], dtype=np.float32) for it in items for k in ("clean", "noisy")]


def export_from_study(study_dir: str | Path, fold: str, role: str, out: str | Path, int8: bool = False,
                      scheme: str = "conv+matmul", calibration_n: int = 16, fmt: str = "onnx", raw: bool = False
                      ) -> dict:
    """`mlkd export`: the ``role`` model of ``fold`` in a study folder as ONNX (see :func:`export_model`), or
    with ``fmt="hf"`` as a Hugging Face audio-classification folder (``deploy/hf.py``); returns its provenance.
    ``raw``: the export's probabilities are the model's own (its temperature recorded, not applied)."""
    if role not in trained():
        raise ValueError(f"model must be one of {trained()}, got {role!r}")
    if fmt not in ("onnx", "hf"):
        raise ValueError(f"export format must be onnx or hf, got {fmt!r}")
    study = StudyLayout(study_dir)
    study_dir = study.dir
    ckpt = study.fold(fold).model(role).best_ckpt
    if not ckpt.is_file():
        raise FileNotFoundError(f"{ckpt} not found (folds in {study_dir}: {study.folds() or 'none'})")
    cfg = study_config(study_dir)
    run = json.loads(study.run_json.read_text()) if study.run_json.is_file() else {}
    provenance = dict(study=str(study_dir.resolve()), fold=fold, role=role, checkpoint=str(ckpt.resolve()),
                      corpus=cfg.corpus, max_seconds=cfg.max_seconds, study_git_commit=run.get("git_commit"))
    if fmt == "hf":
        from .hf import write_hf_folder
        provenance |= {"exported": time.strftime("%Y-%m-%dT%H:%M:%S"), "export_git_commit": git_commit(),
                       "versions": {p: _version(p) for p in ("torch", "transformers")}, "config": cfg.to_json()}
        write_hf_folder(load_model(ckpt), out, study=study_dir, fold=fold, role=role, cfg=cfg, provenance=provenance,
                        raw=raw)
        return provenance
    calibration = None
    if int8 and scheme == "conv+matmul":
        calibration = calibration_audio(cfg, load_fold(cfg, fold), calibration_n)
    return export_model(load_model(ckpt), out, int8, scheme, calibration, raw, **provenance)
