"""EmoDB (Berlin Database of Emotional Speech) → manifest: seven classes, ten German speakers."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from .common import corpus_root, finish, named_wavs

# the German initial: Wut, Langeweile, Ekel, Angst, Freude, Trauer, neutral
LABELS = {"W": "ang", "L": "bor", "E": "dis", "A": "fea", "F": "hap", "T": "sad", "N": "neu"}
# wav/03a01Fa.wav: speaker, text (a01..a07, b01..b10), emotion, version
NAME = re.compile(r"(?P<speaker>\d\d)(?P<text>[ab]\d\d)(?P<emotion>[A-Z])(?P<version>[a-z])")
GENDER = {"03": "M", "10": "M", "11": "M", "12": "M", "15": "M",  # the corpus's documentation
          "08": "F", "09": "F", "13": "F", "14": "F", "16": "F"}


def speaker_of(stem: str) -> tuple[str, str, str]:
    """(speaker, session, gender) of a file's stem: its first two digits, the gender from the corpus's documentation."""
    m = NAME.fullmatch(stem)
    if not m:
        raise ValueError(f"not an EmoDB file name: {stem!r}")
    return m["speaker"], "", GENDER.get(m["speaker"], "")


def build_manifest(root: str | Path, out: str | Path | None = None, progress: bool = True) -> pd.DataFrame:
    root = corpus_root(root, "EmoDB", "wav")
    rows, odd = [], []
    for wav, m in named_wavs(root / "wav", NAME, LABELS, odd):
        speaker, session, gender = speaker_of(wav.stem)
        rows.append(dict(utt_id=wav.stem, path=str(wav), emotion=LABELS[m["emotion"]],
                         speaker=speaker, session=session, gender=gender, corpus="emodb"))
    return finish(rows, root, "emodb", out, progress, skipped={"wavs not named SSTTTEv (e.g. 03a01Fa)": odd})
