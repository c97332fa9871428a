"""The embedded synthetic emotional corpus: espeak-ng speech, emotions coded in prosody.

Ten speakers laid out like IEMOCAP (sessions 1–5 × F/M, distinct voices and base
pitch), the same sentences in four emotions. Each emotion shifts pitch level,
pitch range, speaking rate, loudness and voice quality; every utterance then
draws its own random deviations, large enough that the classes overlap (a
learnable, not trivial, task). Deterministic: the same seed gives the same bytes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
from scipy.signal import lfilter
from tqdm.auto import tqdm

from .audio import SAMPLE_RATE, resample_sinc, write_audio
from .manifest import MANIFEST_COLUMNS, write_manifest

SENTENCES = (  # short, so that the demo trains in its budget (about 1.4 s with pauses)
    "Kids are talking.",
    "The boat is here.",
    "It is eleven.",
    "Open the door.",
    "Dogs are sitting.",
    "See you tomorrow.",
    "The surface is slick.",
    "Where is the car?",
)


@dataclass(frozen=True)
class Speaker:
    session: int
    gender: str
    voice: str  # espeak-ng voice+variant
    pitch: int  # espeak-ng base pitch 0..99
    rate: int  # words per minute

    @property
    def speaker_id(self) -> str:
        return f"Ses{self.session:02d}{self.gender}"


SPEAKERS = (
    Speaker(1, "F", "en-us+f1", 62, 165), Speaker(1, "M", "en-us+m1", 38, 160),
    Speaker(2, "F", "en-gb+f2", 70, 175), Speaker(2, "M", "en-gb+m3", 32, 150),
    Speaker(3, "F", "en-us+f3", 58, 155), Speaker(3, "M", "en-gb-scotland+m2", 42, 170),
    Speaker(4, "F", "en-029+f4", 66, 160), Speaker(4, "M", "en-us+m4", 35, 165),
    Speaker(5, "F", "en-gb-x-rp+f5", 74, 170), Speaker(5, "M", "en-us+m7", 45, 155),
)

# Per emotion: pitch shift (espeak pitch units), pitch range (SSML %), rate factor,
# amplitude (espeak -a), breathiness and tension (voice quality, see _voice_quality).
EMOTION_PROSODY = {
    "neu": dict(pitch=0, range=50, rate=1.00, amp=100, breath=0.00, tense=0.0),
    "hap": dict(pitch=14, range=95, rate=1.10, amp=120, breath=0.00, tense=0.2),
    "ang": dict(pitch=8, range=80, rate=1.18, amp=150, breath=0.00, tense=0.8),
    "sad": dict(pitch=-10, range=20, rate=0.80, amp=70, breath=0.35, tense=0.0),
}
# Per-utterance random deviation (standard deviations) of the same quantities.
JITTER = dict(pitch=6.0, range=18.0, rate=0.08, amp=18.0, breath=0.06, tense=0.25)


@dataclass(frozen=True)
class Prosody:
    """The synthesis settings of one utterance (espeak-ng units) and its voice quality."""
    pitch: int  # base pitch 0..99
    rate: int  # words per minute
    amp: int  # amplitude (-a)
    range: int  # SSML pitch range, %
    breath: float  # aspiration noise, 0 = none
    tense: float  # pre-emphasis + saturation, 0 = none


def _espeak_binary() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError("espeak-ng is not installed: run `make venv` as root (it apt-installs it), "
                           "`apt-get install espeak-ng`, or use environment.yml (conda-forge)")
    return exe


def _speak(text: str, voice: str, pitch: int, rate: int, amp: int, pitch_range: int) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "u.wav"
        ssml = f'<speak><prosody range="{pitch_range}%">{text}</prosody></speak>'
        cmd = [_espeak_binary(), "-m", "-v", voice, "-p", str(pitch), "-s", str(rate),
               "-a", str(amp), "-w", str(out), ssml]
        subprocess.run(cmd, check=True, capture_output=True)
        x, sr = sf.read(str(out), dtype="float32")
    return resample_sinc(x, sr, SAMPLE_RATE)


def _voice_quality(x: np.ndarray, breath: float, tense: float, rng: np.random.Generator) -> np.ndarray:
    """Breathy voice: aspiration noise following the speech envelope; tense voice:
    pre-emphasis (flatter spectral tilt) and soft saturation."""
    if tense > 0:
        emph = lfilter([1.0, -0.9 * min(tense, 1.0)], [1.0], x)
        x = np.tanh((1 + 3 * tense) * emph) / np.tanh(1 + 3 * tense)
    if breath > 0:
        env = lfilter([0.01], [1, -0.99], np.abs(x))
        hiss = lfilter([1.0, -0.95], [1.0], rng.standard_normal(len(x)))
        x = x + breath * 4.0 * env * hiss / (np.std(hiss) + 1e-9)
    return x


def render(text: str, voice: str, prosody: Prosody, rng: np.random.Generator) -> np.ndarray:
    """One utterance: espeak-ng speech with ``prosody``, its voice quality, pauses and room tone."""
    x = _speak(text, voice, prosody.pitch, prosody.rate, prosody.amp, prosody.range)
    x = _voice_quality(x, prosody.breath, prosody.tense, rng)
    # leading/trailing pauses like a real turn, so that VAD and P.56 have work to do
    lead, tail = (rng.uniform(0.05, 0.25, size=2) * SAMPLE_RATE).astype(int)
    x = np.concatenate([np.zeros(lead), x, np.zeros(tail)])
    # a faint room tone 40–55 dB under the speech peak: real recordings are never
    # digitally silent, and a model should not learn exact zeros as a cue
    floor = lfilter([1.0], [1.0, -0.9], rng.standard_normal(len(x)))
    x = x + floor / np.std(floor) * np.max(np.abs(x)) * 10 ** (-rng.uniform(40, 55) / 20)
    peak = np.max(np.abs(x))
    return (0.9 * x / peak * min(1.0, peak) if peak > 0.9 else x).astype(np.float32)


def emotion_prosody(speaker: Speaker, emotion: str, rng: np.random.Generator) -> Prosody:
    """The speaker's voice in ``emotion``, with this utterance's random deviations."""
    p = EMOTION_PROSODY[emotion]
    d = {k: rng.normal(0.0, s) for k, s in JITTER.items()}
    return Prosody(pitch=int(np.clip(speaker.pitch + p["pitch"] + d["pitch"], 0, 99)),
                   rate=int(np.clip(speaker.rate * (p["rate"] + d["rate"]), 80, 400)),
                   amp=int(np.clip(p["amp"] + d["amp"], 20, 200)),
                   range=int(np.clip(p["range"] + d["range"], 0, 100)),
                   breath=max(p["breath"] + d["breath"], 0.0), tense=max(p["tense"] + d["tense"], 0.0))


def synth_utterance(text: str, speaker: Speaker, emotion: str, rng: np.random.Generator) -> np.ndarray:
    return render(text, speaker.voice, emotion_prosody(speaker, emotion, rng), rng)


def make_synthetic_corpus(out_dir: str | Path, seed: int = 0, per_class: int = 6,
                          speakers: tuple[Speaker, ...] = SPEAKERS, progress: bool = True) -> pd.DataFrame:
    """Write ``per_class`` utterances per (speaker, emotion) and ``out_dir/manifest.csv``.

    Sentences cycle through ``SENTENCES`` so every emotion says the same texts.
    """
    if per_class < 1:
        raise ValueError(f"per_class must be at least 1, got {per_class}")
    out_dir = Path(out_dir)
    rows = []
    jobs = [(spk, emo, i) for spk in speakers for emo in EMOTION_PROSODY for i in range(per_class)]

    def utterance(n: int) -> np.ndarray:  # seeded by its place in the corpus: the same whichever thread makes it
        spk, emo, i = jobs[n]
        text = SENTENCES[(i + spk.session) % len(SENTENCES)]
        return synth_utterance(text, spk, emo, np.random.default_rng([seed, n]))

    # a thread per core: most of an utterance's time is espeak-ng's process, which holds no lock of ours
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        waves = tqdm(pool.map(utterance, range(len(jobs))), total=len(jobs), desc="synthetic corpus",
                     disable=not progress)
        for (spk, emo, i), x in zip(jobs, waves):
            utt_id = f"{spk.speaker_id}_synth_{emo}_{i:03d}"
            rel = Path("wav") / spk.speaker_id / f"{utt_id}.wav"
            write_audio(out_dir / rel, x)
            rows.append(dict(utt_id=utt_id, path=str(rel), emotion=emo, speaker=spk.speaker_id,
                             session=spk.session, gender=spk.gender,
                             duration_s=round(len(x) / SAMPLE_RATE, 4), corpus="synthetic"))
    df = pd.DataFrame(rows, columns=MANIFEST_COLUMNS)
    write_manifest(df, out_dir / "manifest.csv")
    return df

