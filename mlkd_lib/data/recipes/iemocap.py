"""IEMOCAP → manifest: the paper's 4-class set (neu, hap+exc, ang, sad; 5531 utterances)."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from .common import corpus_root, finish, not_the_corpus

# "[6.2901 - 8.2357]\tSes01F_impro01_F000\tneu\t[2.5000, 2.5000, 2.5000]"
TURN_LINE = re.compile(r"^\[(?P<start>[\d.]+) - (?P<end>[\d.]+)\]\t(?P<utt>Ses\d\d[FM]_\S+)\t(?P<label>\w+)\t\[")
LABEL_MAP = {"neu": "neu", "hap": "hap", "exc": "hap", "ang": "ang", "sad": "sad"}


def speaker_of(utt_id: str) -> tuple[str, int, str]:
    """(speaker, session, gender) from an utterance id.

    The speaker's gender is the letter that starts the *last* ``_`` part
    (``Ses01F_impro01_M000`` is session 1's male speaker), never the dialog's letter
    and never a fixed character index (dialog names carry suffixes like ``impro05a``).
    """
    m = re.fullmatch(r"Ses(\d\d)[FM]_.+_([FM])\d+", utt_id)
    if not m:
        raise ValueError(f"not an IEMOCAP utterance id: {utt_id!r}")
    session, gender = int(m.group(1)), m.group(2)
    return f"Ses{session:02d}{gender}", session, gender


def parse_labels(eval_file: Path) -> list[tuple[str, str]]:
    """(utt_id, raw label) for each turn line of one EmoEvaluation file."""
    out = []
    with open(eval_file, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            m = TURN_LINE.match(line)
            if m:
                out.append((m.group("utt"), m.group("label")))
    return out


def build_manifest(root: str | Path, out: str | Path | None = None, progress: bool = True) -> pd.DataFrame:
    root = corpus_root(root, "IEMOCAP_full_release")
    sessions = sorted(p for p in root.glob("Session[1-5]") if p.is_dir())
    if not sessions:
        raise not_the_corpus(root, "IEMOCAP_full_release", "Session1 .. Session5 folder")
    rows, missing = [], []
    for sess in sessions:
        eval_dir = sess / "dialog" / "EmoEvaluation"
        if not eval_dir.is_dir():
            raise not_the_corpus(sess, "IEMOCAP_full_release session", "dialog/EmoEvaluation")
        # only the dialog-level files: the corpus also has Attribute/, Categorical/, Self-evaluation/
        # sub-folders and macOS '._*' files there
        for eval_file in tqdm(sorted(eval_dir.glob("Ses*.txt")), desc=sess.name, disable=not progress):
            for utt, label in parse_labels(eval_file):
                if label not in LABEL_MAP:
                    continue
                wav = sess / "sentences" / "wav" / utt.rsplit("_", 1)[0] / f"{utt}.wav"
                if not wav.is_file():
                    missing.append(str(wav))
                    continue
                speaker, session, gender = speaker_of(utt)
                rows.append(dict(utt_id=utt, path=str(wav), emotion=LABEL_MAP[label], speaker=speaker,
                                 session=session, gender=gender, corpus="iemocap"))
    return finish(rows, root, "iemocap", out, progress, skipped={"labelled utterances with no wav": missing})
