"""IEMOCAP → manifest: the paper's 4-class set (neu, hap+exc, ang, sad; 5531 utterances)."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from ..audio import duration_s
from ..manifest import MANIFEST_COLUMNS, write_manifest

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
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"IEMOCAP root not found: {root}")
    sessions = sorted(p for p in root.glob("Session[1-5]") if p.is_dir())
    if not sessions:
        raise ValueError(f"{root} is not an IEMOCAP_full_release folder: no Session1..Session5 inside")
    rows, missing = [], []
    for sess in sessions:
        eval_dir = sess / "dialog" / "EmoEvaluation"
        if not eval_dir.is_dir():
            raise ValueError(f"{sess}: no dialog/EmoEvaluation folder (is this IEMOCAP_full_release?)")
        # only the dialog-level files: the corpus also has Attribute/, Categorical/, Self-evaluation/
        # sub-folders and macOS '._*' files there
        for eval_file in tqdm(sorted(eval_dir.glob("Ses*.txt")), desc=sess.name, disable=not progress):
            for utt, label in parse_labels(eval_file):
                if label not in LABEL_MAP:
                    continue
                dialog = utt.rsplit("_", 1)[0]
                wav = sess / "sentences" / "wav" / dialog / f"{utt}.wav"
                if not wav.is_file():
                    missing.append(str(wav))
                    continue
                speaker, session, gender = speaker_of(utt)
                rows.append(dict(utt_id=utt, path=str(wav), emotion=LABEL_MAP[label], speaker=speaker,
                                 session=session, gender=gender, duration_s=round(duration_s(wav), 4),
                                 corpus="iemocap"))
    if missing:
        warnings.warn(f"{len(missing)} labelled utterances have no wav and were left out, e.g. "
                      + ", ".join(missing[:5]), stacklevel=2)
    if not rows:
        raise ValueError(f"{root}: no labelled neu/hap/exc/ang/sad utterance with audio found")
    df = pd.DataFrame(rows, columns=MANIFEST_COLUMNS).sort_values("utt_id", ignore_index=True)
    if out is not None:
        write_manifest(df, out)
    return df
