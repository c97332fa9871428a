"""An EmoBox corpus with its official folds → manifest with a ``fold`` column (``protocol=folds`` runs on them).

EmoBox (a 32-corpus SER benchmark) keeps, under its root, ``data/<corpus>/<corpus>.jsonl`` (one utterance a line:
``key``, ``wav`` relative to the root, e.g. ``downloads/iemocap/Session1/...``, ``sample_rate``, ``length``,
``emo``, ``channel``; ``start_time``/``end_time`` where an utterance is part of a file), its folds
``data/<corpus>/fold_N/<corpus>_{train,test}_fold_N.jsonl`` (some corpora also a ``_valid_`` file) and a
``label_map.json`` that merges the corpus's labels into EmoBox's class names (IEMOCAP's exc into Happy). An
utterance's ``fold`` is the fold whose test file holds it (``fold_3`` → ``fold3``); in fold k every other utterance
trains, and validation is drawn from those, never from fold k's test set. An utterance in no test file (a corpus's
official validation set) trains in every fold.

The lines name no speaker. For the corpora that have a recipe here (iemocap, cremad, ravdess, emodb), the speaker
is read from the file's name by that recipe's rule (``speaker_of``); for the others each utterance is a speaker of
its own, so validation is drawn by utterance (a share of each emotion)."""

from __future__ import annotations

import json
import re
import warnings
from importlib import import_module
from pathlib import Path

import pandas as pd

from ..manifest import UNKNOWN_SPEAKER
from .common import audio_folder, corpus_root, cut_segment, finish, label_codes, not_the_corpus, shortlist

FOLD_FILE = re.compile(r"(?P<corpus>.+)_(?P<part>train|valid|test)_fold_(?P<n>\d+)")
NAMED_BY_RECIPE = ("iemocap", "cremad", "ravdess", "emodb")  # recipes whose speaker_of reads a file's name


def read_lines(path: Path) -> list[dict]:
    """A JSON Lines file's records (blank lines skipped); a line that is not JSON is an error naming it."""
    out = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                raise ValueError(f"{path} line {number}: not a JSON record") from None
    return out


def fold_files(folder: Path, corpus: str) -> dict[str, dict[str, Path]]:
    """{fold name: {"train"|"valid"|"test": file}} of ``folder/fold_N/``, in fold order."""
    found: dict[int, dict[str, Path]] = {}
    for path in folder.glob(f"fold_*/{corpus}_*_fold_*.jsonl"):
        m = FOLD_FILE.fullmatch(path.stem)
        if m and m["corpus"] == corpus and path.parent.name == f"fold_{m['n']}":
            found.setdefault(int(m["n"]), {})[m["part"]] = path
    return {f"fold{n}": found[n] for n in sorted(found)}


def speaker_rule(corpus: str):
    """The recipe's ``speaker_of(stem) -> (speaker, session, gender)`` for a corpus named like one, else None."""
    return import_module(f"{__package__}.{corpus}").speaker_of if corpus in NAMED_BY_RECIPE else None


def build_manifest(root: str | Path, corpus: str, out: str | Path, label_map: list[str] = (),
                   progress: bool = True) -> pd.DataFrame:
    """``root``: the EmoBox folder (``data/`` and ``downloads/`` inside); ``corpus``: its name there (``iemocap``);
    ``label_map``: RAW:CODE for EmoBox class names that are no word for a code (MSP-Podcast's ``Other:-``)."""
    root = corpus_root(root, "EmoBox", "data")
    folder = root / "data" / corpus
    listing = folder / f"{corpus}.jsonl"
    if not listing.is_file():
        there = sorted(p.name for p in (root / "data").iterdir() if (p / f"{p.name}.jsonl").is_file())
        raise not_the_corpus(root, f"EmoBox {corpus}", f"data/{corpus}/{corpus}.jsonl (its corpora: "
                                                       f"{', '.join(there) or 'none'})")
    folds = fold_files(folder, corpus)
    lacking = [f"data/{corpus}/fold_{n}/{corpus}_{part}_fold_{n}.jsonl" for n, parts in
               ([(name[4:], parts) for name, parts in folds.items()] or [("1", {})])
               for part in ("train", "test") if part not in parts]
    if not (folder / "label_map.json").is_file():
        lacking.append(f"data/{corpus}/label_map.json")
    if lacking:
        raise not_the_corpus(root, f"EmoBox {corpus}", ", ".join(lacking))
    classes = json.loads((folder / "label_map.json").read_text())
    records = read_lines(listing)
    tested: dict[str, str] = {}
    for name, parts in folds.items():
        for record in read_lines(parts["test"]):
            if tested.setdefault(record["key"], name) != name:
                raise ValueError(f"{parts['test']}: {record['key']} is in the test file of {tested[record['key']]} too")
    in_folds = {r["key"] for parts in folds.values() for path in parts.values() for r in read_lines(path)}
    emo = pd.Series([str(r.get("emo", "")) for r in records])
    unmapped = sorted(set(emo) - set(classes))
    if unmapped:
        raise ValueError(f"{folder / 'label_map.json'}: no class for the label(s) {', '.join(map(repr, unmapped))}")
    codes = label_codes(emo.map(classes), label_map, f"{folder} (its label_map.json's classes)")
    rule, written, rows, outside = speaker_rule(corpus), audio_folder(out), [], []
    for record, code in zip(records, codes):
        key = record["key"]
        if key not in in_folds:
            outside.append(key)
            continue
        if code == "":
            continue
        path = root / record["wav"]
        if record.get("start_time") is not None and path.is_file():
            end = record.get("end_time")
            path = cut_segment(path, float(record["start_time"]), None if end is None else float(end),
                               written / f"{key}.wav")
        speaker, session, gender = recovered(rule, Path(record["wav"]).stem) or (UNKNOWN_SPEAKER + key, "", "")
        rows.append(dict(utt_id=key, path=str(path), emotion=code, speaker=speaker, session=session, gender=gender,
                         corpus=corpus, fold=tested.get(key, "")))
    note_shared_speakers(rows, corpus)
    left_out = {"labels left out by --label-map": int((codes == "").sum()),
                "utterances in no fold's train or test file": len(outside)}
    return finish(rows, root, corpus, out, progress, not_used=left_out)


def recovered(rule, stem: str) -> tuple | None:
    """(speaker, session, gender) by a recipe's naming rule; None without one, or for a name it does not fit."""
    try:
        return rule(stem) if rule else None
    except ValueError:
        return None


def note_shared_speakers(rows: list[dict], corpus: str) -> None:
    """A warning for folds whose test speakers also train in them: EmoBox's folds keep speakers apart where the
    corpus allows it, not everywhere; the study runs them as given."""
    folds_of: dict[str, set] = {}
    for r in rows:
        if not r["speaker"].startswith(UNKNOWN_SPEAKER):
            folds_of.setdefault(r["speaker"], set()).add(r["fold"])
    for fold in sorted({r["fold"] for r in rows} - {""}):
        shared = sorted(s for s, folds in folds_of.items() if fold in folds and len(folds) > 1)
        if shared:
            warnings.warn(f"EmoBox {corpus} {fold}: {len(shared)} of its test speakers also train in it "
                          f"({shortlist(shared)}): speaker-dependent, as EmoBox defines it", stacklevel=3)
