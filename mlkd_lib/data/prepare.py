"""A study's data as the steps use it: the corpus manifest and noise bank made (or reused) once,
and each fold's training / validation / test utterances with the two parts of every noise
recording. Torch-free: the planner, the exporter and the steps all read folds through here."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..config import StudyConfig
from .folds import Fold, get_fold, split
from .iemocap import build_iemocap_manifest
from .manifest import read_manifest
from .noise import load_noise_bank, split_noise, write_noise_bank
from .synthetic import make_synthetic_corpus


def prepare_data(cfg: StudyConfig, progress: bool = True) -> dict:
    """Build (or reuse) the manifest and the noise bank named by the config."""
    manifest_path, noise_dir = cfg.manifest_path, cfg.noise_dir
    stamp_path = Path(cfg.data_dir) / "data_stamp.json"
    stamp = {k: getattr(cfg, k) for k in ("corpus", "iemocap_root", "noisex_dir", "synth_per_class",
                                          "synth_seed", "noise_seconds")}
    old = json.loads(stamp_path.read_text()) if stamp_path.is_file() else None
    if old != stamp or not manifest_path.is_file() or not noise_dir.is_dir():
        if cfg.corpus == "synthetic":
            make_synthetic_corpus(manifest_path.parent, cfg.synth_seed, cfg.synth_per_class, progress=progress)
        elif cfg.corpus == "iemocap":
            build_iemocap_manifest(cfg.iemocap_root, manifest_path, progress=progress)
        else:
            raise ValueError(f"corpus must be 'synthetic' or 'iemocap', got {cfg.corpus!r}")
        write_noise_bank(noise_dir, cfg.noisex_dir or None, cfg.synth_seed, cfg.noise_seconds)
        stamp_path.write_text(json.dumps(stamp, indent=2))
    return {"manifest": manifest_path, "noise_dir": noise_dir}


@dataclass
class FoldData:
    """A fold's utterances and noise: ``noise_bank`` is the test part of each recording (every
    evaluation mixes from it), ``train_noise`` the part the students train and validate on."""
    fold: Fold
    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame
    noise_bank: dict
    train_noise: dict


def load_fold(cfg: StudyConfig, fold: str) -> FoldData:
    manifest = read_manifest(cfg.manifest_path)
    f = get_fold(manifest, fold, validation=cfg.validation, val_fraction=cfg.val_fraction,
                 n_val_speakers=cfg.n_val_speakers, seed=cfg.seed)
    parts = split(manifest, f)
    train_noise, test_noise = split_noise(load_noise_bank(cfg.noise_dir, cfg.noise_types), cfg.noise_train_fraction)
    return FoldData(f, parts["train"], parts["val"], parts["test"], test_noise, train_noise)


def fold_names(cfg: StudyConfig) -> list[str]:
    speakers = sorted(read_manifest(cfg.manifest_path)["speaker"].unique())
    unknown = sorted(set(cfg.folds) - set(speakers))
    if unknown:
        raise ValueError(f"folds {unknown} are not speakers of the corpus; speakers: {speakers}")
    return list(cfg.folds) or speakers


