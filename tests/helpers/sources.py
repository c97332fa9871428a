"""Corpora in the general forms researchers download them in, laid out as the real ones are: a Hugging Face dataset
repository (Parquet shards named as ``push_to_hub`` names them, the README's ``configs``, the ``audio`` column a
struct of the encoded file's bytes and name, the features in the schema's ``huggingface`` metadata as ``datasets``
writes them), a ``save_to_disk`` folder (Arrow stream files, ``state.json``, ``dataset_dict.json``), an audformat
database written by ``audformat`` itself, and an EmoBox checkout (``data/<corpus>/`` JSON Lines, folds,
``label_map.json``; the audio under ``downloads/``). Each builder takes its rows from the caller, so that a test's
expected values are the test's own."""

from __future__ import annotations

import io
import json
import zlib
from pathlib import Path

import soundfile as sf

from helpers.corpora import voice, write

CODE_OF = {"angry": "ang", "anger": "ang", "happy": "hap", "happiness": "hap", "neutral": "neu", "sad": "sad",
           "sadness": "sad", "surprised": "sur", "calm": "cal", "fearful": "fea", "disgust": "dis", "neu": "neu",
           "hap": "hap", "ang": "ang", "exc": "hap"}  # the fixtures' words, for a voice's pitch only


def encoded(name: str, seconds: float, rate: int, channels: int = 1, label: str = "neutral") -> bytes:
    """A speech-like WAV file's bytes (16-bit), as a dataset stores it."""
    out = io.BytesIO()
    f0 = 120.0 + zlib.crc32(name.encode()) % 90
    sf.write(out, voice(seconds, rate, f0, channels=channels, seed=zlib.crc32(name.encode())), rate, format="WAV",
             subtype="PCM_16")
    return out.getvalue()


def _features(label: str, names: list[str] | None, rate: int, speaker: str, extra: dict) -> dict:
    feats = {"audio": {"sampling_rate": rate, "_type": "Audio"},
             label: {"names": names, "_type": "ClassLabel"} if names else {"dtype": "string", "_type": "Value"},
             speaker: {"dtype": "string", "_type": "Value"}}
    return feats | {k: {"dtype": "string", "_type": "Value"} for k in extra}


def _table(rows: list[dict], label: str, names: list[str] | None, rate: int, speaker: str):
    """rows: dict(name, label, speaker, seconds[, channels][, bytes=False: the path alone][, more columns])."""
    import pyarrow as pa
    extra = [k for k in rows[0] if k not in ("name", "label", "speaker", "seconds", "channels", "bytes", "path")]
    audio = [{"bytes": encoded(r["name"], r["seconds"], rate, r.get("channels", 1)) if r.get("bytes", True) else None,
              "path": r.get("path", r["name"])} for r in rows]
    labels = [r["label"] for r in rows]
    columns = {"audio": pa.array(audio, pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
               label: pa.array(labels, pa.int64() if names else pa.string()),
               speaker: pa.array([r["speaker"] for r in rows], pa.string()),
               **{k: pa.array([r[k] for r in rows], pa.string()) for k in extra}}
    meta = {"info": {"features": _features(label, names, rate, speaker, extra)}}
    return pa.table(columns).replace_schema_metadata({"huggingface": json.dumps(meta)})


def hf_parquet(root: Path, shards: dict[str, list[list[dict]]], label: str = "emotion", speaker: str = "speaker_id",
               rate: int = 44_100, names: list[str] | None = None, by_datasets: bool = False) -> Path:
    """A dataset repository as the Hub holds it: ``data/{split}-{i:05d}-of-{n:05d}.parquet`` for each split's shards
    (``shards``: split → list of shards, each a list of rows), the README whose YAML header lists the features and
    the default config's ``data_files``, and ``.gitattributes``. ``by_datasets``: the shards written by the
    ``datasets`` library itself (an ``Audio`` column cast from the bytes, ``to_parquet``)."""
    import pyarrow.parquet as pq
    (root / "data").mkdir(parents=True, exist_ok=True)
    for split, parts in shards.items():
        for i, rows in enumerate(parts):
            table = _table(rows, label, names, rate, speaker)
            path = root / "data" / f"{split}-{i:05d}-of-{len(parts):05d}.parquet"
            if by_datasets:
                from datasets import Audio, Dataset
                bare = Dataset(table.replace_schema_metadata(None))
                bare.cast_column("audio", Audio(sampling_rate=rate)).to_parquet(str(path))
            else:
                pq.write_table(table, path)
    files = "".join(f"  - split: {split}\n    path: data/{split}-*\n" for split in shards)
    dtype = "    dtype: string\n" if not names else "    class_label:\n      names:\n" + "".join(
        f"        '{i}': {n}\n" for i, n in enumerate(names))
    (root / "README.md").write_text(
        f"---\ndataset_info:\n  features:\n  - name: audio\n    dtype:\n      audio:\n        sampling_rate: {rate}\n"
        f"  - name: {label}\n{dtype}  - name: {speaker}\n    dtype: string\n"
        f"configs:\n- config_name: default\n  data_files:\n{files}---\n\n# A speech emotion dataset\n")
    (root / ".gitattributes").write_text("*.parquet filter=lfs diff=lfs merge=lfs -text\n")
    return root


def hf_saved(root: Path, splits: dict[str, list[dict]], label: str = "label", speaker: str = "actor",
             rate: int = 48_000, names: list[str] | None = None) -> Path:
    """A ``DatasetDict.save_to_disk`` folder: ``dataset_dict.json``, and per split an Arrow stream file with its
    ``state.json`` and ``dataset_info.json``."""
    import pyarrow as pa
    root.mkdir(parents=True, exist_ok=True)
    (root / "dataset_dict.json").write_text(json.dumps({"splits": list(splits)}))
    for split, rows in splits.items():
        table = _table(rows, label, names, rate, speaker)
        (root / split).mkdir(exist_ok=True)
        with pa.OSFile(str(root / split / "data-00000-of-00001.arrow"), "wb") as sink, \
                pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        state = {"_data_files": [{"filename": "data-00000-of-00001.arrow"}], "_fingerprint": f"{split}0123abcd",
                 "_format_columns": None, "_format_kwargs": {}, "_format_type": None, "_output_all_columns": False,
                 "_split": None}
        (root / split / "state.json").write_text(json.dumps(state, indent=2))
        info = {"citation": "", "description": "", "homepage": "", "license": "",
                "features": _features(label, names, rate, speaker, {})}
        (root / split / "dataset_info.json").write_text(json.dumps(info, indent=2))
    return root


def audformat_db(root: Path, segments: list[tuple], speakers: dict[str, str], files: dict[str, tuple],
                 storage: str = "csv") -> Path:
    """An audformat database written by ``audformat``: ``files`` (path → seconds, rate, channels) as media, the
    speaker scheme's labels in the misc table ``speaker`` (speaker → gender), and the segmented table ``emotion``
    of ``segments`` (file, start, end or None, emotion word, confidence, speaker) with the columns ``emotion``,
    ``emotion.confidence`` and ``speaker``; tables stored as ``storage`` (audb's databases: CSV)."""
    import audformat
    import pandas as pd
    for rel, (seconds, rate, channels) in files.items():
        write(root / rel, seconds, rate, channels, seed=zlib.crc32(rel.encode()))
    db = audformat.Database("dialogues", source="recorded for the test", usage=audformat.define.Usage.RESEARCH)
    db.schemes["emotion"] = audformat.Scheme(labels=["anger", "happiness", "neutral", "sadness"])
    db.schemes["confidence"] = audformat.Scheme("float", minimum=0, maximum=1)
    db.schemes["gender"] = audformat.Scheme(labels=["female", "male"])
    db.misc_tables["speaker"] = audformat.MiscTable(pd.Index(list(speakers), name="speaker", dtype="string"))
    db["speaker"]["gender"] = audformat.Column(scheme_id="gender")
    db["speaker"]["gender"].set(list(speakers.values()))
    db.schemes["speaker"] = audformat.Scheme("str", labels="speaker")
    db.raters["gold"] = audformat.Rater()
    index = audformat.segmented_index([s[0] for s in segments], [s[1] for s in segments],
                                      [s[2] if s[2] is not None else pd.NaT for s in segments])
    db["emotion"] = audformat.Table(index)
    for column, scheme, k in (("emotion", "emotion", 3), ("emotion.confidence", "confidence", 4),
                              ("speaker", "speaker", 5)):
        db["emotion"][column] = audformat.Column(scheme_id=scheme, rater_id="gold" if k < 5 else None)
        db["emotion"][column].set([s[k] for s in segments])
    db.save(str(root), storage_format=storage)
    return root


IEMOCAP_MAP = {"neu": "Neutral", "hap": "Happy", "ang": "Angry", "sad": "Sad", "exc": "Happy"}  # EmoBox's


def emobox(root: Path, corpus: str, utterances: list[tuple], label_map: dict[str, str], seconds: float = 2.0,
           rate: int = 16_000, channels: int = 1) -> Path:
    """An EmoBox checkout holding one corpus: ``data/<corpus>/<corpus>.jsonl`` (key, dataset, wav, type,
    sample_rate, num_frame, task, length, emo, channel), ``fold_N/<corpus>_{train,test}_fold_N.jsonl``, the
    corpus's ``label_map.json``, and the audio under ``downloads/<corpus>/``. ``utterances``: (wav path below
    ``downloads/<corpus>/``, raw label, fold whose test file holds it)."""
    folder = root / "data" / corpus
    lines, folds = [], sorted({u[2] for u in utterances})
    for rel, emo, _ in utterances:
        wav = f"downloads/{corpus}/{rel}"
        write(root / wav, seconds, rate, channels, 110.0 + zlib.crc32(rel.encode()) % 100, CODE_OF.get(emo, "neu"),
              seed=zlib.crc32(rel.encode()))
        key = f"{corpus}-{Path(rel).stem.replace('_', '-') if corpus != 'iemocap' else Path(rel).stem}"
        lines.append(dict(key=key, dataset=corpus, wav=wav, type="raw", sample_rate=rate,
                          num_frame=float(round(seconds * rate)), task="category", length=seconds, emo=emo,
                          channel=channels))
    folder.mkdir(parents=True, exist_ok=True)
    dump = lambda path, rows: path.write_text("".join(json.dumps(r) + "\n" for r in rows))  # noqa: E731
    dump(folder / f"{corpus}.jsonl", lines)
    for n in folds:
        (folder / f"fold_{n}").mkdir(exist_ok=True)
        dump(folder / f"fold_{n}" / f"{corpus}_test_fold_{n}.jsonl", [r for r, u in zip(lines, utterances)
                                                                       if u[2] == n])
        dump(folder / f"fold_{n}" / f"{corpus}_train_fold_{n}.jsonl", [r for r, u in zip(lines, utterances)
                                                                        if u[2] != n])
    (folder / "label_map.json").write_text(json.dumps(label_map, indent=4))
    return root


def iemocap_utterances(sessions=range(1, 6), per_emotion: int = 2) -> list[tuple]:
    """IEMOCAP utterances as EmoBox lists them (fold k: session k), both speakers of each session, the labels neu,
    hap, exc, ang, sad (exc and hap: one class), the male speaker's first utterance in a dialog his partner leads
    (``Ses01F_impro01_M000`` is session 1's man)."""
    out = []
    for s in sessions:
        for speaker in "FM":
            for k, emo in enumerate(("neu", "hap", "ang", "sad", "exc") * per_emotion):
                dialog = f"Ses{s:02d}F_impro0{1 + k % 3}"
                out.append((f"Session{s}/sentences/wav/{dialog}/{dialog}_{speaker}{k:03d}.wav", emo, s))
    return out


