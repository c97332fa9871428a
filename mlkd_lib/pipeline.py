"""The steps of a study, as the notebooks call them: prepare data, load a fold,
train, evaluate, record. Each step writes into ``<study>/folds/<fold>/<model>/``
and ends with a ``done.json`` marker, which is how a rerun knows what to skip."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .baseline import enhancement_scores
from .checkpoint import finish_step, load_model
from .config import StudyConfig, load_config, make_config, with_absolute_paths, with_overrides
from .data.dataset import AudioCache, all_conditions, condition_audio
from .data.folds import Fold, get_fold, split
from .data.iemocap import build_iemocap_manifest
from .data.manifest import read_manifest
from .data.noise import load_noise_bank, split_noise, write_noise_bank
from .data.synthetic import make_synthetic_corpus
from .device import pick_device
from .evaluate import evaluate_conditions, metrics_from_predictions
from .layout import ModelDir, StudyLayout, mark_done
from .names import CLEAN, TEACHER
from .paths import by_hand_study, newest_study, resolve
from .train import TrainResult, train


def notebook_study(study_dir: str, preset: str) -> Path:
    """The study folder a notebook works in: ``study_dir`` (set by `mlkd study`) against the project
    root, or, when empty, the folder that notebooks run by hand share (``results/<preset>-notebooks``)."""
    return resolve(study_dir) if study_dir else by_hand_study(preset)


def notebook_config(study_dir: str, preset: str, **params) -> StudyConfig:
    """The config a notebook runs with: its study's ``config.json`` when there is one, else the
    preset (written there, so that notebooks run by hand make a study 04 and 05 can open); then the
    notebook's own non-``None`` parameters on top. Paths are absolute (``paths.resolve``)."""
    study = notebook_study(study_dir, preset)
    path = study / "config.json"
    if path.is_file():
        cfg = load_config(path)
    else:
        cfg = with_absolute_paths(make_config(preset))
        cfg.save(path)
    return with_absolute_paths(with_overrides(cfg, **params))


def open_study(study_dir: str = "") -> Path:
    """The study 04 and 05 show: ``study_dir`` against the project root, or the newest study under
    ``results/`` (named on screen, so nobody wonders which one it is)."""
    if study_dir:
        return resolve(study_dir)
    study = newest_study()
    print(f"study: {study}  (the newest under {study.parent}; set study_dir to open another)")
    return study


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
    f = get_fold(manifest, fold, cfg.n_val_speakers)
    parts = split(manifest, f)
    train_noise, test_noise = split_noise(load_noise_bank(cfg.noise_dir, cfg.noise_types), cfg.noise_train_fraction)
    return FoldData(f, parts["train"], parts["val"], parts["test"], test_noise, train_noise)


def fold_names(cfg: StudyConfig) -> list[str]:
    speakers = sorted(read_manifest(cfg.manifest_path)["speaker"].unique())
    unknown = sorted(set(cfg.folds) - set(speakers))
    if unknown:
        raise ValueError(f"folds {unknown} are not speakers of the corpus; speakers: {speakers}")
    return list(cfg.folds) or speakers


def evaluate_and_save(model, name: str, cfg: StudyConfig, data: FoldData, out_dir: str | Path,
                      transform=None, progress: bool = True) -> pd.DataFrame:
    """Evaluate on the fold's test speaker under clean and every (noise, SNR) condition;
    write ``predictions.csv`` and ``metrics.csv``; return the metrics."""
    out_dir = Path(out_dir)
    pred = evaluate_conditions(model, data.test, all_conditions(cfg.noise_types, cfg.snrs), data.noise_bank,
                               cfg.seed, cfg.level, cfg.eval_batch_size, pick_device(cfg), transform,
                               progress, desc=f"evaluate {name}", max_seconds=cfg.max_seconds)
    pred.to_csv(out_dir / "predictions.csv", index=False)
    metrics = metrics_from_predictions(pred, name, data.fold.name)
    metrics.to_csv(out_dir / "metrics.csv", index=False)
    return metrics


def score_enhancement(enhancer, cfg: StudyConfig, data: FoldData, per_emotion: int, progress: bool = True
                      ) -> pd.DataFrame:
    """PESQ-WB and STOI of the noisy and of the NMF-enhanced audio against the clean speech, for
    ``per_emotion`` test utterances of each emotion under every noisy condition (PESQ is slow)."""
    audio = AudioCache(cfg.max_seconds)
    rows = data.test.groupby("emotion", sort=True).head(per_emotion)
    conditions = [c for c in all_conditions(cfg.noise_types, cfg.snrs) if c.snr_db is not None]
    out = []
    for c in tqdm(conditions, desc="PESQ / STOI", disable=not progress, leave=False):
        clean = [audio.get(r.utt_id, r.path) for r in rows.itertuples()]
        noisy = [condition_audio(x, r.utt_id, c.noise, c.snr_db, data.noise_bank, cfg.seed, cfg.level,
                                 audio.level_db(r.utt_id, r.path, cfg.level)) for x, r in zip(clean, rows.itertuples())]
        for r, x, y, z in zip(rows.itertuples(), clean, noisy, map(enhancer.enhance, noisy)):
            before, after = enhancement_scores(x, y), enhancement_scores(x, z)
            out.append(dict(utt_id=r.utt_id, noise=c.noise, snr_db=c.snr_db,
                            **{f"{k}_noisy": v for k, v in before.items()},
                            **{f"{k}_enhanced": v for k, v in after.items()}))
    return pd.DataFrame(out)


def clean_training_audio(data: FoldData, cfg: StudyConfig, limit: int = 200) -> list[np.ndarray]:
    audio = AudioCache(cfg.max_seconds)
    rows = data.train.sample(min(limit, len(data.train)), random_state=cfg.seed)
    return [audio.get(r.utt_id, r.path) for r in rows.itertuples()]


# ------------------------------------------------------------------ one call per notebook

@dataclass
class DataStep:
    """What 01 shows: the config, the manifest and the noise bank, prepared (or reused)."""
    cfg: StudyConfig
    study: StudyLayout
    manifest: pd.DataFrame
    noise_bank: dict

    def finish(self) -> None:
        mark_done(self.study.data_step, utterances=len(self.manifest), speakers=int(self.manifest.speaker.nunique()))


def open_data_step(study_dir: str, preset: str) -> DataStep:
    """01's setup: build or reuse the corpus manifest and noise bank the config names."""
    cfg = notebook_config(study_dir, preset)
    paths = prepare_data(cfg)
    step = DataStep(cfg, StudyLayout(notebook_study(study_dir, preset)), read_manifest(paths["manifest"]),
                    load_noise_bank(paths["noise_dir"], cfg.noise_types))
    print(f"{cfg.corpus} corpus: {len(step.manifest)} utterances, {step.manifest.speaker.nunique()} speakers; "
          f"noise bank: {sorted(step.noise_bank)}")
    return step


@dataclass
class FoldStep:
    """What a fold notebook (02, 02b, 03) works with: its config, the fold's data, the study and
    the folder this step writes (``out``); its methods are the step's moves, in order."""
    cfg: StudyConfig
    study: StudyLayout
    out: ModelDir
    data: FoldData

    @property
    def fold(self) -> str:
        return self.data.fold.name

    def teacher(self):
        """The fold's trained teacher (the best epoch of 02)."""
        return load_model(self.study.fold(self.fold).model(TEACHER).best_ckpt)

    def test_audio(self, index: int, noise: str = CLEAN, snr_db: float | None = None) -> np.ndarray:
        """Test utterance ``index`` as every model hears it under (``noise``, ``snr_db``)."""
        row, audio = self.data.test.iloc[index], AudioCache(self.cfg.max_seconds)
        clean = audio.get(row.utt_id, row.path)
        speech_db = None if noise == CLEAN else audio.level_db(row.utt_id, row.path, self.cfg.level)
        return condition_audio(clean, row.utt_id, noise, snr_db, self.data.noise_bank, self.cfg.seed, self.cfg.level,
                               speech_db)

    def train(self, teacher=None) -> TrainResult:
        """Train this step's model (resuming from its last epoch checkpoint); students need the teacher."""
        return train(self.out.name, self.cfg, self.data.train, self.data.val, self.out.path,
                     noise_bank=self.data.train_noise, teacher=teacher)

    def evaluate(self, model, transform=None) -> pd.DataFrame:
        """Score ``model`` on the fold's test speaker under every condition (``transform``: what the
        model hears instead of the noisy audio, e.g. the baseline's enhancement)."""
        return evaluate_and_save(model, self.out.name, self.cfg, self.data, self.out.path, transform)

    def finish(self, **info) -> None:
        """Mark the step complete (a rerun of the study skips it) and drop what only a resume needed
        (``last.pt``, the teacher cache) unless ``keep_checkpoints``."""
        finish_step(self.out, self.cfg.keep_checkpoints, fold=self.fold, **info)


def open_step(study_dir: str, preset: str, fold: str, model: str, **params) -> FoldStep:
    """A fold notebook's setup in one call: the config (study's, then the notebook's non-``None``
    ``params``), the fold's train / validation / test split and the step's output folder."""
    cfg = notebook_config(study_dir, preset, **params)
    study = StudyLayout(notebook_study(study_dir, preset))
    out = study.fold(fold).model(model)
    out.path.mkdir(parents=True, exist_ok=True)
    step = FoldStep(cfg, study, out, load_fold(cfg, fold))
    sizes = {k: len(getattr(step.data, k)) for k in ("train", "val", "test")}
    print(f"{model}: {step.data.fold}; utterances {sizes}")
    return step


def open_analysis(study_dir: str = "") -> tuple[StudyLayout, StudyConfig]:
    """04's setup: the study (``open_study``) and its config."""
    study = StudyLayout(open_study(study_dir))
    return study, load_config(study.config)
