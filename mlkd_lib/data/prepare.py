"""A study's data as the steps use it: the corpus manifest and noise bank made (or reused) once,
the corpus brought to 16 kHz mono (``ingest.py``), the study's classes picked from it (``study_manifest``), and
each fold's training / validation / test utterances with the two parts of every noise recording. Torch-free: the
planner, the exporter and the steps all read folds through here. ``cfg`` is a study's ``config.StudyConfig``
(the data layer lies below the config and imports nothing of it).

Defaults that name data follow the user's data (``follow_data``): the unseen noise types are the noise
collection's types that no model trains on, never a list written for the demo's or the paper's collection."""

from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..names import label_merges
from .conditions import reverb, unseen_noise
from .conditions.families import needs_rirs
from .folds import Fold, get_fold, make_folds, split
from .ingest import ingest
from .manifest import read_manifest, write_manifest
from .noise.bank import load_noise_bank, split_noise, write_noise_bank
from .noise.collection import collection_type_names
from .ownership import (
    BUILDING,
    READY,
    DataMismatch,
    differences,
    file_digest,
    holds,
    holds_ready,
    mismatch,
    recorded_identity,
    write_holds,
)
from .recipes import iemocap
from .synthetic import make_synthetic_corpus

STAMP_KEYS = ("corpus", "iemocap_root", "manifest", "noise_dir", "noisex_dir", "synth_per_class", "synth_seed",
              "noise_seconds")


def bank_types(cfg) -> list[str]:
    """The noise bank's types: those the students train on, then the test-only unseen ones."""
    unseen = cfg.unseen_noise_types if unseen_noise.FAMILY in cfg.conditions else []
    return list(cfg.noise_types) + [t for t in unseen if t not in cfg.noise_types]


def follow_data(cfg):
    """``cfg`` with the defaults that name data drawn from the user's own: an empty ``unseen_noise_types`` becomes
    the noise collection's types beyond ``noise_types`` (the synthetic bank's music and traffic; NOISEX-92's other
    recordings; MUSAN's or DEMAND's other folders). None left: the unseen-noise family is left out (``--plan``
    and the study's README say so). A collection that cannot be read is left as it is: the pre-flight names it."""
    if cfg.unseen_noise_types or unseen_noise.FAMILY not in cfg.conditions:
        return cfg
    names = collection_type_names(cfg.noise_source, cfg.noise_types)
    if names is None:
        return cfg
    return dataclasses.replace(cfg, unseen_noise_types=names)


def no_unseen_noise(cfg) -> str | None:
    """The line that says the unseen-noise family was left out because the collection has no other type."""
    if unseen_noise.FAMILY in cfg.conditions and not cfg.unseen_noise_types:
        return (f"unseen noise: none — the noise collection ({cfg.noise_source or 'the synthetic noises'}) has no "
                f"type beyond noise_types ({', '.join(cfg.noise_types)}), so the unseen-noise family is left out")
    return None


def rir_bank_dir(cfg) -> Path:
    return Path(cfg.data_dir) / "rirs"


def corpus_listing_path(cfg) -> Path:
    """The corpus as its recipe (or the user's table) lists it, with the corpus's own paths; ``cfg.manifest_path``
    is the same rows with every file at 16 kHz mono."""
    return cfg.manifest_path.with_name("corpus.csv")


def audio_cache_dir(cfg) -> Path:
    """Where the corpus's files that were not 16 kHz mono are kept converted (``ingest.py``)."""
    return cfg.manifest_path.with_name("audio-16k")


def _stamp(cfg) -> dict:
    stamp = {k: getattr(cfg, k) for k in STAMP_KEYS}
    stamp["noise_types"] = bank_types(cfg)
    if cfg.corpus == "manifest" and Path(cfg.manifest).is_file():  # an edited table is read again
        stat = Path(cfg.manifest).stat()
        stamp["manifest_file"] = [stat.st_size, stat.st_mtime_ns]
    return stamp


def is_prepared(cfg) -> bool:
    """Whether the data step has made this config's corpus listing, manifest and noise bank (and nothing changed)."""
    path = Path(cfg.data_dir) / "data_stamp.json"
    return (path.is_file() and json.loads(path.read_text()) == _stamp(cfg) and cfg.manifest_path.is_file()
            and corpus_listing_path(cfg).is_file() and cfg.noise_bank_dir.is_dir())


def corpus_listing(cfg, progress: bool = True) -> pd.DataFrame:
    """The corpus's utterances with their own paths: made by its recipe, or the user's table checked and completed
    (the synthetic corpus is generated here, at 16 kHz)."""
    if cfg.corpus == "synthetic":
        return make_synthetic_corpus(cfg.manifest_path.parent, cfg.synth_seed, cfg.synth_per_class, progress=progress)
    if cfg.corpus == "iemocap":
        return iemocap.build_manifest(cfg.iemocap_root, progress=progress)
    if cfg.corpus == "manifest":
        from .user_manifest import complete_manifest
        return complete_manifest(cfg.manifest, progress)
    raise ValueError(f"corpus must be 'synthetic', 'iemocap' or 'manifest', got {cfg.corpus!r}")


def planned_corpus(cfg) -> pd.DataFrame | None:
    """The corpus listing the data step will use, read without converting or writing anything: the one it made
    where nothing has changed since, else the recipe's or the user's table's; None for a synthetic corpus not made
    yet (the data step generates it)."""
    if is_prepared(cfg):
        return read_manifest(corpus_listing_path(cfg))
    if cfg.corpus == "synthetic":
        return None
    return corpus_listing(cfg, progress=False)


def data_identity(cfg) -> dict:
    """What ``cfg``'s data folder holds once its data step has run: every input its files are made from
    (``ownership.py``)."""
    ident = {k: getattr(cfg, k) for k in STAMP_KEYS}
    ident["noise_types"] = bank_types(cfg)
    if cfg.corpus == "manifest":
        ident["manifest_sha256"] = file_digest(cfg.manifest)
    ident["emotions"], ident["label_map"] = list(cfg.emotions), list(cfg.label_map)
    ident["rirs"] = [cfg.rir_dir, cfg.rir_rooms] if needs_rirs(cfg) else None
    ident["test_manifests"] = {str(p): file_digest(p) for p in cfg.test_manifests}
    return ident


def own_data(study: str | Path, cfg) -> dict:
    """The data ``study`` reads: what its data step recorded, where its folder still holds it or its settings make
    it again; what its settings make, before its data step has run. ``DataMismatch`` where neither holds: it was
    made from data its folder has lost and its settings no longer make (its table changed since)."""
    recorded, now = recorded_identity(study), data_identity(cfg)
    if recorded is None or recorded == now or holds_ready(cfg.data_dir, recorded):
        return recorded or now
    raise DataMismatch(f"{mismatch(study, recorded, cfg.data_dir)}, and its settings now make other data "
                       f"(they differ in {', '.join(differences(recorded, now))}): run it again with --force to "
                       f"make its data anew and retrain every model, or restore what it was made from")


def check_study_data(study: str | Path, cfg) -> None:
    """Refuse (``DataMismatch``, naming both) to read ``study``'s data from a folder that does not hold it now. A
    study and a folder from before folders said what they hold are taken as they are."""
    recorded = recorded_identity(study)
    if recorded is None and holds(cfg.data_dir) is None:
        return
    want = recorded if recorded is not None else data_identity(cfg)
    if holds_ready(cfg.data_dir, want):
        return
    again = data_identity(cfg) == want
    raise DataMismatch(f"{mismatch(study, want, cfg.data_dir)}. " + (
        "Run the study's own command again (its run.json has it): its data step makes its data again, and nothing "
        "is retrained" if again else "Its settings no longer make that data: run it again with --force"))


WRITE_WAIT_S = 6 * 3600.0  # a data step waits this long for another writing the same folder (a conversion)


def prepare_data(cfg, progress: bool = True, study: str | Path | None = None) -> dict:
    """Build (or reuse) the corpus listing, the noise bank and the room impulse responses named by the config; bring
    the study's utterances to 16 kHz mono into the manifest the steps read (every run: a file that changed is
    converted again). One writer at a time; the folder then says it holds this data (``ownership.py``: ``study``
    is named there as the one it was made for)."""
    from ..layout import FolderLock
    ident = data_identity(cfg)
    with FolderLock(cfg.data_dir).acquire(wait_s=WRITE_WAIT_S):
        made = holds_ready(cfg.data_dir, ident)
        if not made:
            write_holds(cfg.data_dir, ident, BUILDING, study)
        paths = _prepare(cfg, progress)
        if not made:
            write_holds(cfg.data_dir, ident, READY, study)
    return paths


def _prepare(cfg, progress: bool) -> dict:
    listing, noise_dir = corpus_listing_path(cfg), cfg.noise_bank_dir
    if not is_prepared(cfg):
        write_manifest(corpus_listing(cfg, progress), listing)
        write_noise_bank(noise_dir, cfg.noise_source or None, cfg.synth_seed, cfg.noise_seconds, bank_types(cfg))
        (Path(cfg.data_dir) / "data_stamp.json").write_text(json.dumps(_stamp(cfg), indent=2))
    # the study's classes only are converted (the listing keeps the rest, for another choice of emotions)
    utterances = pick_classes(read_manifest(listing), cfg, listing)
    write_manifest(ingest(utterances, audio_cache_dir(cfg), progress), cfg.manifest_path)
    if needs_rirs(cfg):
        rir_stamp = {"rir_dir": cfg.rir_dir, "rooms": cfg.rir_rooms, "seed": cfg.synth_seed}
        stamp_file = rir_bank_dir(cfg) / "stamp.json"
        if not stamp_file.is_file() or json.loads(stamp_file.read_text()) != rir_stamp:
            shutil.rmtree(rir_bank_dir(cfg), ignore_errors=True)
            reverb.write_rir_bank(rir_bank_dir(cfg), reverb.SEVERITIES, cfg.rir_rooms, cfg.synth_seed,
                           cfg.rir_dir)
            stamp_file.write_text(json.dumps(rir_stamp))
    for path in cfg.test_manifests:
        prepare_test_corpus(cfg, path, progress)
    return {"manifest": cfg.manifest_path, "noise_dir": noise_dir}


def test_corpus_dir(cfg, name: str) -> Path:
    """Where another corpus scored by the study (``test_manifests``; ``name``: its file's stem) is kept."""
    return Path(cfg.data_dir) / "test-corpora" / name


def test_classes(manifest: pd.DataFrame, cfg, where: str | Path) -> pd.DataFrame:
    """Another corpus's utterances of the study's classes (``label_map`` merged first): the classes it lacks are
    simply not scored (UA averages the recall of the classes present), but it must have one of them."""
    merged = manifest.assign(emotion=manifest["emotion"].replace(label_merges(cfg.label_map)))
    kept = merged[merged["emotion"].isin(cfg.emotions)].reset_index(drop=True)
    if kept.empty:
        raise ValueError(f"test corpus {where}: no utterance of the study's classes {', '.join(cfg.emotions)} "
                         f"(its labels: {', '.join(sorted(set(manifest['emotion'])))})")
    return kept


def prepare_test_corpus(cfg, path: str | Path, progress: bool = True) -> Path:
    """Another corpus as the evaluation reads it: the user's table checked and completed, its utterances of the
    study's classes kept, brought to 16 kHz mono (``ingest.py``); made again when the table or the classes change."""
    from .user_manifest import complete_manifest
    path = Path(path)
    folder = test_corpus_dir(cfg, path.stem)
    stat = path.stat()
    stamp = {"manifest": str(path), "file": [stat.st_size, stat.st_mtime_ns], "emotions": cfg.emotions,
             "label_map": cfg.label_map}
    stamp_file, listing = folder / "stamp.json", folder / "corpus.csv"
    if not listing.is_file() or not stamp_file.is_file() or json.loads(stamp_file.read_text()) != stamp:
        write_manifest(test_classes(complete_manifest(path, progress), cfg, path), listing)
        stamp_file.write_text(json.dumps(stamp))
    return write_manifest(ingest(read_manifest(listing), folder / "audio-16k", progress), folder / "manifest.csv")


def load_test_corpora(cfg) -> dict[str, pd.DataFrame]:
    """{name: utterances} of every other corpus the study scores (``test_manifests``), as the data step made them."""
    out = {}
    for path in cfg.test_manifests:
        name = Path(path).stem
        manifest = test_corpus_dir(cfg, name) / "manifest.csv"
        if not manifest.is_file():
            raise FileNotFoundError(f"{manifest}: the test corpus {name} is not prepared: run the study's data step")
        out[name] = read_manifest(manifest)
    return out


@dataclass
class FoldData:
    """A fold's utterances and noise: ``noise_bank`` is the test part of each recording (every
    evaluation mixes from it, unseen types included), ``train_noise`` the part of the trained types the students
    train and validate on; ``rirs`` the rooms of the reverberant test conditions; ``test_corpora`` other corpora's
    utterances of the study's classes (``test_manifests``), which no fold trains on."""
    fold: Fold
    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame
    noise_bank: dict
    train_noise: dict
    rirs: dict
    test_corpora: dict = dataclasses.field(default_factory=dict)


def pick_classes(manifest: pd.DataFrame, cfg, where: str | Path) -> pd.DataFrame:
    """``manifest`` with ``label_map``'s merges applied and only the classes of ``emotions`` kept; every class must
    have utterances (``where`` names the table in the error)."""
    merges = label_merges(cfg.label_map)
    if merges:
        manifest = manifest.assign(emotion=manifest["emotion"].replace(merges))
    counts = manifest["emotion"].value_counts()
    absent = [e for e in cfg.emotions if e not in counts]
    if absent:
        raise ValueError(f"{where}: no utterance of the class(es) {', '.join(absent)} of emotions="
                         f"{','.join(cfg.emotions)}; the manifest's labels: "
                         + ", ".join(f"{k} ({v})" for k, v in counts.items()) + " (label_map merges RAW:CODE)")
    return manifest[manifest["emotion"].isin(cfg.emotions)].reset_index(drop=True)


def study_manifest(cfg) -> pd.DataFrame:
    """The utterances the study uses (``pick_classes`` of the manifest the data step wrote)."""
    return pick_classes(read_manifest(cfg.manifest_path), cfg, cfg.manifest_path)


def protocol_of(cfg) -> dict:
    """The fold settings of ``make_folds`` / ``get_fold``."""
    return dict(protocol=cfg.protocol, n_folds=cfg.n_folds, validation=cfg.validation,
                val_fraction=cfg.val_fraction, n_val_speakers=cfg.n_val_speakers, seed=cfg.seed)


def at_most(utterances: pd.DataFrame, per_class: int, seed: int) -> pd.DataFrame:
    """At most ``per_class`` utterances of each class, drawn by ``seed``, in their order (0: all of them)."""
    if not per_class:
        return utterances
    drawn = utterances.sample(frac=1.0, random_state=seed).groupby("emotion", sort=False).head(per_class)
    return utterances.loc[sorted(drawn.index)].reset_index(drop=True)


def load_fold(cfg, fold: str) -> FoldData:
    """A fold's parts (each of at most ``fold_utterances`` a class, where a trial sets it), noise, rooms and the
    other corpora it is scored on."""
    manifest = study_manifest(cfg)
    f = get_fold(manifest, fold, **protocol_of(cfg))
    parts = {k: at_most(v, cfg.fold_utterances, cfg.seed) for k, v in split(manifest, f).items()}
    bank = load_noise_bank(cfg.noise_bank_dir, bank_types(cfg))
    train_noise, test_noise = split_noise(bank, cfg.noise_train_fraction)
    train_noise = {k: v for k, v in train_noise.items() if k in cfg.noise_types}  # never an unseen type
    rirs = reverb.load_rir_bank(rir_bank_dir(cfg)) if needs_rirs(cfg) else {}
    return FoldData(f, parts["train"], parts["val"], parts["test"], test_noise, train_noise, rirs,
                    {k: at_most(v, cfg.fold_utterances, cfg.seed) for k, v in load_test_corpora(cfg).items()})


def fold_names(cfg) -> list[str]:
    """The folds the study runs: ``folds``, or all of the protocol's."""
    names = [f.name for f in make_folds(study_manifest(cfg), **protocol_of(cfg))]
    unknown = sorted(set(cfg.folds) - set(names))
    if unknown:
        raise ValueError(f"folds {unknown} are not folds of the study; its folds: {names}")
    return list(cfg.folds) or names


