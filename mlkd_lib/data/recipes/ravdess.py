"""RAVDESS → manifest: eight classes, 24 actors (odd male, even female); speech, and song on request."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from .common import corpus_root, finish, named_wavs, not_the_corpus

LABELS = {"01": "neu", "02": "cal", "03": "hap", "04": "sad", "05": "ang", "06": "fea", "07": "dis", "08": "sur"}
# Actor_12/03-01-05-01-02-01-12.wav: modality (01 audio-video, 03 audio only; 02 video only has no sound),
# vocal channel (01 speech, 02 song), emotion, intensity, statement, repetition, actor
NAME = re.compile(r"(?P<modality>0[13])-(?P<channel>0[12])-(?P<emotion>0[1-8])-(?P<intensity>0[12])"
                  r"-(?P<statement>0[12])-(?P<repetition>0[12])-(?P<actor>\d\d)")
ACTOR_DIRS = ("Actor_[0-9][0-9]", "*/Actor_[0-9][0-9]")  # speech and song zips unpacked side by side


def speaker_of(stem: str) -> tuple[str, str, str]:
    """(actor, session, gender) of a file's stem: the last field is the actor, odd actors male."""
    m = NAME.fullmatch(stem)
    if not m:
        raise ValueError(f"not a RAVDESS file name: {stem!r}")
    return m["actor"], "", "M" if int(m["actor"]) % 2 else "F"


def build_manifest(root: str | Path, out: str | Path | None = None, progress: bool = True,
                   include_song: bool = False) -> pd.DataFrame:
    """``include_song``: add the sung utterances (vocal channel 02) to the spoken ones.

    The files are 48 kHz, some stereo: listed as they are; the study's reader resamples and averages."""
    root = corpus_root(root, "RAVDESS")
    actors = sorted({d for pattern in ACTOR_DIRS for d in root.glob(pattern) if d.is_dir()
                     and "__MACOSX" not in d.parts})
    if not actors:
        raise not_the_corpus(root, "RAVDESS", "Actor_01 .. Actor_24 folder")
    rows, odd, song = [], [], 0
    for folder in actors:
        for wav, m in named_wavs(folder, NAME, LABELS, odd, relative_to=root):
            if m["channel"] == "02" and not include_song:
                song += 1
                continue
            actor, session, gender = speaker_of(wav.stem)
            rows.append(dict(utt_id=wav.stem, path=str(wav), emotion=LABELS[m["emotion"]], speaker=actor,
                             session=session, gender=gender, corpus="ravdess"))
    return finish(rows, root, "ravdess", out, progress, skipped={"wavs not named MM-VV-EE-II-SS-RR-AA": odd},
                  not_used={"song files (include_song=True adds them)": song})
