"""MSP-Podcast → manifest: eight consensus classes and the corpus's own split (O and X left out)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..audio import audio_files
from ..manifest import UNKNOWN_SPEAKER
from .common import WAV, corpus_root, finish

LABELS = {"A": "ang", "S": "sad", "H": "hap", "U": "sur", "F": "fea", "D": "dis", "C": "con", "N": "neu"}
NO_CLASS = {"O": "other", "X": "no agreement"}  # consensus found no single class of the eight
LABEL_FILE = "Labels/labels_consensus.csv"
COLUMNS = ["FileName", "EmoClass", "EmoAct", "EmoVal", "EmoDom", "SpkrID", "Gender", "Split_Set"]
USED = ["FileName", "EmoClass", "SpkrID", "Gender", "Split_Set"]
SEX = {"male": "M", "female": "F"}


def read_labels(csv: Path) -> pd.DataFrame:
    """The consensus labels, all as stripped text."""
    table = pd.read_csv(csv, dtype=str, keep_default_na=False)
    table.columns = table.columns.str.strip()
    missing = [c for c in USED if c not in table.columns]
    if missing:
        raise ValueError(f"{csv}: no column {', '.join(missing)} (expected {', '.join(COLUMNS)})")
    return table[USED].apply(lambda c: c.str.strip())


def build_manifest(root: str | Path, out: str | Path | None = None, progress: bool = True) -> pd.DataFrame:
    """Speaker "Unknown" becomes one speaker per utterance ("unknown-" + utt_id): unknown utterances are
    not one person, and folds must not hold them together as one."""
    root = corpus_root(root, "MSP-Podcast", LABEL_FILE, "Audios")
    labels = read_labels(root / LABEL_FILE)
    audio = {p.name: p for p in audio_files(root / "Audios", WAV)}
    rows, no_audio, odd = [], [], []
    not_used = {f"class {k} ({v})": 0 for k, v in NO_CLASS.items()}
    for name, emo, spk, sex, split in labels.itertuples(index=False):
        if emo in NO_CLASS:
            not_used[f"class {emo} ({NO_CLASS[emo]})"] += 1
            continue
        if emo not in LABELS:
            odd.append(f"{name} ({emo!r})")
            continue
        wav = audio.get(name if name.lower().endswith(".wav") else f"{name}.wav")
        if wav is None:
            no_audio.append(name)
            continue
        utt = wav.stem
        rows.append(dict(utt_id=utt, path=str(wav), emotion=LABELS[emo],
                         speaker=UNKNOWN_SPEAKER + utt if spk.lower() in ("unknown", "") else spk, session="",
                         gender=SEX.get(sex.lower(), ""), corpus="msppodcast", split=split.lower()))
    skipped = {"labelled files with no audio in Audios/": no_audio, "labels with an unknown EmoClass": odd}
    return finish(rows, root, "msppodcast", out, progress, skipped=skipped, not_used=not_used)
