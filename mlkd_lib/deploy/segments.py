"""`mlkd predict --segments`: emotion over time in a long recording.

A model gives one label per input and was trained on utterances of at most ``max_seconds``; a meeting
or an interview is neither. So the recording is read in blocks (``soundfile.blocks``: memory stays
bounded whatever its length), WebRTC VAD finds its speech turns (``data/vad.py``: short pauses bridged,
short bursts dropped, a little padding), a turn longer than ``max_seconds`` is cut into equal windows,
and each segment is read back from the file on its own and classified. Torch-free from an ONNX model.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import webrtcvad
from tqdm.auto import tqdm

from ..data.audio import SAMPLE_RATE, AudioError, resample, resample_stream, to_mono
from ..data.vad import FRAME, TurnSettings, speech_turns, vad_decisions
from .predict import MIN_SAMPLES, Classifier, answer

BLOCK_S = 60.0  # seconds of audio read at a time for the VAD pass


@dataclass
class Segment:
    path: str
    start_s: float
    end_s: float
    emotion: str  # "" where the model is less confident than asked (``min_confidence``)
    probabilities: dict = field(default_factory=dict)
    confidence: float | None = None  # the top probability


def _open(path: Path) -> sf.SoundFile:
    if not path.is_file():
        raise FileNotFoundError(f"audio file not found: {path}")
    try:
        return sf.SoundFile(str(path))
    except (RuntimeError, sf.LibsndfileError) as err:
        raise AudioError(f"{path}: not a readable audio file ({err})") from err


def speech_activity(path: Path, aggressiveness: int = 2, progress: bool = True) -> tuple[np.ndarray, float]:
    """Per 30 ms frame of the recording at 16 kHz: does the VAD hear speech? And its duration (s).
    Read ``BLOCK_S`` at a time; frames continue across blocks."""
    with _open(path) as f:
        rate, frames = f.samplerate, f.frames
    decisions, carry, vad = [], np.zeros(0, dtype=np.float32), webrtcvad.Vad(aggressiveness)  # one detector: its
    # state (the hangover after speech) runs on across the blocks as across the frames of one
    stream = resample_stream(rate) if rate != SAMPLE_RATE else None
    n_blocks = int(np.ceil(frames / (BLOCK_S * rate)))
    blocks = sf.blocks(str(path), blocksize=int(BLOCK_S * rate), dtype="float32", always_2d=True)
    for i, block in enumerate(tqdm(blocks, total=n_blocks, desc=f"VAD {path.name}", disable=not progress,
                                   leave=False)):
        x = to_mono(block, str(path))
        x = np.concatenate([carry, stream.resample_chunk(x, last=i == n_blocks - 1) if stream else x])
        whole = len(x) // FRAME * FRAME
        decisions.append(vad_decisions(x[:whole], aggressiveness, vad))
        carry = x[whole:]
    return (np.concatenate(decisions) if decisions else np.zeros(0, bool)), frames / rate


def read_span(path: Path, start_s: float, end_s: float) -> np.ndarray:
    """The recording from ``start_s`` to ``end_s``, mono at 16 kHz, read from the file alone."""
    with _open(path) as f:
        rate = f.samplerate
        f.seek(int(round(start_s * rate)))
        x = to_mono(f.read(int(round((end_s - start_s) * rate)), dtype="float32", always_2d=True), str(path))
    return resample(x, rate)


def segment_file(classifier: Classifier, path: str | Path, settings: TurnSettings, progress: bool = True,
                 min_confidence: float | None = None) -> tuple[list[Segment], np.ndarray]:
    """Every speech segment of ``path`` with the model's emotion (none below ``min_confidence``) and probabilities,
    and the VAD's per-frame decisions (for the timeline plot)."""
    path = Path(path)
    decisions, duration = speech_activity(path, settings.aggressiveness, progress)
    out = []
    for a, b in tqdm(speech_turns(decisions, duration, settings), desc=f"classify {path.name}",
                     disable=not progress, leave=False):
        x = read_span(path, a, b)
        if len(x) < MIN_SAMPLES:
            continue
        p = classifier.probabilities(x)
        emotion, confidence = answer(p, classifier.labels, min_confidence)
        out.append(Segment(str(path), round(a, 3), round(b, 3), emotion,
                           {lab: float(v) for lab, v in zip(classifier.labels, p)}, confidence))
    return out, decisions


def format_segments(segments: list[Segment], labels, fmt: str = "text") -> str:
    """One row per segment: ``path,start_s,end_s,emotion,p_<label>...,confidence`` (csv), the same fields (json), or
    a table."""
    rows = [{**{k: v for k, v in asdict(s).items() if k not in ("probabilities", "confidence")},
             **{f"p_{lab}": round(s.probabilities[lab], 4) for lab in labels}, "confidence": round(s.confidence, 4)}
            for s in segments]
    if fmt == "json":
        return json.dumps(rows, indent=2)
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.DictWriter(buf, ["path", "start_s", "end_s", "emotion", *[f"p_{lab}" for lab in labels], "confidence"],
                           lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        return buf.getvalue().rstrip("\n")
    head = f"{'start':>8} {'end':>8}  {'emotion':<9}" + "".join(f"{lab:>7}" for lab in labels)
    return "\n".join([head, *(f"{r['start_s']:8.2f} {r['end_s']:8.2f}  {r['emotion'] or 'uncertain':<9}"
                              + "".join(f"{r[f'p_{lab}']:7.3f}" for lab in labels) for r in rows)])


def plot_timeline(segments: list[Segment], decisions: np.ndarray, labels, out: str | Path, title: str = "") -> Path:
    """Speech activity on top, each segment's class probabilities stacked below, against time."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    t = np.arange(len(decisions)) * FRAME / SAMPLE_RATE
    fig, (top, low) = plt.subplots(2, 1, figsize=(12, 3.6), sharex=True, gridspec_kw={"height_ratios": [1, 3]})
    top.fill_between(t, decisions.astype(float), step="post", color="grey")
    top.set(yticks=[], ylabel="speech")
    colors = plt.get_cmap("tab10").colors
    for s in segments:
        bottom = 0.0
        for i, lab in enumerate(labels):
            p = s.probabilities[lab]
            low.bar(s.start_s, p, width=s.end_s - s.start_s, bottom=bottom, align="edge", color=colors[i],
                    edgecolor="white", linewidth=0.5, label=lab if s is segments[0] else None)
            bottom += p
    low.set(xlabel="time (s)", ylabel="probability", ylim=(0, 1))
    if segments:
        low.legend(loc="upper right", ncol=len(labels), fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
