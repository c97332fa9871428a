"""`mlkd predict`: the emotion of your own audio files, from an exported ONNX model or a study checkpoint.

The ONNX path needs only numpy, scipy, soundfile and onnxruntime — never torch — so that a
deployed student runs where PyTorch is not installed (a test checks ``sys.modules``). Audio is
converted as the study's data step converts a corpus (any rate, stereo averaged to mono; ``audio.resample``,
torch-free). A file that cannot be read is reported with its name and the others are still predicted.

No speech, no emotion: a recording in which the study's VAD (WebRTC, ``data/vad.py``) hears less than
``min_speech_s`` of speech (0.3 s by default) gets no class, only its ``speech_s``. A model trained to pick one of
its classes picks one for anything — silence, a click, a fan — and says it with confidence.

Probabilities are temperature-scaled (softmax(z / T), T fitted on the fold's clean validation speech and carried by
the checkpoint and the ONNX sidecar: ``analysis/calibration.py``) unless ``raw``; with ``min_confidence`` a file
whose top probability is below it is "uncertain": no class, its probabilities and ``confidence`` still given.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data.audio import SAMPLE_RATE, AudioError, audio_files, read_audio
from ..data.vad import MIN_SPEECH_S, speech_seconds

MIN_SAMPLES = 400  # the CNN encoder's receptive field: shorter input yields no frame


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def ort_session(path: str | Path, threads: int = 0):
    """An onnxruntime CPU session with all graph optimisations; ``threads`` intra-op threads (0: ORT's choice)."""
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


class Classifier:
    """What `mlkd predict` asks of a model: its classes, logits of a waveform, and its probabilities, scaled by
    ``temperature`` (1: the raw ones)."""
    labels: tuple[str, ...]
    temperature: float = 1.0

    def logits(self, wave: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def probabilities(self, wave: np.ndarray) -> np.ndarray:
        return softmax(self.logits(wave).astype(np.float64) / self.temperature)


class OnnxClassifier(Classifier):
    """An exported classifier (``mlkd export``) in onnxruntime, with its sidecar JSON: the sidecar names
    the model's classes in logit order, so a model without one is refused rather than labelled by guess, and
    carries the temperature (``temperature_scaling``; absent from older exports: raw)."""

    def __init__(self, path: str | Path, threads: int = 0, raw: bool = False):
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"ONNX model not found: {path}")
        meta_path = sidecar_path(path)
        self.meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
        if not self.meta.get("labels"):
            raise ValueError(f"{meta_path}: {'no labels in it' if self.meta else 'not found'}; this sidecar, written "
                             f"by `mlkd export` beside {path.name}, names the model's classes in logit order: keep "
                             f"it with the model (or export the model again)")
        self.labels = tuple(self.meta["labels"])
        scaling = self.meta.get("temperature_scaling") or {}
        if not raw and scaling.get("applied", True):
            self.temperature = float(scaling.get("temperature", 1.0))
        self.sample_rate = int(self.meta.get("sample_rate", SAMPLE_RATE))
        self.max_seconds = self.meta.get("max_seconds")  # the longest input the model trained on
        try:
            self.session = ort_session(path, threads)
        except Exception as err:  # onnxruntime raises its own exception types
            raise ValueError(f"{path}: not a loadable ONNX model ({err})") from err
        self.input_name = self.session.get_inputs()[0].name

    def logits(self, wave: np.ndarray) -> np.ndarray:
        """Logits of one utterance (mono float32 at ``sample_rate``; normalised inside the graph)."""
        return self.session.run(None, {self.input_name: np.asarray(wave, dtype=np.float32)[None]})[0][0]


class TorchClassifier(Classifier):
    """A study's checkpoint (``.pt``) behind the same interface (imports torch, on purpose only here)."""

    def __init__(self, path: str | Path, threads: int = 0, raw: bool = False):
        import torch

        from ..method.checkpoint import load_model
        if threads:
            torch.set_num_threads(threads)
        self._torch, self.model = torch, load_model(path).eval()
        self.labels, self.sample_rate, self.meta = self.model.labels, SAMPLE_RATE, {}
        self.temperature = 1.0 if raw else self.model.calibration_temperature
        self.max_seconds = study_max_seconds(Path(path))

    def logits(self, wave: np.ndarray) -> np.ndarray:
        with self._torch.no_grad():
            return self.model(self._torch.from_numpy(np.asarray(wave, dtype=np.float32))[None]).logits[0].numpy()


def study_max_seconds(checkpoint: Path) -> float | None:
    """``max_seconds`` of the study a ``folds/<fold>/<model>/best.pt`` belongs to, if it is in one."""
    config = checkpoint.resolve().parent.parent.parent.parent / "config.json"
    try:
        return float(json.loads(config.read_text())["max_seconds"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def sidecar_path(onnx_path: str | Path) -> Path:
    return Path(onnx_path).with_suffix(".json")


def load_classifier(path: str | Path, threads: int = 0, raw: bool = False) -> Classifier:
    """An :class:`OnnxClassifier` for ``.onnx``, a :class:`TorchClassifier` for a ``.pt`` checkpoint; ``raw``: its
    probabilities without the fitted temperature."""
    suffix = Path(path).suffix.lower()
    if suffix == ".onnx":
        return OnnxClassifier(path, threads, raw)
    if suffix in (".pt", ".pth"):
        return TorchClassifier(path, threads, raw)
    raise ValueError(f"{path}: expected an exported .onnx model or a study checkpoint (.pt)")


def expand_paths(paths) -> list[Path]:
    """Files as given; folders searched recursively for audio files (``audio.audio_files``). A missing path is
    kept, so that it is reported as an error beside the other predictions."""
    out = []
    for p in map(Path, paths):
        out += audio_files(p) if p.is_dir() else [p]
    return out


@dataclass
class Prediction:
    path: str
    emotion: str | None = None  # "" where the recording holds no speech, or the model is uncertain
    probabilities: dict = field(default_factory=dict)
    seconds: float | None = None
    speech_s: float | None = None  # what the VAD heard as speech
    error: str | None = None
    confidence: float | None = None  # the top probability

    @property
    def no_speech(self) -> bool:
        return self.emotion == "" and not self.probabilities

    @property
    def uncertain(self) -> bool:
        """Below the confidence asked for: probabilities, but no emotion."""
        return self.emotion == "" and bool(self.probabilities)


def answer(probabilities: np.ndarray, labels, min_confidence: float | None) -> tuple[str, float]:
    """(emotion, confidence): the top class, or "" where its probability is below ``min_confidence``."""
    best = int(np.argmax(probabilities))
    confidence = float(probabilities[best])
    return ("" if min_confidence is not None and confidence < min_confidence else labels[best]), confidence


def predict_files(classifier: Classifier, paths, min_speech_s: float = MIN_SPEECH_S, aggressiveness: int = 2,
                  min_confidence: float | None = None) -> list[Prediction]:
    """One :class:`Prediction` per audio file under ``paths``: unreadable files carry ``error``, files with less
    than ``min_speech_s`` of speech (WebRTC VAD at ``aggressiveness``) an empty emotion, and so do files whose top
    probability is below ``min_confidence`` (uncertain), with their probabilities."""
    out = []
    for path in expand_paths(paths):
        try:
            wave = read_audio(path, classifier.sample_rate, resample_to=True)
        except (AudioError, FileNotFoundError, OSError) as err:
            out.append(Prediction(str(path), error=str(err)))
            continue
        seconds, speech = len(wave) / classifier.sample_rate, speech_seconds(wave, aggressiveness)
        if speech < min_speech_s or len(wave) < MIN_SAMPLES:
            out.append(Prediction(str(path), "", {}, seconds, speech))
            continue
        p = classifier.probabilities(wave)
        emotion, confidence = answer(p, classifier.labels, min_confidence)
        out.append(Prediction(str(path), emotion, {lab: float(v) for lab, v in zip(classifier.labels, p)}, seconds,
                              speech, confidence=confidence))
    return out


def format_predictions(preds: list[Prediction], labels, fmt: str = "text") -> str:
    """``text``: one line per file; ``json``: a list of objects; ``csv``: a header and one row per file."""
    if fmt == "json":
        return json.dumps([{k: v for k, v in vars(p).items() if v is not None and v != {}}
                           | ({"uncertain": True} if p.uncertain else {}) for p in preds], indent=2)
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["path", "emotion", *[f"p_{lab}" for lab in labels], "confidence", "seconds", "speech_s", "error"])
        for p in preds:
            w.writerow([p.path, p.emotion or "", *[f"{p.probabilities[lab]:.4f}" if p.probabilities else ""
                                                    for lab in labels], "" if p.confidence is None else
                        f"{p.confidence:.4f}",
                        *[f"{v:.2f}" if v is not None else "" for v in (p.seconds, p.speech_s)], p.error or ""])
        return buf.getvalue().rstrip("\n")
    if fmt != "text":
        raise ValueError(f"output format must be text, json or csv, got {fmt!r}")
    width = max([len(p.path) for p in preds] + [4])

    def line(p: Prediction) -> str:
        if p.error:
            return f"{p.path:<{width}}  ERROR {p.error}"
        if p.no_speech:
            return f"{p.path:<{width}}  no speech ({p.speech_s:.2f} s of {p.seconds:.2f} s heard as speech: no emotion)"
        probs = "  ".join(f"{lab} {p.probabilities[lab]:.3f}" for lab in labels)
        if p.uncertain:
            return f"{p.path:<{width}}  uncertain (confidence {p.confidence:.3f}: no emotion)  {probs}"
        return f"{p.path:<{width}}  {p.emotion}  {probs}"

    return "\n".join(line(p) for p in preds)
