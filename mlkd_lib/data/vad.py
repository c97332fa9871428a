"""WebRTC voice activity (``webrtcvad-wheels``: compiled C, no model file, deterministic): per-frame
speech decisions, and the speech turns of a long recording. Torch-free, so that ``mlkd predict
--segments`` on an ONNX model needs no torch; the baseline's VAD is the same one."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import webrtcvad

from .audio import SAMPLE_RATE

VAD_FRAME_MS = 30
FRAME = SAMPLE_RATE * VAD_FRAME_MS // 1000  # samples per VAD frame at 16 kHz


def vad_decisions(x: np.ndarray, aggressiveness: int = 2, vad: webrtcvad.Vad | None = None) -> np.ndarray:
    """Boolean per 30 ms frame (the last partial frame dropped): True where WebRTC VAD hears speech. ``vad``: the
    detector of the earlier part of the same recording (it keeps state, its hangover, from frame to frame)."""
    vad = vad or webrtcvad.Vad(aggressiveness)
    peak = max(float(np.max(np.abs(x))), 1e-9) if len(x) else 1.0
    pcm = (np.clip(x / max(peak, 1.0), -1, 1) * 32767).astype(np.int16)  # only the VAD sees this scaled copy
    return np.array([vad.is_speech(pcm[i:i + FRAME].tobytes(), SAMPLE_RATE)
                     for i in range(0, len(pcm) - FRAME + 1, FRAME)], dtype=bool)


MIN_SPEECH_S = 0.3  # less speech than this in a recording: no emotion is given for it (`mlkd predict`, the explorer)


def speech_seconds(x: np.ndarray, aggressiveness: int = 2) -> float:
    """Seconds of ``x`` (16 kHz) that WebRTC VAD hears as speech: what a recording must hold, ``MIN_SPEECH_S`` at
    least, before a model's emotion for it means anything. Digital silence, a click or faint noise hold none; loud
    broadband noise can pass for speech (the VAD weighs energy and spectral shape, not words)."""
    return float(vad_decisions(x, aggressiveness).sum()) * VAD_FRAME_MS / 1000


@dataclass(frozen=True)
class TurnSettings:
    """How speech frames become turns, and turns segments (seconds)."""
    min_turn_s: float = 0.3  # shorter bursts of speech are dropped (clicks, breaths)
    min_pause_s: float = 0.4  # shorter pauses do not end a turn
    padding_s: float = 0.05  # kept on each side of a turn (each 50 ms of silence pooled in shifts the probabilities)
    max_seconds: float = 8.0  # a longer turn is cut into equal windows no longer than this
    aggressiveness: int = 2


ROUNDING = 1e-9  # s: frame times are multiples of 0.03 s in floating point, which a comparison must not tip


def speech_turns(decisions: np.ndarray, duration_s: float, s: TurnSettings) -> list[tuple[float, float]]:
    """(start, end) seconds of the turns in a recording's per-frame decisions: pauses shorter than
    ``min_pause_s`` bridged, turns shorter than ``min_turn_s`` dropped, ``padding_s`` added on each side
    (never past the recording or into the next turn), and a turn longer than ``max_seconds`` cut into
    equal windows of at most that length."""
    step = VAD_FRAME_MS / 1000
    turns, start = [], None
    for i, speech in enumerate(np.append(decisions, False)):
        if speech and start is None:
            start = i
        elif not speech and start is not None:
            turns.append([start * step, i * step])
            start = None
    merged = []
    for t in turns:
        if merged and t[0] - merged[-1][1] < s.min_pause_s - ROUNDING:
            merged[-1][1] = t[1]
        else:
            merged.append(t)
    kept = [t for t in merged if t[1] - t[0] >= s.min_turn_s - ROUNDING]
    padded = []
    for i, (a, b) in enumerate(kept):
        lo = max(0.0, a - s.padding_s, padded[-1][1] if padded else 0.0)
        hi = min(duration_s, b + s.padding_s, kept[i + 1][0] if i + 1 < len(kept) else duration_s)
        padded.append((lo, hi))
    out = []
    for a, b in padded:
        pieces = int(np.ceil((b - a) / s.max_seconds - 1e-9))
        out += [(a + k * (b - a) / pieces, a + (k + 1) * (b - a) / pieces) for k in range(pieces)]
    return out
