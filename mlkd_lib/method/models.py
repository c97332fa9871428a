"""Teacher and distil-student emotion classifiers on a self-supervised speech encoder.

Both are a Hugging Face encoder with a CNN front-end (wav2vec 2.0, HuBERT, WavLM or data2vec-audio:
the family is the ``model_type`` of its config) followed by masked mean pooling over time of the last
hidden layer and one fully connected layer (docs/design.md: the utterance embedding). The student is
the same class with fewer transformer layers, initialised from the teacher's even layers (paper,
Sec. 2.1.2). The classes and their logit order (``labels``) belong to the model and travel with it.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn
from transformers import (
    Data2VecAudioForSequenceClassification,
    Data2VecAudioModel,
    HubertForSequenceClassification,
    HubertModel,
    PretrainedConfig,
    Wav2Vec2Config,
    Wav2Vec2ForSequenceClassification,
    Wav2Vec2Model,
    WavLMForSequenceClassification,
    WavLMModel,
)

from ..names import EMOTIONS, NAMED_MODELS


class Family(NamedTuple):
    """An encoder family: the bare encoder the study trains and the audio-classification class the
    Hugging Face export writes (its encoder attribute is the class's ``base_model_prefix``)."""
    model: type
    classifier: type


# config.json's model_type -> its classes: the transformers SSL encoders with a CNN front-end and hidden states
ENCODERS = {"wav2vec2": Family(Wav2Vec2Model, Wav2Vec2ForSequenceClassification),
            "hubert": Family(HubertModel, HubertForSequenceClassification),
            "wavlm": Family(WavLMModel, WavLMForSequenceClassification),
            "data2vec-audio": Family(Data2VecAudioModel, Data2VecAudioForSequenceClassification)}
# Weights a checkpoint may lack without harm: SpecAugment's mask vector, which HF creates only when the
# config's mask_time_prob > 0 and which acts only in training with masking on (add_mask_embedding).
MAY_BE_MISSING = {"masked_spec_embed"}
_LAYER_KEY = re.compile(r"encoder\.layers\.(\d+)\.(.+)")
# The demo model: the wav2vec2-base layout (7-layer CNN, 12 transformer blocks)
# at a width that trains on two CPU cores in the demo's budget. Layer-norm
# feature encoder, so attention masks are honoured and padding never leaks.
TINY = dict(hidden_size=32, num_hidden_layers=12, num_attention_heads=2, intermediate_size=64, conv_dim=(16,) * 7,
            conv_stride=(5, 2, 2, 2, 2, 2, 2), conv_kernel=(10, 3, 3, 3, 3, 2, 2), num_conv_pos_embeddings=16,
            num_conv_pos_embedding_groups=4, feat_extract_norm="layer", do_stable_layer_norm=False, hidden_dropout=0.0,
            attention_dropout=0.0, activation_dropout=0.0, feat_proj_dropout=0.0, final_dropout=0.0, layerdrop=0.0,
            mask_time_prob=0.0)
# A smaller one still, for tests that run notebooks in seconds.
MICRO = dict(TINY, hidden_size=16, num_hidden_layers=4, intermediate_size=32,
             conv_dim=(8,) * 7, num_conv_pos_embedding_groups=2)
NAMED_CONFIGS = dict(zip(NAMED_MODELS, (TINY, MICRO, {})))  # all wav2vec 2.0


@dataclass
class ModelOutput:
    logits: torch.Tensor
    frame_mask: torch.Tensor  # (batch, frames) bool: True for real (non-padding) frames
    hidden_states: tuple[torch.Tensor, ...] | None = None  # HF indexing: [0] = transformer input


def encoder_family(model_type: str | None) -> Family:
    """The classes of an encoder's ``model_type``; an unsupported one is refused, naming the supported ones."""
    if model_type not in ENCODERS:
        raise ValueError(f"encoder model_type {model_type!r} is not supported: the study takes "
                         f"{', '.join(ENCODERS)} (transformers' self-supervised encoders with a CNN front-end)")
    return ENCODERS[model_type]


def config_from_dict(config: dict) -> PretrainedConfig:
    """An encoder config from its plain dict (as a checkpoint stores it), of the class its ``model_type``
    names (wav2vec 2.0 for a dict without one)."""
    return encoder_family(config.get("model_type", "wav2vec2")).model.config_class.from_dict(config)


def check_labels(labels: Sequence[str]) -> tuple[str, ...]:
    """The classes in logit order, as a tuple of distinct non-empty names."""
    if isinstance(labels, str) or not isinstance(labels, Sequence):
        raise TypeError(f"labels must be the class names in logit order (a list of strings), got {labels!r}")
    labels = tuple(labels)
    if not labels or not all(isinstance(x, str) and x for x in labels) or len(set(labels)) != len(labels):
        raise ValueError(f"labels must be distinct non-empty class names, got {list(labels)}")
    return labels


def normalize_waveforms(x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Zero mean, unit variance per utterance over its real samples, padding kept at zero:
    the input wav2vec 2.0 expects (``Wav2Vec2FeatureExtractor(do_normalize=True)``)."""
    m = valid.to(x.dtype)
    n = m.sum(1, keepdim=True).clamp(min=1.0)
    mean = (x * m).sum(1, keepdim=True) / n
    var = (((x - mean) * m) ** 2).sum(1, keepdim=True) / n
    return (x - mean) / torch.sqrt(var + 1e-7) * m


class EmotionClassifier(nn.Module):
    """Encoder → masked mean pooling of the last layer → FC logits, one per class of ``labels``."""

    temperature_scaling: dict | None = None  # its checkpoint's (``checkpoint.load_model``): logits / T are calibrated

    @property
    def calibration_temperature(self) -> float:
        """The fitted temperature its probabilities are scaled with (1: none fitted; not distillation's T)."""
        return float(self.temperature_scaling["temperature"]) if self.temperature_scaling else 1.0

    def __init__(self, config: PretrainedConfig, labels: Sequence[str] = EMOTIONS, encoder: nn.Module | None = None):
        super().__init__()
        family = encoder_family(config.model_type)
        self.labels = check_labels(labels)
        # LayerDrop (0.1 in wav2vec2-base) skips whole layers in training; the multi-level
        # loss needs every layer's output (transformers 5 then returns fewer hidden states)
        config.layerdrop = 0.0
        self.config = config
        self.encoder = encoder if encoder is not None else family.model(config)
        self.head = nn.Linear(config.hidden_size, len(self.labels))

    @property
    def family(self) -> str:
        """The encoder's ``model_type``: wav2vec2, hubert, wavlm or data2vec-audio."""
        return self.config.model_type

    def set_spec_augment(self, mask_time_prob: float, mask_time_length: int) -> None:
        """SpecAugment-style time masking of the transformer input in training (HF's
        ``mask_time_prob``). Set by the study, never inherited silently from a checkpoint's
        config (wav2vec2-base ships 0.05). The mask embedding is kept even when off."""
        cfg = self.encoder.config
        cfg.mask_time_prob, cfg.mask_time_length = float(mask_time_prob), int(mask_time_length)
        cfg.apply_spec_augment = mask_time_prob > 0
        if mask_time_prob > 0:
            self.add_mask_embedding()

    def add_mask_embedding(self) -> None:
        """The learned mask vector of SpecAugment (HF creates it only when the config's
        ``mask_time_prob`` is positive; a pretrained encoder brings its own)."""
        if getattr(self.encoder, "masked_spec_embed", None) is None:
            self.encoder.masked_spec_embed = nn.Parameter(torch.rand(self.config.hidden_size))

    @property
    def num_layers(self) -> int:
        return self.config.num_hidden_layers

    def uses_attention_mask(self) -> bool:
        # Group-norm encoders (wav2vec2-base, hubert-base, wavlm-base) were trained without attention
        # masks: HF advises zero padding and no mask for them. data2vec-audio's CNN is always layer-norm.
        return getattr(self.config, "feat_extract_norm", "layer") == "layer"

    def frame_mask(self, lengths: torch.Tensor, num_frames: int) -> torch.Tensor:
        n = self.encoder._get_feat_extract_output_lengths(lengths).clamp(max=num_frames)
        return torch.arange(num_frames, device=lengths.device)[None, :] < n[:, None]

    def forward(self, waveforms: torch.Tensor, lengths: torch.Tensor | None = None,
                output_hidden_states: bool = False) -> ModelOutput:
        if lengths is None:
            lengths = torch.full((waveforms.shape[0],), waveforms.shape[1], device=waveforms.device, dtype=torch.long)
        valid = torch.arange(waveforms.shape[1], device=waveforms.device)[None, :] < lengths[:, None]
        waveforms = normalize_waveforms(waveforms, valid)
        sample_mask = valid.long() if self.uses_attention_mask() else None
        out = self.encoder(waveforms, attention_mask=sample_mask, output_hidden_states=output_hidden_states)
        last = out.last_hidden_state
        if output_hidden_states and len(out.hidden_states) != self.num_layers + 1:
            raise RuntimeError(f"expected {self.num_layers + 1} hidden states, got {len(out.hidden_states)}")
        mask = self.frame_mask(lengths, last.shape[1])
        m = mask.unsqueeze(-1).to(last.dtype)
        pooled = (last * m).sum(1) / m.sum(1).clamp(min=1.0)
        return ModelOutput(self.head(pooled), mask, out.hidden_states if output_hidden_states else None)


def _few(names, n: int = 5) -> str:
    names = sorted(names)
    return ", ".join(names[:n]) + (f" … ({len(names)} in all)" if len(names) > n else f" ({len(names)})")


def _load_encoder(source: str, where: str) -> nn.Module:
    """The encoder of a local folder (or HF-cache id), of the class its config's ``model_type`` names;
    refused when its weights do not all load into that class (a checkpoint of another architecture,
    or a config that names the wrong family): never a model trained on random leftovers."""
    try:
        config, _ = PretrainedConfig.get_config_dict(where, local_files_only=True)
        family = encoder_family(config.get("model_type"))
        encoder, info = family.model.from_pretrained(where, local_files_only=True, output_loading_info=True)
    except OSError as err:
        raise FileNotFoundError(
            f"encoder weights not found at {source!r}: give a local folder holding config.json + model weights "
            f"(e.g. a copy of facebook/wav2vec2-base), a model id already in the local Hugging Face cache, or one "
            f"of {sorted(NAMED_CONFIGS)} ({str(err).splitlines()[0][:200]})") from err
    except ValueError as err:
        raise ValueError(f"model {source}: {err}") from None
    own = {name for name, _ in encoder.named_children()} | {name for name, _ in encoder.named_parameters(recurse=False)}
    prefix = family.model.base_model_prefix + "."
    missing = [k for k in info.get("missing_keys", ()) if k not in MAY_BE_MISSING]
    # weights of the encoder's own parts with no place in this class (other heads, e.g. pretraining's quantizer,
    # are dropped as they should be)
    stray = [k for k in (k.removeprefix(prefix) for k in info.get("unexpected_keys", ())) if k.split(".")[0] in own]
    if missing or stray:
        raise ValueError(
            f"model {source}: its weights do not fit the {family.model.__name__} its config.json names "
            f"(model_type {config.get('model_type')!r})"
            + (f"; missing: {_few(missing)}" if missing else "") + (f"; no place for: {_few(stray)}" if stray else "")
            + ". Is the folder a checkpoint of another architecture, or does its config name the wrong family?")
    return encoder


def build_teacher(source: str | os.PathLike, labels: Sequence[str] = EMOTIONS) -> EmotionClassifier:
    """The teacher: a named config ("tiny", "micro", "base": random wav2vec 2.0 weights) or a
    pretrained encoder loaded offline from a local folder or the local HF cache; one output per class
    of ``labels`` (logit order)."""
    source = str(source)
    labels = check_labels(labels)
    if source in NAMED_CONFIGS:
        return EmotionClassifier(Wav2Vec2Config(**NAMED_CONFIGS[source]), labels)
    path = Path(source).expanduser()
    encoder = _load_encoder(source, str(path) if path.exists() else source)  # never downloads
    return EmotionClassifier(encoder.config, labels, encoder=encoder)


def default_layer_map(student_layers: int, teacher_layers: int) -> dict[int, int]:
    """Student layer k ← teacher layer k·(teacher/student): 1→2, 2→4, …, 6→12 for 6 of 12."""
    if teacher_layers % student_layers:
        raise ValueError(f"teacher has {teacher_layers} layers, not a multiple of the "
                         f"student's {student_layers}: pass an explicit layer_map")
    step = teacher_layers // student_layers
    return {k: k * step for k in range(1, student_layers + 1)}


def student_weights(teacher: dict[str, torch.Tensor], student: dict[str, torch.Tensor], layer_map: dict[int, int]
                    ) -> dict[str, torch.Tensor]:
    """The student encoder's state dict from the teacher's: ``encoder.layers.{k-1}.*`` from teacher layer
    ``layer_map[k]``, everything else (CNN, feature projection, positional conv, layer norms, mask vector)
    as it is. A weight only the teacher's first layer holds comes from there: WavLM's relative position
    bias (``rel_attn_embed``) is computed in layer 0 and passed on to every later layer, which gates it.
    ``student`` is the student encoder's own state dict (its keys, and a mask vector the teacher lacks)."""
    out = {}
    for key, own in student.items():
        src, m = key, _LAYER_KEY.fullmatch(key)
        if m is not None:
            rest = m[2]
            src = f"encoder.layers.{layer_map[int(m[1]) + 1] - 1}.{rest}"
            if src not in teacher:
                src = f"encoder.layers.0.{rest}"
        if src not in teacher and key in MAY_BE_MISSING:  # a mask vector the teacher lacks: the student's own
            out[key] = own
            continue
        if src not in teacher:
            raise KeyError(f"the student's {key} has no counterpart in the teacher (looked for {src})")
        out[key] = teacher[src]
    return out


def build_student(teacher: EmotionClassifier, num_layers: int = 6,
                  layer_map: dict[int, int] | None = None) -> EmotionClassifier:
    """The distil student: the teacher's class and config with ``num_layers`` transformer blocks and
    the teacher's labels.

    Everything but the transformer blocks (CNN feature encoder, feature projection, positional conv,
    encoder layer norm, mask vector) and the classification head are copied from the teacher; student
    layer k is copied from teacher layer ``layer_map[k]`` (HF hidden-state numbering, 1-based), with
    WavLM's relative position bias from the teacher's layer 0 (:func:`student_weights`).
    """
    layer_map = layer_map or default_layer_map(num_layers, teacher.num_layers)
    if sorted(layer_map) != list(range(1, num_layers + 1)):
        raise ValueError(f"layer_map must name student layers 1..{num_layers}, got {sorted(layer_map)}")
    bad = [t for t in layer_map.values() if not 1 <= t <= teacher.num_layers]
    if bad:
        raise ValueError(f"layer_map names teacher layers {bad}; the teacher has 1..{teacher.num_layers}")
    config = copy.deepcopy(teacher.config)
    config.num_hidden_layers = num_layers
    student = EmotionClassifier(config, teacher.labels)
    if getattr(teacher.encoder, "masked_spec_embed", None) is not None:
        student.add_mask_embedding()
    s = student.encoder
    s.load_state_dict(student_weights(teacher.encoder.state_dict(), s.state_dict(), layer_map))
    student.head.load_state_dict(teacher.head.state_dict())
    return student


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def size_mib(model: nn.Module) -> float:
    """fp32 size of the parameters in MiB (the paper's Table 3 'Param' column)."""
    return count_parameters(model) * 4 / 2**20


def model_info(source: str, student_layers: int = 6) -> dict:
    """Layers, parameters and fp32 size of the teacher ``source`` gives and of its student, with the
    encoder family (``model_type``) of each."""
    teacher = build_teacher(source)
    student = build_student(teacher, student_layers)
    return {name: {"layers": m.num_layers, "parameters": count_parameters(m), "size_mib": round(size_mib(m), 2),
                   "family": m.family} for name, m in (("teacher", teacher), ("student", student))}
