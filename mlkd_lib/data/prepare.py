"""A study's data as the steps use it: the corpus manifest and noise bank made (or reused) once,
the study's classes picked from it (``study_manifest``), and each fold's training / validation / test
utterances with the two parts of every noise recording. Torch-free: the planner, the exporter and the
steps all read folds through here."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..config import StudyConfig, label_merges
from ..names import REVERB, UNSEEN_NOISE
from .folds import Fold, get_fold, make_folds, split
from .manifest import read_manifest, write_manifest
from .noise import load_noise_bank, split_noise, write_noise_bank
from .recipes.iemocap import build_iemocap_manifest
from .robustness import family_module, load_rir_bank, needs_rirs, write_rir_bank
from .synthetic import make_synthetic_corpus


def bank_types(cfg: StudyConfig) -> list[str]:
    """The noise bank's types: those the students train on, then the test-only unseen ones."""
    unseen = cfg.unseen_noise_types if UNSEEN_NOISE in cfg.conditions else []
    return list(cfg.noise_types) + [t for t in unseen if t not in cfg.noise_types]


def rir_bank_dir(cfg: StudyConfig) -> Path:
    return Path(cfg.data_dir) / "rirs"


def prepare_data(cfg: StudyConfig, progress: bool = True) -> dict:
    """Build (or reuse) the manifest, the noise bank and the room impulse responses named by the config."""
    manifest_path, noise_dir = cfg.manifest_path, cfg.noise_bank_dir
    stamp_path = Path(cfg.data_dir) / "data_stamp.json"
    stamp = {k: getattr(cfg, k) for k in ("corpus", "iemocap_root", "manifest", "noise_dir", "noisex_dir",
                                          "synth_per_class", "synth_seed", "noise_seconds")}
    stamp["noise_types"] = bank_types(cfg)
    if cfg.corpus == "manifest" and Path(cfg.manifest).is_file():  # an edited table is read again
        stat = Path(cfg.manifest).stat()
        stamp["manifest_file"] = [stat.st_size, stat.st_mtime_ns]
    old = json.loads(stamp_path.read_text()) if stamp_path.is_file() else None
    if old != stamp or not manifest_path.is_file() or not noise_dir.is_dir():
        if cfg.corpus == "synthetic":
            make_synthetic_corpus(manifest_path.parent, cfg.synth_seed, cfg.synth_per_class, progress=progress)
        elif cfg.corpus == "iemocap":
            build_iemocap_manifest(cfg.iemocap_root, manifest_path, progress=progress)
        elif cfg.corpus == "manifest":
            from .user_manifest import complete_manifest
            write_manifest(complete_manifest(cfg.manifest, progress), manifest_path)
        else:
            raise ValueError(f"corpus must be 'synthetic', 'iemocap' or 'manifest', got {cfg.corpus!r}")
        write_noise_bank(noise_dir, cfg.noise_source or None, cfg.synth_seed, cfg.noise_seconds, bank_types(cfg))
        stamp_path.write_text(json.dumps(stamp, indent=2))
    if needs_rirs(cfg):
        rir_stamp = {"rir_dir": cfg.rir_dir, "rooms": cfg.rir_rooms, "seed": cfg.synth_seed}
        stamp_file = rir_bank_dir(cfg) / "stamp.json"
        if not stamp_file.is_file() or json.loads(stamp_file.read_text()) != rir_stamp:
            shutil.rmtree(rir_bank_dir(cfg), ignore_errors=True)
            write_rir_bank(rir_bank_dir(cfg), family_module(REVERB).SEVERITIES, cfg.rir_rooms, cfg.synth_seed,
                           cfg.rir_dir)
            stamp_file.write_text(json.dumps(rir_stamp))
    return {"manifest": manifest_path, "noise_dir": noise_dir}


@dataclass
class FoldData:
    """A fold's utterances and noise: ``noise_bank`` is the test part of each recording (every
    evaluation mixes from it, unseen types included), ``train_noise`` the part of the trained types the students
    train and validate on; ``rirs`` the rooms of the reverberant test conditions."""
    fold: Fold
    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame
    noise_bank: dict
    train_noise: dict
    rirs: dict


def study_manifest(cfg: StudyConfig) -> pd.DataFrame:
    """The utterances the study uses: the manifest with ``label_map``'s merges applied and only the classes of
    ``emotions`` kept (every class must have utterances)."""
    manifest = read_manifest(cfg.manifest_path)
    merges = label_merges(cfg)
    if merges:
        manifest["emotion"] = manifest["emotion"].replace(merges)
    counts = manifest["emotion"].value_counts()
    absent = [e for e in cfg.emotions if e not in counts]
    if absent:
        raise ValueError(f"{cfg.manifest_path}: no utterance of the class(es) {', '.join(absent)} of emotions="
                         f"{','.join(cfg.emotions)}; the manifest's labels: "
                         + ", ".join(f"{k} ({v})" for k, v in counts.items()) + " (label_map merges RAW:CODE)")
    return manifest[manifest["emotion"].isin(cfg.emotions)].reset_index(drop=True)


def protocol_of(cfg: StudyConfig) -> dict:
    """The fold settings of ``make_folds`` / ``get_fold``."""
    return dict(protocol=cfg.protocol, n_folds=cfg.n_folds, validation=cfg.validation,
                val_fraction=cfg.val_fraction, n_val_speakers=cfg.n_val_speakers, seed=cfg.seed)


def load_fold(cfg: StudyConfig, fold: str) -> FoldData:
    manifest = study_manifest(cfg)
    f = get_fold(manifest, fold, **protocol_of(cfg))
    parts = split(manifest, f)
    bank = load_noise_bank(cfg.noise_bank_dir, bank_types(cfg))
    train_noise, test_noise = split_noise(bank, cfg.noise_train_fraction)
    train_noise = {k: v for k, v in train_noise.items() if k in cfg.noise_types}  # never an unseen type
    rirs = load_rir_bank(rir_bank_dir(cfg)) if needs_rirs(cfg) else {}
    return FoldData(f, parts["train"], parts["val"], parts["test"], test_noise, train_noise, rirs)


def fold_names(cfg: StudyConfig) -> list[str]:
    """The folds the study runs: ``folds``, or all of the protocol's."""
    names = [f.name for f in make_folds(study_manifest(cfg), **protocol_of(cfg))]
    unknown = sorted(set(cfg.folds) - set(names))
    if unknown:
        raise ValueError(f"folds {unknown} are not folds of the study; its folds: {names}")
    return list(cfg.folds) or names


