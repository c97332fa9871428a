"""What the notebooks call: one ``open_*`` per notebook sets up its step (config, the fold's data,
the folder it writes), and the step object's methods are the notebook's moves, in order. Each step
writes into ``<study>/folds/<fold>/<model>/`` (or the study folder) and ends with a ``done.json``
marker, which is how a rerun knows what to skip."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..arms import study_arms, trained
from ..config import (
    StudyConfig,
    load_config,
    make_config,
    read_setup,
    with_overrides,
)
from ..data.conditions import reverb, unseen_noise
from ..data.conditions.families import Condition, corpus_conditions, family_conditions, heard, trained_conditions
from ..data.dataset import AudioCache
from ..data.kept_audio import KeptAudio
from ..data.noise.bank import load_noise_bank
from ..data.prepare import (
    FoldData,
    check_study_data,
    data_identity,
    follow_data,
    load_fold,
    prepare_data,
    study_manifest,
)
from ..device import pick_device
from ..layout import FolderLock, ModelDir, StudyLayout, is_done, mark_done
from ..method.checkpoint import finish_step, last_epoch_model, load_model
from ..method.cnn_features import CnnFeatures
from ..method.evaluate import evaluate_conditions, metrics_from_predictions
from ..method.models import default_layer_map
from ..method.representation import LayerDistance
from ..method.teacher_cache import TeacherTargets
from ..method.train import TrainResult, first_batch_losses, train
from ..names import BASELINE, CLEAN, TEACHER
from ..paths import by_hand_study, newest_study, resolve, with_absolute_paths

STUDY_ENV = "MLKD_STUDY"  # `mlkd listen` names the study the served notebook opens
STEP_LOCK_WAIT_S = 120.0


def notebook_study(study_dir: str, preset: str) -> Path:
    """The study folder a notebook works in: ``study_dir`` (set by `mlkd study`) against the project
    root, or, when empty, the folder that notebooks run by hand share (``results/<preset>-notebooks``)."""
    return resolve(study_dir) if study_dir else by_hand_study(preset)


def notebook_config(study_dir: str, preset: str, config_file: str = "", **params) -> StudyConfig:
    """The config a notebook runs with: its study's ``config.json`` when there is one, else the
    preset (the setup file's ``preset`` where it names one); then the setup file's keys (``config_file``,
    YAML or JSON, as ``mlkd study --config``) and the notebook's own non-``None`` parameters on top. What it
    runs with is what ``config.json`` says: a notebook run by hand with other values writes them there, so
    that 04 and 05 (and a later `mlkd study` on the folder) see the settings the models were trained with.
    Paths are absolute (``paths.resolve``)."""
    setup = read_setup(config_file) if config_file else {}
    preset = setup.pop("preset", preset)
    path = notebook_study(study_dir, preset) / "config.json"
    saved = load_config(path) if path.is_file() else None
    base = saved or with_absolute_paths(make_config(preset))
    cfg = with_overrides(base, **setup, **params)
    if saved is None:
        cfg = follow_data(with_absolute_paths(cfg))
    if saved is None or cfg.to_json() != base.to_json():
        cfg.save(path)
    return with_absolute_paths(cfg)


def open_study(study_dir: str = "") -> Path:
    """The study 04 and 05 show: ``study_dir`` (else ``$MLKD_STUDY``) against the project root, or the
    newest study under ``results/`` (named on screen, so nobody wonders which one it is)."""
    study_dir = study_dir or os.environ.get(STUDY_ENV, "")
    if study_dir:
        return resolve(study_dir)
    study = newest_study()
    print(f"study: {study}  (the newest under {study.parent}; set study_dir to open another)")
    return study


def looked_inside(extra: list) -> list:
    """The test-only conditions whose layer states are compared too: the first unseen noise at its lowest SNR
    and the middle reverberation (more would cost an evaluation pass with hidden states each)."""
    unseen = [c for c in extra if c.family == unseen_noise.FAMILY]
    rooms = [c for c in extra if c.family == reverb.FAMILY]
    return ([min(unseen, key=lambda c: c.snr_db)] if unseen else []) + ([rooms[len(rooms) // 2]] if rooms else [])


def evaluate_and_save(model, name: str, cfg: StudyConfig, data: FoldData, out_dir: str | Path,
                      transform=None, progress: bool = True, last=None, distance=None,
                      kept: KeptAudio | None = None, features: CnnFeatures | None = None) -> pd.DataFrame:
    """Evaluate on the fold's test speakers under clean, every (noise, SNR) condition and every test-only one
    (``data/conditions/``), and on every other corpus the study scores (``test_manifests``: family corpus); write
    ``predictions.csv`` and ``metrics.csv``; return the metrics. ``last``: the
    last epoch's model when selection kept another, scored on the trained conditions into ``metrics_last.csv``
    (the selection diagnostic); ``distance``: a ``LayerDistance`` for ``representation.csv``; ``kept``: the fold's
    test audio made by an earlier step (``data/kept_audio.py``); ``features``: its models' shared frozen-CNN outputs
    (``method/cnn_features.py``)."""
    out_dir = Path(out_dir)
    extra = family_conditions(cfg, sorted(data.rirs) or None)
    inside = looked_inside(extra) if distance is not None else []
    audio = AudioCache(cfg.max_seconds)  # read and levelled once for the three passes

    def run(models, conditions, dist, test=data.test, heard=audio):
        return evaluate_conditions(models, test, conditions, data.noise_bank, cfg.seed, cfg.level,
                                   cfg.eval_batch_size, pick_device(cfg), transform, progress, desc=f"evaluate {name}",
                                   max_seconds=cfg.max_seconds, distance=dist, rirs=data.rirs, kept=kept,
                                   audio=heard, features=features)

    preds = run({"selected": model} | ({"last": last} if last is not None else {}),
                trained_conditions(cfg.noise_types, cfg.snrs), distance)
    parts = [preds["selected"]]
    if inside:
        parts.append(run({"selected": model}, inside, distance)["selected"])
    rest = [c for c in extra if c not in inside]
    if rest:
        parts.append(run({"selected": model}, rest, None)["selected"])
    for corpus, utterances in data.test_corpora.items():  # its own audio cache: ids may repeat across corpora
        parts.append(run({"selected": model}, corpus_conditions(cfg, corpus), None, utterances,
                         AudioCache(cfg.max_seconds))["selected"])
    preds["selected"] = pd.concat(parts, ignore_index=True)
    preds["selected"].to_csv(out_dir / "predictions.csv", index=False)
    metrics = metrics_from_predictions(preds["selected"], name, data.fold.name)
    metrics.to_csv(out_dir / "metrics.csv", index=False)
    if last is not None:
        metrics_from_predictions(preds["last"], name, data.fold.name).to_csv(out_dir / "metrics_last.csv", index=False)
    if distance is not None:
        pd.DataFrame([dict(model=name, fold=data.fold.name, **r) for r in distance.rows()]).to_csv(
            out_dir / "representation.csv", index=False)
    return metrics


# ------------------------------------------------------------------ 01

@dataclass
class DataStep:
    """What 01 shows: the config, the manifest and the noise bank, prepared (or reused)."""
    cfg: StudyConfig
    study: StudyLayout
    manifest: pd.DataFrame
    noise_bank: dict

    def finish(self) -> None:
        """Mark the step complete, recording the data the study is made from (every reader checks its folder still
        holds it: ``prepare.check_study_data``)."""
        mark_done(self.study.data_step, utterances=len(self.manifest), speakers=int(self.manifest.speaker.nunique()),
                  data=data_identity(self.cfg))


def open_data_step(study_dir: str, preset: str, config_file: str = "") -> DataStep:
    """01's setup: build or reuse the corpus manifest and noise bank the config names."""
    cfg = notebook_config(study_dir, preset, config_file)
    study = notebook_study(study_dir, cfg.preset)
    paths = prepare_data(cfg, study=study)
    step = DataStep(cfg, StudyLayout(study), study_manifest(cfg),
                    load_noise_bank(paths["noise_dir"], cfg.noise_types))
    print(f"{cfg.corpus} corpus: {len(step.manifest)} utterances, {step.manifest.speaker.nunique()} speakers; "
          f"noise bank: {sorted(step.noise_bank)}")
    return step


# ------------------------------------------------------------------ 02, 02b, 03

@dataclass
class FoldStep:
    """What a fold notebook (02, 02b, 03) works with: its config, the fold's data, the study and
    the folder this step writes (``out``); its methods are the step's moves, in order."""
    cfg: StudyConfig
    study: StudyLayout
    out: ModelDir
    data: FoldData
    lock: FolderLock | None = None  # held until finish(): one process per step folder

    @property
    def fold(self) -> str:
        return self.data.fold.name

    def teacher(self):
        """The fold's trained teacher (the best epoch of 02)."""
        return load_model(self.study.fold(self.fold).model(TEACHER).best_ckpt)

    def best_model(self):
        """This step's own trained model: the epoch that model selection kept."""
        return load_model(self.out.best_ckpt)

    def test_audio(self, index: int, noise: str = CLEAN, snr_db: float | None = None) -> np.ndarray:
        """Test utterance ``index`` as every model hears it under (``noise``, ``snr_db``)."""
        row, audio = self.data.test.iloc[index], AudioCache(self.cfg.max_seconds)
        clean = audio.get(row.utt_id, row.path)
        speech_db = None if noise == CLEAN else audio.level_db(row.utt_id, row.path, self.cfg.level)
        return heard(clean, row.utt_id, Condition(noise, snr_db), self.data.noise_bank, None, self.cfg.seed,
                     self.cfg.level, speech_db)

    def train(self, teacher=None) -> TrainResult:
        """Train this step's model (resuming from its last epoch checkpoint); students need the teacher."""
        return train(self.out.name, self.cfg, self.data.train, self.data.val, self.out.path,
                     noise_bank=self.data.train_noise, teacher=teacher,
                     features=None if self.out.name == TEACHER else self.cnn_features())  # the arms' batches agree

    def layer_map(self, teacher) -> dict[int, int]:
        """Student layer k ← teacher layer: where each student layer starts and what L_ML pairs it with."""
        return default_layer_map(self.cfg.student_layers, teacher.num_layers)

    def first_batch_losses(self, teacher) -> dict[str, float]:
        """CE, KD and ML of the untrained student on its first training batch (nothing is trained)."""
        return first_batch_losses(self.out.name, self.cfg, self.data.train, self.data.train_noise, teacher)

    def evaluate(self, model, transform=None) -> pd.DataFrame:
        """Score ``model`` on the fold's test speaker under every condition (``transform``: what the
        model hears instead of the noisy audio, e.g. the baseline's enhancement). A model this step
        trained is also scored at its last epoch, when selection kept an earlier one, and its layer
        states are compared with the teacher's on clean speech (``method/representation.py``)."""
        kept, features = self.kept_audio(), None if transform is not None else self.cnn_features()
        if transform is not None or self.out.name not in trained():
            return evaluate_and_save(model, self.out.name, self.cfg, self.data, self.out.path, transform, kept=kept,
                                     features=features)
        last = last_epoch_model(self.out, model)
        if last is not None:
            epochs = {"selected_epoch": model.trained_epoch, "last_epoch": last.trained_epoch}
            (self.out.path / "selection.json").write_text(json.dumps(epochs))
            if last.trained_epoch == model.trained_epoch:
                last = None  # the selected epoch is the last one
        return evaluate_and_save(model, self.out.name, self.cfg, self.data, self.out.path, last=last,
                                 distance=self.layer_distance(model), kept=kept, features=features)

    def kept_audio(self) -> KeptAudio | None:
        """Where this fold's test audio under the signal conditions is kept between its steps (None: not kept)."""
        if not self.cfg.keep_test_audio:
            return None
        return KeptAudio(self.study.fold(self.fold).test_audio, self.cfg.seed, self.cfg.level, self.cfg.max_seconds)

    def cnn_features(self) -> CnnFeatures | None:
        """Where the fold's models share what a frozen CNN computes of the same input (None: not shared)."""
        return CnnFeatures(self.study.fold(self.fold).cnn_features) if self.cfg.share_cnn_features else None

    def layer_distance(self, model) -> LayerDistance:
        """The teacher's clean layer states of the test utterances, to which ``model``'s are compared:
        teacher layer 2k for student layer k; for the teacher itself, its own layers on clean speech."""
        teacher = model if self.out.name == TEACHER else self.teacher()
        layer_map = self.layer_map(teacher)
        if self.out.name == TEACHER:
            layer_map = {t: t for t in layer_map.values()}
        test, n = self.data.test, self.cfg.representation_utterances
        rows = test if not n or n >= len(test) else test.sample(n, random_state=self.cfg.seed)
        reference = TeacherTargets(teacher, list(layer_map.values()), pick_device(self.cfg), "memory",
                                   amp=self.cfg.amp)
        audio = AudioCache(self.cfg.max_seconds)
        reference.fill(((r.utt_id, audio.get(r.utt_id, r.path)) for r in rows.itertuples()), progress=False)
        return LayerDistance(reference, layer_map, list(rows.utt_id))

    def finish(self, **info) -> None:
        """Mark the step complete (a rerun of the study skips it) and drop what only a resume needed
        (``last.pt``, the teacher cache) unless ``keep_checkpoints``."""
        finish_step(self.out, self.cfg.keep_checkpoints, fold=self.fold, **info)
        fold = self.study.fold(self.fold)
        if all(is_done(fold.model(m).path) for m in (TEACHER, BASELINE, *study_arms(self.cfg))):
            fold.drop_shared()
        if self.lock is not None:
            self.lock.release()


def open_step(study_dir: str, preset: str, fold: str, model: str, config_file: str = "", **params) -> FoldStep:
    """A fold notebook's setup in one call: the config (study's or the setup file's, then the notebook's
    non-``None`` ``params``), the fold's train / validation / test split and the step's output folder."""
    cfg = notebook_config(study_dir, preset, config_file, **params)
    study = StudyLayout(notebook_study(study_dir, cfg.preset))
    check_study_data(study.dir, cfg)
    out = study.fold(fold).model(model)
    # a step retried after its worker died waits here until the old kernel (which exits within a
    # second of its parent) has let go of the folder
    lock = FolderLock(out.path).acquire(wait_s=STEP_LOCK_WAIT_S)
    step = FoldStep(cfg, study, out, load_fold(cfg, fold), lock)
    sizes = {k: len(getattr(step.data, k)) for k in ("train", "val", "test")}
    print(f"{model}: {step.data.fold}; utterances {sizes}")
    return step
