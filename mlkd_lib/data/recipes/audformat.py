"""An audformat database → manifest (audEERING's format: ``audb`` caches databases in it): a folder with the header
``db.yaml``, tables of labels per file (filewise) or per segment (segmented: file, start, end), and the speaker
scheme, whose labels a misc table may describe (gender); read with ``audformat`` itself.

The labels are one column of one table (``emotion`` of the table that holds it, by default); a segmented table's
segments are cut into files of their own (``data/NAME-audio/``, beside the manifest, at the source's rate and
channels), a filewise table's files are read in place. The speaker and gender are what the database says of each
file (``Database.get``: a files table's ``speaker`` column, mapped to ``gender`` through the speaker table); the
raters' confidence in the label (the column ``<column>.confidence``, or the table's one column of a ``confidence``
scheme) is kept as the manifest's ``confidence``."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..manifest import speaker_ids
from .common import audio_folder, corpus_root, cut_segment, finish, label_codes

SEX = {"female": "F", "f": "F", "male": "M", "m": "M"}


def label_table(db, table: str | None, column: str) -> str:
    """The table whose ``column`` holds the labels: ``table`` where named, else the one table with such a column
    (or, of several, the one named like the column)."""
    columns = {name: list(t.columns) for name, t in db.tables.items()}
    listed = "; ".join(f"{name} ({', '.join(cs) or 'no columns'})" for name, cs in columns.items())
    if table is not None:
        if table not in columns:
            raise ValueError(f"{db.root}: no table {table!r} (--table); its tables: {listed}")
        if column not in columns[table]:
            raise ValueError(f"{db.root}: table {table!r} has no column {column!r} (--column); its columns: "
                             f"{', '.join(columns[table])}")
        return table
    holding = [name for name, cs in columns.items() if column in cs]
    if len(holding) == 1 or column in holding:
        return holding[0] if len(holding) == 1 else column
    if not holding:
        raise ValueError(f"{db.root}: no table has a column {column!r} (--column); its tables: {listed}")
    raise ValueError(f"{db.root}: tables {', '.join(holding)} each have a column {column!r}: name one with --table")


def confidence_column(db, table: str, column: str) -> str | None:
    """The raters' confidence in ``column``'s labels: ``<column>.confidence``, else the table's one column of the
    ``confidence`` scheme."""
    t = db[table]
    if f"{column}.confidence" in t.columns:
        return f"{column}.confidence"
    of_scheme = [c for c in t.columns if t.columns[c].scheme_id == "confidence"]
    return of_scheme[0] if len(of_scheme) == 1 else None


def who(db, labels: pd.DataFrame) -> pd.DataFrame:
    """speaker and gender of each labelled file or segment, as the database says (empty where it does not)."""
    found = db.get("speaker", ["gender"])
    segmented = isinstance(labels.index, pd.MultiIndex)
    if found.empty:
        return pd.DataFrame({"speaker": "", "gender": ""}, index=labels.index)
    if isinstance(found.index, pd.MultiIndex) and segmented:
        found = found.reindex(labels.index)
    else:
        if isinstance(found.index, pd.MultiIndex):  # segment speakers, filewise labels: a file's first speaker
            found = found.groupby(level="file").first()
        files = labels.index.get_level_values("file") if segmented else labels.index
        found = found.reindex(files).set_axis(labels.index)
    gender = found["gender"] if "gender" in found else pd.Series("", index=labels.index)
    return pd.DataFrame({"speaker": found["speaker"].fillna(""),
                         "gender": gender.fillna("").map(lambda g: SEX.get(str(g).strip().lower(), ""))})


def _ms(t) -> str:
    return "end" if pd.isna(t) else str(round(t.total_seconds() * 1000))


def build_manifest(root: str | Path, out: str | Path, table: str | None = None, column: str = "emotion",
                   label_map: list[str] = (), progress: bool = True) -> pd.DataFrame:
    """``table``, ``column``: where the labels are (defaults above); ``label_map``: RAW:CODE."""
    import audformat
    root = corpus_root(root, "audformat database", "db.yaml")
    db = audformat.Database.load(str(root))
    table = label_table(db, table, column)
    confidence = confidence_column(db, table, column)
    labels = db[table].get()[[column] + ([confidence] if confidence else [])].dropna(subset=[column])
    codes = label_codes(labels[column], label_map, f"{root} table {table}")
    people = who(db, labels)
    segmented = isinstance(labels.index, pd.MultiIndex)
    files = pd.Series(labels.index.get_level_values("file") if segmented else labels.index, index=labels.index)
    stems = files.map(lambda f: Path(f).stem)
    named = stems.where(~stems.duplicated(keep=False) | segmented,
                        files.map(lambda f: str(Path(f).with_suffix("")).replace("/", "-")))
    rows, written = [], audio_folder(out)
    for i, key in enumerate(labels.index):
        if codes.iloc[i] == "":
            continue
        source = Path(files.iloc[i]) if Path(files.iloc[i]).is_absolute() else root / files.iloc[i]
        utt_id, path = named.iloc[i], source
        if segmented:
            utt_id = f"{named.iloc[i]}_{_ms(key[1])}_{_ms(key[2])}"
            if source.is_file():
                end = None if pd.isna(key[2]) else key[2].total_seconds()
                path = cut_segment(source, key[1].total_seconds(), end, written / f"{utt_id}.wav")
        row = dict(utt_id=utt_id, path=str(path), emotion=codes.iloc[i], speaker=people["speaker"].iloc[i],
                   session="", gender=people["gender"].iloc[i], corpus=db.name)
        rows.append(row | ({"confidence": labels[confidence].iloc[i]} if confidence else {}))
    frame = pd.DataFrame(rows)
    if not frame.empty:
        frame["speaker"] = speaker_ids(frame["speaker"], frame["utt_id"])
    left_out = {"labels left out by --label-map": int((codes == "").sum())}
    return finish(frame.to_dict("records"), root, db.name, out, progress, not_used=left_out)
