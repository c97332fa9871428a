"""A Hugging Face dataset folder → manifest: a dataset repository as downloaded (Parquet shards, ``data/train-00000-
of-00002.parquet``, their splits named by the README's ``configs`` or by the shards' names) or a folder written by
``save_to_disk`` (Arrow files listed by ``state.json``; ``dataset_dict.json`` names the splits). Read with pyarrow,
shard by shard.

The ``audio`` column holds each file as the dataset stores it, a struct of the encoded file's ``bytes`` and its
``path``: the bytes are written out once as the file they are (``data/NAME-audio/<split>/``, beside the manifest),
then the data step brings them to 16 kHz mono like any corpus's files; a row without bytes whose ``path`` is a file
(relative to the dataset folder or absolute) is read in place. The labels (strings, or a ``ClassLabel``'s integers
named by the features the dataset stores with its data) become the study's codes (``common.label_codes``); the
dataset's splits are kept in ``split``."""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import soundfile as sf
from tqdm.auto import tqdm

from ..audio import audio_files
from ..manifest import speaker_ids
from .common import audio_folder, corpus_root, finish, kept_splits, label_codes, not_the_corpus, write_once

SHARD = re.compile(r"(?P<split>.+?)-\d{5}-of-\d{5}")  # push_to_hub's data/train-00000-of-00002[-hash].parquet
SAVED = ("dataset_dict.json", "state.json")  # save_to_disk: of a dataset with splits, of one split
FORMS = "Parquet shards (*.parquet) or a save_to_disk folder (dataset_dict.json or state.json)"


@dataclass(frozen=True)
class Shard:
    split: str  # "" where the dataset names none
    path: Path

    def schema(self):
        import pyarrow.parquet as pq
        return pq.read_schema(self.path) if self.path.suffix == ".parquet" else self._stream().schema

    def rows(self, columns: list[str]):
        """The shard's rows, record batch by record batch, as {column: values}; ``audio.path`` names a struct's
        field alone (a Parquet shard then reads no audio bytes)."""
        tops = list(dict.fromkeys(c.split(".")[0] for c in columns))
        if self.path.suffix == ".parquet":
            import pyarrow.parquet as pq
            batches = pq.ParquetFile(self.path).iter_batches(batch_size=64, columns=columns)
        else:
            batches = (b.select(tops) for b in self._stream())
        import pyarrow as pa
        for batch in batches:
            table = pa.Table.from_batches([batch]).flatten() if any("." in c for c in columns) else batch
            yield {c: table.column(c).to_pylist() for c in columns}

    def _stream(self):
        import pyarrow as pa
        return pa.ipc.open_stream(pa.memory_map(str(self.path)))


def _readme_configs(root: Path) -> list[dict]:
    """The ``configs`` of the README's YAML header (a Hub dataset's card): which files make which split."""
    readme = root / "README.md"
    if not readme.is_file():
        return []
    head = re.match(r"---\n(.*?)\n---", readme.read_text(encoding="utf-8", errors="replace"), flags=re.S)
    if not head:
        return []
    import yaml
    try:
        card = yaml.safe_load(head.group(1)) or {}
    except yaml.YAMLError:
        return []
    return card.get("configs") or [] if isinstance(card, dict) else []


def parquet_shards(root: Path) -> list[Shard]:
    """The shards of a downloaded dataset: as the README's default config lists them, else every Parquet file, its
    split the name before ``-00000-of-00002`` or else the folder it lies in (``default/train/0000.parquet``)."""
    configs = _readme_configs(root)
    if configs:
        config = next((c for c in configs if c.get("default")), None) or next(
            (c for c in configs if c.get("config_name") == "default"), configs[0])
        files = config.get("data_files") or []
        out = []
        for entry in [files] if isinstance(files, str) else files:
            split, patterns = ("train", entry) if isinstance(entry, str) else (entry.get("split", "train"),
                                                                              entry.get("path", []))
            for pattern in [patterns] if isinstance(patterns, str) else patterns:
                out += [Shard(split, p) for p in sorted(root.glob(pattern)) if p.suffix == ".parquet"]
        if out:
            return out
    shards = []
    for path in audio_files(root, (".parquet",)):
        named = SHARD.fullmatch(path.stem) or SHARD.match(path.stem)
        inside = path.parent != root
        shards.append(Shard(named["split"] if named else path.parent.name if inside else "", path))
    return shards


def saved_shards(root: Path) -> list[Shard]:
    """The Arrow files of a ``save_to_disk`` folder: each split's ``state.json`` lists them."""
    splits = json.loads((root / SAVED[0]).read_text())["splits"] if (root / SAVED[0]).is_file() else [""]
    out = []
    for split in splits:
        state = json.loads((root / split / SAVED[1]).read_text())
        out += [Shard(split or state.get("_split") or "", root / split / f["filename"]) for f in state["_data_files"]]
    return out


def features(schema) -> dict:
    """The dataset's features as ``datasets`` stores them in the schema's metadata (a ClassLabel's names)."""
    raw = (schema.metadata or {}).get(b"huggingface")
    meta = json.loads(raw) if raw else {}
    return meta.get("info", meta).get("features") or {}


def shards_of(root: Path, splits: list[str] | None) -> list[Shard]:
    saved = any((root / name).is_file() for name in SAVED)
    shards = saved_shards(root) if saved else parquet_shards(root)
    if not shards:
        raise not_the_corpus(root, "Hugging Face dataset", FORMS)
    if splits:
        there = sorted({s.split for s in shards})
        missing = [s for s in splits if s not in there]
        if missing:
            raise ValueError(f"{root}: no split {', '.join(missing)} (--splits); its splits: {', '.join(there)}")
        shards = [s for s in shards if s.split in splits]
    return shards


def _file_name(item: dict, utt_id: str) -> str:
    """The written file's name: the utterance id and the stored name's suffix, else the format soundfile reads in
    the bytes (``.wav``, ``.flac`` ...)."""
    suffix = Path(item.get("path") or "").suffix
    if not suffix:
        try:
            suffix = "." + sf.info(io.BytesIO(item["bytes"])).format.lower()
        except (RuntimeError, sf.LibsndfileError):
            suffix = ".bin"  # not audio soundfile reads: listed as unreadable by ``finish``
    return utt_id + suffix


def build_manifest(root: str | Path, out: str | Path, emotion: str, speaker: str, split: str | None = None,
                   splits: list[str] | None = None, audio: str = "audio", label_map: list[str] = (),
                   progress: bool = True) -> pd.DataFrame:
    """``emotion``, ``speaker``, ``audio``: the dataset's columns; ``split``: a column naming each row's split,
    instead of the dataset's own; ``splits``: the splits to take (default: all); ``label_map``: RAW:CODE."""
    root = corpus_root(root, "Hugging Face dataset")
    shards = shards_of(root, splits)
    columns = [audio, emotion, speaker] + ([split] if split else [])
    schema = shards[0].schema()
    missing = [f"{c!r} ({flag})" for c, flag in zip(columns, ("--audio", "--emotion", "--speaker", "--split"))
               if c not in schema.names]
    if missing:
        raise ValueError(f"{shards[0].path}: no column {', '.join(missing)}; its columns: {', '.join(schema.names)}")
    names = features(schema).get(emotion, {}).get("names")  # a ClassLabel's integers → its names
    listed = []  # first every row without its audio: ids, labels and splits are known before a file is written
    for shard in shards:
        for batch in shard.rows(columns[1:] + [f"{audio}.path"]):
            listed.append(pd.DataFrame({"split": batch[split] if split else shard.split, "speaker": batch[speaker],
                                        "label": pd.Series(batch[emotion], dtype=object),
                                        "name": [Path(p or "").stem for p in batch[f"{audio}.path"]]}))
    if not listed:
        raise ValueError(f"{root}: the dataset has no rows")
    df = pd.concat(listed, ignore_index=True)
    df["split"] = df["split"].map(lambda v: "" if v is None else str(v).strip())
    unlabelled = df["label"].isna() | df["label"].map(lambda v: isinstance(v, int) and v < 0)  # ClassLabel's -1
    if names:
        df["label"] = df["label"].map(lambda v: names[v] if isinstance(v, int) and 0 <= v < len(names) else v)
    df["emotion"] = ""
    df.loc[~unlabelled, "emotion"] = label_codes(df.loc[~unlabelled, "label"], label_map, str(root))
    unique = df["name"].ne("") & ~df["name"].duplicated(keep=False)
    df["utt_id"] = df["name"].where(unique, df["split"].where(df["split"] != "", "row") + "-"
                                    + pd.Series(range(len(df))).map("{:06d}".format))
    df["speaker"] = speaker_ids(df["speaker"], df["utt_id"])
    labelled = kept_splits(df[df["emotion"] != ""], str(root))  # every error before a file is written
    written, rows, no_audio = audio_folder(out), [], []
    stored = (item for shard in shards for batch in shard.rows([audio]) for item in batch[audio])
    for i, item in tqdm(enumerate(stored), total=len(df), desc=root.name, unit="file", disable=not progress):
        if i not in labelled.index:
            continue
        r, item = labelled.loc[i], item or {}
        if item.get("bytes") is not None:
            path = write_once(written / (df.at[i, "split"] or "all") / _file_name(item, r["utt_id"]), item["bytes"])
        else:
            path = Path(item.get("path") or "")
            path = path if path.is_absolute() else root / path
            if not item.get("path") or not path.is_file():
                no_audio.append(r["utt_id"])
                continue
        rows.append(dict(utt_id=r["utt_id"], path=str(path), emotion=r["emotion"], speaker=r["speaker"], session="",
                         gender="", corpus=root.name) | ({"split": r["split"]} if "split" in r else {}))
    not_used = {"rows without a label": int(unlabelled.sum()),
                "labels left out by --label-map": int((df["emotion"] == "").sum() - unlabelled.sum())}
    return finish(rows, root, root.name, out, progress,
                  skipped={"rows with neither audio bytes nor a file at their path": no_audio}, not_used=not_used)
