"""One flat, typed configuration for a study, and its presets.

A preset names the data sources and sizes, the model, and the training settings that go with
that model (the demo's tiny encoder and wav2vec2-base want different learning rates; see
``docs/design.md``). Overrides from notebook parameters or ``--set key=value`` are type-checked
against the defaults, so a string where a float belongs fails loudly.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_type_hints

from .data.conditions.families import chosen_by_conditions
from .keys import coerce, fraction, key, non_negative, positive, type_name, validate
from .names import EMOTIONS, LABEL_CODES, NOISE_TYPES, label_merges
from .paths import absolute, resolve

# The demo's tiny wav2vec 2.0, pretrained by `mlkd pretrain` on emotion-free speech of voices
# outside the study (provenance.json beside the weights); shipped with the package.
DEMO_ENCODER = Path(__file__).resolve().parent / "assets" / "demo_encoder"


@dataclass
class StudyConfig:
    """A study's every setting. Types are enforced (``Literal`` lists the allowed values) and
    each key says what it is for; ``PRESETS`` below says what each preset changes."""
    preset: str = key("demo", "the preset these settings started from (demo, micro or paper)")
    # --- data
    corpus: Literal["synthetic", "iemocap", "manifest"] = key(
        "synthetic", "the speech corpus: the demo's synthetic one, IEMOCAP (iemocap_root), or any corpus's manifest "
        "(manifest: a CSV / JSON Lines file with path, emotion, speaker; `mlkd data NAME` writes one)")
    data_dir: str = key("data/demo", "where generated data (manifest, synthetic corpus, noise bank) lives")
    iemocap_root: str = key("", "the IEMOCAP_full_release folder, for corpus=iemocap")
    manifest: str = key("", "the corpus's manifest file, for corpus=manifest (paths relative to its folder)")
    emotions: list[str] = key(list(EMOTIONS), "the classes, in logit order (three-letter codes: "
                              + " ".join(LABEL_CODES) + "); utterances of other labels are left out",
                              lambda v: len(v) >= 2 and len(set(v)) == len(v) and set(v) <= set(LABEL_CODES),
                              "must name two or more distinct codes of " + ", ".join(LABEL_CODES))
    label_map: list[str] = key([], "labels merged before the classes are picked, as RAW:CODE (IEMOCAP's recipe "
                               "does exc:hap itself)", lambda v: all(_is_merge(m) for m in v),
                               "each must read RAW:CODE with CODE a three-letter code")
    protocol: Literal["loso", "kfold", "split", "folds"] = key(
        "loso", "folds: leave-one-speaker-out (a fold a speaker), speaker-independent kfold (n_folds groups of "
        "speakers, balanced by utterances), split (the manifest's split column: train / development / test) or "
        "folds (the manifest's fold column, e.g. EmoBox's official folds: a fold a value, tested on its rows)")
    n_folds: int = key(5, "folds of protocol=kfold", lambda v: v >= 2, "must be at least 2")
    noise_dir: str = key("", "a noise collection: a folder of audio files (type = file stem; NOISEX-92 .wav/.mat), "
                         "a folder of folders (type = subfolder, e.g. MUSAN, DEMAND) or a CSV of path,type; "
                         "empty: noisex_dir, else the synthetic noises")
    noisex_dir: str = key("", "folder of NOISEX-92 .wav/.mat files (the same as noise_dir)")
    synth_per_class: int = key(5, "synthetic corpus: utterances per speaker and emotion", *positive)
    synth_seed: int = key(0, "seed of the synthetic corpus and noises")
    noise_seconds: float = key(30.0, "length of each synthetic noise recording (s)", *positive)
    noise_types: list[str] = key(list(NOISE_TYPES), "noise types the students train on and the test conditions "
                                 "use: names the noise collection has (the synthetic ones: NOISEX-92's five)",
                                 bool, "must name at least one noise type")
    snrs: list[float] = key([0.0, 5.0, 10.0, 15.0, 20.0], "SNRs (dB) of training noise and the test conditions",
                            bool, "must name at least one SNR")
    # --- test-only conditions: scored for every trained model, never trained on (data/conditions/)
    conditions: list[str] = key(list(chosen_by_conditions()), "test-only condition families beyond the training "
                                "noise (data/conditions/): " + ", ".join(chosen_by_conditions()),
                                lambda v: set(v) <= set(chosen_by_conditions()),
                                "must be some of " + ", ".join(chosen_by_conditions()))
    unseen_noise_types: list[str] = key([], "noise types no model trains on, tested at the study's SNRs "
                                            "(unseen_noise); empty: every type of the noise collection that "
                                            "noise_types does not name (the synthetic noises': music, traffic), "
                                            "none left: no unseen noise")
    test_manifests: list[str] = key([], "other corpora's manifests (CSV / JSON Lines tables as for manifest=, e.g. "
                                    "written by `mlkd data NAME`): every trained model is also scored on their "
                                    "utterances of the study's classes, never trained on (test family corpus)",
                                    lambda v: len({Path(p).stem for p in v}) == len(v),
                                    "must name files with different stems (a stem names the corpus)")
    test_corpus_noise: bool = key(True, "score the other corpora (test_manifests) under the trained noise types at the "
                                        "study's SNRs too; false: their clean speech only (large corpora on a CPU)")
    rir_dir: str = key("", "a folder of real room impulse responses (wav) for reverb; empty: simulated shoebox rooms")
    rir_rooms: int = key(8, "simulated rooms per RT60 (each test utterance hears one, drawn by its seed)", *positive)
    reverb_noise_snr: float = key(10.0, "SNR (dB) of the far-field condition: reverberant speech plus the study's "
                                        "reference noise (factory where the study has it)")
    level: Literal["p56", "rms"] = key("p56", "speech level for mixing: ITU-T P.56 active level or plain RMS")
    noise_train_fraction: float = key(2 / 3, "share of each noise recording the students train on (its start); "
                                      "the test conditions draw from the rest. 1: no split",
                                      lambda v: 0 < v <= 1, "must lie in (0, 1]")
    max_seconds: float = key(8.0, "utterances are cut to this length (s)", *positive)
    validation: Literal["fraction", "speaker"] = key("fraction", "model selection reads a val_fraction of every "
                                                     "training speaker × emotion (fraction) or n_val_speakers whole "
                                                     "training speakers (speaker: two folds of a session then train "
                                                     "on the same speakers)")
    val_fraction: float = key(0.2, "share of each training speaker × emotion held out for validation",
                              lambda v: 0 < v <= 0.5, "must lie in (0, 0.5]")
    n_val_speakers: int = key(1, "training speakers held out whole for validation (validation=speaker)", *positive)
    folds: list[str] = key([], "test speakers to run (one fold each); empty: every speaker")
    fold_utterances: int = key(0, "at most this many utterances of each class in each of a fold's training, "
                                  "validation and test parts and of each test corpus, drawn by seed (a trial's "
                                  "size: mlkd study --trial); 0: all", *non_negative)
    # --- models
    model: str = key("tiny", "tiny, micro, base (random weights) or a local encoder folder (wav2vec 2.0, HuBERT, "
                           "WavLM or data2vec-audio)")
    student_layers: int = key(6, "transformer layers of the student", *positive)
    sup_init: Literal["teacher", "pretrained"] = key("teacher", "where the MLKD student's layers start: the teacher's "
                                                     "even layers and head (paper, Sec. 2.1.2) or the pretrained "
                                                     "encoder's even layers with a fresh head")
    unsup_init: Literal["teacher", "pretrained"] = key("pretrained", "where the CE-only student starts: the pretrained "
                                                       "encoder (it owes the teacher nothing: 'trained independently', "
                                                       "Sec. 3.3) or the teacher")
    control_arm: bool = key(True, "also train the CE-only student from the teacher's weights, the control that "
                                  "tells the effect of the initialisation from that of the loss")
    mask_time_prob: float = key(0.0, "SpecAugment time masking while training (wav2vec2-base's own config: 0.05)",
                                *fraction)
    mask_time_length: int = key(10, "frames per SpecAugment time mask", *positive)
    # --- training (AdamW; paper: batch 8, 200 epochs, T=7, alpha=0.7)
    teacher_epochs: int = key(8, "teacher training epochs", *positive)
    student_epochs: int = key(6, "student training epochs", *positive)
    batch_size: int = key(16, "training batch size", *positive)
    lr: float = key(1e-3, "the teacher's encoder learning rate (AdamW)", *positive)
    student_lr: float = key(1e-3, "the students' encoder learning rate (AdamW)", *positive)
    head_lr: float = key(1e-3, "learning rate of the classification head", *positive)
    weight_decay: float = key(0.01, "AdamW weight decay", *non_negative)
    warmup_frac: float = key(0.1, "share of steps with linear learning-rate warm-up", *fraction)
    freeze_feature_encoder: bool = key(False, "freeze the teacher's CNN (the student's is always frozen)")
    temperature: float = key(7.0, "distillation temperature T", *positive)
    alpha: float = key(0.7, "weight of the teacher terms: L = α(L_KD + β·L_ML) + (1 − α)L_CE", *fraction)
    beta: float = key(1.0, "weight of the layer-wise term L_ML within the teacher terms", *non_negative)
    kd_t_squared: bool = key(True, "multiply L_KD by T² (Hinton's scaling, which keeps its gradient's size apart from "
                                   "T; the paper's Eq. 2-4 do not show it)")
    selection: Literal["best", "last"] = key("best", "the epoch a training keeps: best validation UA (ties to the "
                                                     "later epoch) or the last")
    teacher_cache: Literal["memory", "disk", "off"] = key("memory", "teacher targets kept in memory, on disk "
                                                          "(fp16 memmaps) or recomputed every batch")
    seed: int = key(0, "seed of training, noise draws and test conditions")
    device: Literal["auto", "cpu", "cuda"] = key("auto", "where models train and are evaluated")
    threads: int = key(0, "torch CPU threads; 0: every core for one job (OMP_NUM_THREADS where it is set)",
                       *non_negative)
    amp: bool = key(True, "bf16 mixed precision on a GPU")
    eval_batch_size: int = key(16, "evaluation batch size (group-norm models, which see no attention mask, are "
                                   "evaluated in batches of equal length only, so the batch never changes a result)",
                               *positive)
    loader_workers: int = key(-1, "DataLoader worker processes; -1: 4 on a GPU, 0 on the CPU",
                              lambda v: v >= -1, "must be ≥ -1")
    profile_every: int = key(50, "on a GPU, every N-th training step is timed phase by phase (history.csv: data_s, "
                                 "forward_s, ...), the device synchronised only then; on the CPU every step is",
                             *positive)
    keep_checkpoints: bool = key(False, "keep last.pt and the teacher cache after a step is done (they are "
                                        "dropped to bound disk use; the best checkpoint always stays)")
    keep_test_audio: bool = key(True, "keep a fold's test audio under the signal conditions while its steps run, "
                                      "made by the first and read by the rest (data/kept_audio.py)")
    share_cnn_features: bool = key(False, "share a frozen CNN's outputs between a fold's models while its steps run: "
                                          "computed by the first, read by the rest (method/cnn_features.py; disk "
                                          "grows with the CNN's channels: on for the small demo encoder)")
    # --- baseline (VAD + NMF)
    vad_aggressiveness: int = key(2, "WebRTC VAD aggressiveness, 0-3", lambda v: 0 <= v <= 3, "must be 0, 1, 2 or 3")
    nmf_speech_components: int = key(32, "NMF speech basis size (learned on clean training speech)", *positive)
    nmf_noise_components: int = key(8, "NMF noise basis size (learned on the VAD's non-speech frames)", *positive)
    enhancement_per_emotion: int = key(1, "test utterances per emotion scored with PESQ / STOI in 02b (PESQ is slow)",
                                       *non_negative)
    enhancement_snrs: list[float] = key([0.0, 10.0, 20.0], "the SNRs (of snrs) at which 02b scores PESQ / STOI; "
                                        "empty: all of them", lambda v: True, "")
    representation_utterances: int = key(0, "test utterances of a fold whose layer states are compared with the "
                                             "teacher's clean ones (representation.csv); 0: all", *non_negative)
    # --- calibration (analysis/calibration.py)
    min_confidence: float = key(0.5, "the listening page marks a model's answer uncertain when its top "
                                     "(temperature-scaled) probability is below this", *fraction)
    # --- table 3
    bench_utterances: int = key(20, "test utterances timed for Table 3", *positive)
    deploy: bool = key(False, "04 also exports every fold's MLKD student (ONNX fp32 + int8) and scores it (about 5 s "
                              "a fold on the demo's encoder; off there, to keep the demo within its 15 minutes)")

    @property
    def manifest_path(self) -> Path:
        """The manifest every step reads: made by the corpus's recipe, or the user's manifest checked and
        written whole (every column filled) under ``data_dir``."""
        return Path(self.data_dir) / self.corpus / "manifest.csv"

    @property
    def noise_source(self) -> str:
        """The noise collection the bank is made from ("": the synthetic noises)."""
        return self.noise_dir or self.noisex_dir

    @property
    def model_path(self) -> Path:
        """``model`` as a folder (for a named random-weight config it names no folder)."""
        return Path(self.model).expanduser()

    @property
    def noise_bank_dir(self) -> Path:
        """The study's noise bank: the collection's types as the steps read them."""
        return Path(self.data_dir) / "noise"

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    def save(self, path: str | Path) -> None:
        """Written whole or not at all: another step may be reading it."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2))
        os.replace(tmp, path)


PRESETS: dict[str, dict[str, Any]] = {
    # Synthetic speech, the tiny model pretrained on voices outside the study (12 utterances per
    # speaker x emotion: 48 test utterances a fold): the whole study on 2 CPU cores in < 15 minutes.
    # lr and student_lr were chosen on validation UA (docs/design.md, "The demo's training settings").
    "demo": dict(synth_per_class=12, model=str(DEMO_ENCODER), freeze_feature_encoder=True, lr=3e-4,
                 share_cnn_features=True),
    # Seconds, for tests: a smaller model, fewer utterances, two noises and SNRs.
    "micro": dict(preset="micro", data_dir="data/micro", model="micro", student_layers=2,
                  synth_per_class=2, noise_seconds=5.0, noise_types=["babble", "factory"],
                  snrs=[0.0, 20.0], teacher_epochs=1, student_epochs=1, batch_size=8,
                  bench_utterances=2, nmf_speech_components=8, nmf_noise_components=4,
                  rir_rooms=2, share_cnn_features=True, enhancement_snrs=[0.0]),
    # The paper: IEMOCAP + NOISEX-92 + wav2vec2-base from a local path, on a GPU.
    "paper": dict(preset="paper", corpus="iemocap", data_dir="data/paper",
                  iemocap_root="data/IEMOCAP_full_release", noisex_dir="data/NOISEX-92",
                  model="data/wav2vec2-base", teacher_epochs=200, student_epochs=200,
                  batch_size=8, lr=1e-5, student_lr=1e-5, head_lr=1e-4, freeze_feature_encoder=True,
                  max_seconds=15.0, teacher_cache="disk", bench_utterances=507, deploy=True, eval_batch_size=32,
                  # SpecAugment off, stated rather than inherited from the checkpoint's config (0.05)
                  mask_time_prob=0.0, representation_utterances=200, enhancement_snrs=[]),
}


def trial_settings(cfg: StudyConfig) -> dict[str, Any]:
    """``mlkd study --trial``: the user's own setup — corpus, noise, classes, encoder — at a size that runs in
    minutes on a CPU (a few utterances of each class in one fold, one epoch, short cuts, the lowest and highest SNR),
    to see the whole pipeline on their data before the study. Applied over the setup file; its figures are no
    result (the study's README says so)."""
    snrs = sorted(cfg.snrs)
    return dict(fold_utterances=2, teacher_epochs=1, student_epochs=1, max_seconds=2.0,
                snrs=sorted({snrs[0], snrs[-1]}), enhancement_snrs=[snrs[0]], enhancement_per_emotion=1,
                bench_utterances=2, representation_utterances=8)


def trial_note(cfg: StudyConfig) -> str:
    """What a trial is, said before it starts and in its README."""
    return (f"trial: the setup at a trial's size — fold {', '.join(cfg.folds)}, at most {cfg.fold_utterances} "
            f"utterances of each class in its training, validation and test parts, "
            f"{cfg.teacher_epochs} epoch{'s' * (cfg.teacher_epochs != 1)}, cut at "
            f"{cfg.max_seconds:g} s, SNRs {', '.join(f'{s:g}' for s in cfg.snrs)} dB: it shows that the whole "
            f"pipeline runs on this corpus, noise and encoder; its figures are no result")


def _is_merge(text: str) -> bool:
    ((raw, code),) = label_merges([text]).items()
    return bool(raw) and code in LABEL_CODES


def key_types() -> dict[str, Any]:
    return get_type_hints(StudyConfig)


def make_config(preset: str = "demo", **overrides: Any) -> StudyConfig:
    """The preset's config with ``overrides`` applied (``None`` values are ignored)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    types = key_types()
    changes = {}
    for name, value in {**PRESETS[preset], **overrides}.items():
        if value is None:
            continue
        if name not in types:
            raise KeyError(f"unknown config key {name!r}; `mlkd study --list-keys` lists them")
        changes[name] = coerce(name, value, types[name])
    return validate(StudyConfig(**changes))


def describe_keys(preset: str = "demo") -> str:
    """``mlkd study --list-keys``: every key with its type, the preset's value and what it is for."""
    cfg, types = make_config(preset), key_types()
    rows = [(f.name, type_name(types[f.name]), json.dumps(getattr(cfg, f.name)), f.metadata["help"])
            for f in dataclasses.fields(StudyConfig)]
    width = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [f"config keys (values of the {preset!r} preset); change one with --set KEY=VALUE"]
    lines += [f"  {n:<{width[0]}}  {t:<{width[1]}}  {v:<{width[2]}}  {h}" for n, t, v, h in rows]
    return "\n".join(lines)


def with_overrides(cfg: StudyConfig, **overrides: Any) -> StudyConfig:
    """``cfg`` with type-checked ``overrides`` (``None`` values ignored)."""
    merged = {**cfg.to_json(), **{k: v for k, v in overrides.items() if v is not None}}
    return make_config(cfg.preset, **{k: v for k, v in merged.items() if k != "preset"})


def read_setup(path: str | Path) -> dict[str, Any]:
    """A setup file (``mlkd study --config FILE``, a notebook's ``config_file``): YAML or JSON, a mapping of
    study keys to values, so that a corpus + noise + encoder setup can be shared and versioned. Its keys are
    checked like ``--set`` ones; ``preset`` names the preset they start from; its relative paths are taken
    against the file's own folder, and its ``data_dir`` is ``data/<file stem>`` there unless it names one."""
    path = resolve(path)
    if not path.is_file():
        raise FileNotFoundError(f"setup file not found: {path}")
    import yaml  # a JSON file is YAML too
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ValueError(f"setup file {path}: not readable as YAML or JSON ({str(err).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ValueError(f"setup file {path}: expected a mapping of study keys to values, got {type(data).__name__}")
    unknown = sorted(set(data) - set(key_types()))
    if unknown:
        raise KeyError(f"setup file {path}: unknown config keys {unknown}; `mlkd study --list-keys` lists them")
    # a setup owns its data: by default in data/<its name> beside it, never a folder another setup shares
    return {"data_dir": str(path.parent / "data" / path.stem), **absolute(data, path.parent)}


def study_config(study: str | Path) -> StudyConfig:
    """A study's settings, for a reader of its data (an export, Table 3, the frontier, the listening page): refused
    (``ownership.DataMismatch``, one line naming both) where its data folder no longer holds the data the study was
    made from."""
    from .data.prepare import check_study_data
    cfg = load_config(Path(study) / "config.json")
    check_study_data(study, cfg)
    return cfg


def load_config(path: str | Path) -> StudyConfig:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"study config not found: {path} (is this a study folder made by `mlkd study`?)")
    data = json.loads(path.read_text())
    return with_overrides(make_config(data.get("preset", "demo")), **data)
