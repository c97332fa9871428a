"""One flat, typed configuration for a study, and its presets.

The presets differ only in data sources and sizes (DESIGN, "Presets"). Overrides
from notebook parameters or ``--set key=value`` are type-checked against the
defaults, so a string where a float belongs fails loudly.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .data.noise import NOISE_TYPES
from .paths import resolve

# The demo's tiny wav2vec 2.0, pretrained by `mlkd pretrain` on emotion-free speech of voices
# outside the study (provenance.json beside the weights); shipped with the package.
DEMO_ENCODER = Path(__file__).resolve().parent / "assets" / "demo_encoder"


@dataclass
class StudyConfig:
    preset: str = "demo"
    # --- data
    corpus: str = "synthetic"  # "synthetic" or "iemocap"
    data_dir: str = "data/demo"  # generated data (corpus, noise bank) lives here
    iemocap_root: str = ""  # .../IEMOCAP_full_release for corpus="iemocap"
    noisex_dir: str = ""  # NOISEX-92 .wav/.mat files; empty: synthetic noises
    synth_per_class: int = 5
    synth_seed: int = 0
    noise_seconds: float = 30.0
    noise_types: list = field(default_factory=lambda: list(NOISE_TYPES))
    snrs: list = field(default_factory=lambda: [0.0, 5.0, 10.0, 15.0, 20.0])
    level: str = "p56"  # speech level for mixing: "p56" or "rms"
    max_seconds: float = 8.0  # utterances are truncated to this length
    n_val_speakers: int = 1
    folds: list = field(default_factory=list)  # empty: all speakers
    # --- models
    model: str = "tiny"  # "tiny", "micro", "base" (random weights) or a local wav2vec 2.0 folder
    student_layers: int = 6
    mask_time_prob: float = 0.0  # SpecAugment time masking in training (wav2vec2-base's config has 0.05)
    mask_time_length: int = 10
    # --- training (AdamW; paper: batch 8, 200 epochs, T=7, alpha=0.7)
    teacher_epochs: int = 8
    student_epochs: int = 6
    batch_size: int = 16
    lr: float = 1e-3  # encoder learning rate
    head_lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_frac: float = 0.1
    freeze_feature_encoder: bool = False  # teacher's CNN; the student's is always frozen
    temperature: float = 7.0
    alpha: float = 0.7
    beta: float = 1.0
    teacher_cache: str = "memory"  # "memory", "disk" (fp16 memmaps) or "off"
    seed: int = 0
    device: str = "auto"  # "auto", "cpu" or "cuda"
    threads: int = 0  # torch CPU threads; 0: all cores for one job
    amp: bool = True  # mixed precision on GPU
    eval_batch_size: int = 32
    # --- baseline (VAD + NMF)
    vad_aggressiveness: int = 2
    nmf_speech_components: int = 32
    nmf_noise_components: int = 8
    enhancement_per_emotion: int = 1  # test utterances per emotion scored with PESQ / STOI in 02b (PESQ is slow)
    # --- table 3
    bench_utterances: int = 20
    deploy: bool = False  # 04 also exports every fold's MLKD student (ONNX fp32 + int8) and scores it (Table 3);
    # off in the demo, whose 900 s budget it would break (about 5 s a fold): --set deploy=true

    @property
    def manifest_path(self) -> Path:
        return Path(self.data_dir) / ("synthetic" if self.corpus == "synthetic" else "iemocap") / "manifest.csv"

    @property
    def model_path(self) -> Path:
        """``model`` as a folder (for a named random-weight config it names no folder)."""
        return Path(self.model).expanduser()

    @property
    def noise_dir(self) -> Path:
        return Path(self.data_dir) / "noise"

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    def save(self, path: str | Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(self.to_json(), indent=2))


PRESETS: dict[str, dict[str, Any]] = {
    # Synthetic speech, the tiny model pretrained on voices outside the study (15 utterances per
    # speaker x emotion: 60 test utterances a fold): the whole study on 2 CPU cores in < 15 minutes.
    "demo": dict(synth_per_class=15, model=str(DEMO_ENCODER), freeze_feature_encoder=True, lr=3e-4),
    # Seconds, for tests: a smaller model, fewer utterances, two noises and SNRs.
    "micro": dict(preset="micro", data_dir="data/micro", model="micro", student_layers=2,
                  synth_per_class=2, noise_seconds=5.0, noise_types=["babble", "factory"],
                  snrs=[0.0, 20.0], teacher_epochs=1, student_epochs=1, batch_size=8,
                  bench_utterances=2, nmf_speech_components=8, nmf_noise_components=4),
    # The paper: IEMOCAP + NOISEX-92 + wav2vec2-base from a local path, on a GPU.
    "paper": dict(preset="paper", corpus="iemocap", data_dir="data/paper",
                  iemocap_root="data/IEMOCAP_full_release", noisex_dir="data/NOISEX-92",
                  model="data/wav2vec2-base", teacher_epochs=200, student_epochs=200,
                  batch_size=8, lr=1e-5, head_lr=1e-4, freeze_feature_encoder=True,
                  max_seconds=15.0, teacher_cache="disk", bench_utterances=507, deploy=True),
}


PRETRAIN_OBJECTIVES = ("masked", "prosody", "masked+prosody", "contrastive")


@dataclass
class PretrainSettings:
    """`mlkd pretrain`: the demo encoder's pretraining (see pretrain.py)."""
    objective: str = "masked+prosody"
    seed: int = 0
    utterances: int = 2000
    steps: int = 3000
    batch_size: int = 16
    lr: float = 1e-3
    warmup_frac: float = 0.05
    units: int = 64
    mask_prob: float = 0.5
    mask_span: int = 5
    threads: int = 0



def coerce(name: str, value: Any, default: Any) -> Any:
    """``value`` as the type of ``default``; ints pass for floats. Raises naming the key."""
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
    elif isinstance(default, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    elif isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lstrip("-").isdigit():
            return int(value)
    elif isinstance(default, list):
        if isinstance(value, (list, tuple)):
            return list(value)
        if isinstance(value, str):
            items = [v.strip() for v in value.split(",") if v.strip()]
            return [float(v) for v in items] if name == "snrs" else items
    elif isinstance(default, str):
        if isinstance(value, (str, Path)):
            return str(value)
    raise TypeError(f"config {name}={value!r}: expected {type(default).__name__} like the default {default!r}")


def make_config(preset: str = "demo", **overrides: Any) -> StudyConfig:
    """The preset's config with ``overrides`` applied (``None`` values are ignored)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    base = StudyConfig(**PRESETS[preset])
    fields = {f.name for f in dataclasses.fields(StudyConfig)}
    changes = {}
    for key, value in overrides.items():
        if value is None:
            continue
        if key not in fields:
            raise KeyError(f"unknown config key {key!r}; known keys: {', '.join(sorted(fields))}")
        changes[key] = coerce(key, value, getattr(base, key))
    cfg = dataclasses.replace(base, **changes)
    if cfg.level not in ("p56", "rms"):
        raise ValueError(f"level must be 'p56' or 'rms', got {cfg.level!r}")
    if cfg.teacher_cache not in ("memory", "disk", "off"):
        raise ValueError(f"teacher_cache must be 'memory', 'disk' or 'off', got {cfg.teacher_cache!r}")
    if not 0.0 <= cfg.alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {cfg.alpha}")
    if cfg.temperature <= 0:
        raise ValueError(f"temperature must be positive, got {cfg.temperature}")
    return cfg


def parse_set(pairs: list[str]) -> dict[str, str]:
    """``["key=value", ...]`` from the command line."""
    out = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise ValueError(f"--set wants key=value, got {pair!r}")
        key, value = pair.split("=", 1)
        out[key.strip()] = value.strip()
    return out


def with_overrides(cfg: StudyConfig, **overrides: Any) -> StudyConfig:
    """``cfg`` with type-checked ``overrides`` (``None`` values ignored)."""
    merged = {**cfg.to_json(), **{k: v for k, v in overrides.items() if v is not None}}
    return make_config(cfg.preset, **{k: v for k, v in merged.items() if k != "preset"})


def load_config(path: str | Path) -> StudyConfig:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"study config not found: {path} (is this a study folder made by `mlkd study`?)")
    data = json.loads(path.read_text())
    return with_overrides(make_config(data.get("preset", "demo")), **data)


def with_absolute_paths(cfg: StudyConfig) -> StudyConfig:
    """``cfg`` with its folders taken against the project root (``paths.resolve``), so a notebook's
    working directory does not move them. ``model`` is a folder only if one exists there (else a
    named architecture such as "tiny", or an id in the Hugging Face cache)."""
    changes = {k: str(resolve(getattr(cfg, k))) for k in ("data_dir", "iemocap_root", "noisex_dir") if getattr(cfg, k)}
    if resolve(cfg.model).exists():
        changes["model"] = str(resolve(cfg.model))
    return dataclasses.replace(cfg, **changes)
