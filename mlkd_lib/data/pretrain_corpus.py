"""The demo encoder's pretraining corpus: emotion-free synthetic speech by espeak-ng voices that
no study speaker uses, saying sentences the study never uses, every prosodic setting drawn
independently from a broad range (see pretrain.py). No emotion label exists in it."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .audio import SAMPLE_RATE, write_audio
from .synthetic import SPEAKERS, Prosody, render

# espeak-ng voice variants that no study speaker uses (the study: f1-f5, m1-m4, m7),
# combined with English accents: every pretraining voice is new to the study.
PRETRAIN_VARIANTS = ("m5", "m6", "m8", "adam", "andy", "annie", "belinda", "benjamin", "david", "edward",
                     "linda", "max", "michel", "norbert", "paul", "quincy", "rob", "robert", "steph", "travis",
                     "victor", "zac", "anika", "aunty")
PRETRAIN_ACCENTS = ("en-us", "en-gb", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-us-nyc", "en-gb-scotland")

# Sentences the study corpus never says.
PRETRAIN_SENTENCES = (
    "The garden gate was left open.", "Bring two cups of tea.", "A cold wind blew from the north.",
    "She painted the fence green.", "We met at the station.", "The river rose after the storm.",
    "He counted the coins twice.", "Turn left at the bakery.", "The lamp needs a new bulb.",
    "Our train leaves at nine.", "The cat slept on the chair.", "Paper boats float on the pond.",
    "Please close the window.", "The market opens early.", "They walked along the beach.",
    "A bell rang in the tower.", "The soup is too salty.", "Write your name at the top.",
    "The clock stopped at noon.", "Birds gathered on the wire.", "Keep the receipt.",
    "The road bends near the farm.", "Fresh bread smells good.", "The meeting ran late.",
    "Five ships sailed west.", "Lift the box with care.", "The children built a tower of blocks.",
    "Snow covered the hills.", "I found my keys.", "The music was very loud.",
)

# Every setting drawn uniformly and independently (no emotion prototypes), over a range
# wider than the study's emotions span.
PROSODY_RANGES = dict(pitch=(15, 90), range=(0, 100), rate=(110, 230), amp=(50, 170), breath=(0.0, 0.45),
                      tense=(0.0, 1.1))
PROSODY_TARGETS = ("pitch", "range", "rate", "breath", "tense")  # amplitude is normalised away


def pretrain_voices() -> list[str]:
    study = {s.voice for s in SPEAKERS}
    voices = [f"{a}+{v}" for a in PRETRAIN_ACCENTS for v in PRETRAIN_VARIANTS]
    return [v for v in voices if v not in study]


def random_prosody(rng: np.random.Generator) -> Prosody:
    r = {k: rng.uniform(*PROSODY_RANGES[k]) for k in PROSODY_RANGES}
    return Prosody(pitch=int(r["pitch"]), rate=int(r["rate"]), amp=int(r["amp"]), range=int(r["range"]),
                   breath=float(r["breath"]), tense=float(r["tense"]))


def make_pretrain_corpus(out_dir: str | Path, seed: int = 0, n_utterances: int = 2000,
                         progress: bool = True) -> pd.DataFrame:
    """``n_utterances`` wavs + ``manifest.csv`` (path, voice, text and the prosody settings)."""
    out_dir = Path(out_dir)
    voices = pretrain_voices()
    rows = []
    for i in tqdm(range(n_utterances), desc="pretraining corpus", disable=not progress):
        rng = np.random.default_rng([seed, 7919, i])
        voice = voices[int(rng.integers(len(voices)))]
        text = PRETRAIN_SENTENCES[int(rng.integers(len(PRETRAIN_SENTENCES)))]
        prosody = random_prosody(rng)
        x = render(text, voice, prosody, rng)
        rel = Path("wav") / f"pre_{i:05d}.wav"
        write_audio(out_dir / rel, x)
        rows.append(dict(path=str(rel), voice=voice, text=text, duration_s=round(len(x) / SAMPLE_RATE, 4),
                         **asdict(prosody)))
    df = pd.DataFrame(rows)
    df.to_csv(out_dir / "manifest.csv", index=False)
    return df
