"""Teacher and distil-student wav2vec 2.0 emotion classifiers.

Both are a Hugging Face ``Wav2Vec2Model`` followed by masked mean pooling over
time of the last hidden layer and one fully connected layer (docs/design.md:
the utterance embedding). The student is the teacher's config with fewer transformer layers,
initialised from the teacher's even layers (paper, Sec. 2.1.2).
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from transformers import Wav2Vec2Config, Wav2Vec2Model

from ..names import EMOTIONS, NAMED_MODELS

# The demo model: the wav2vec2-base layout (7-layer CNN, 12 transformer blocks)
# at a width that trains on two CPU cores in the demo's budget. Layer-norm
# feature encoder, so attention masks are honoured and padding never leaks.
TINY = dict(
    hidden_size=32,
    num_hidden_layers=12,
    num_attention_heads=2,
    intermediate_size=64,
    conv_dim=(16,) * 7,
    conv_stride=(5, 2, 2, 2, 2, 2, 2),
    conv_kernel=(10, 3, 3, 3, 3, 2, 2),
    num_conv_pos_embeddings=16,
    num_conv_pos_embedding_groups=4,
    feat_extract_norm="layer",
    do_stable_layer_norm=False,
    hidden_dropout=0.0,
    attention_dropout=0.0,
    activation_dropout=0.0,
    feat_proj_dropout=0.0,
    final_dropout=0.0,
    layerdrop=0.0,
    mask_time_prob=0.0,
)
# A smaller one still, for tests that run notebooks in seconds.
MICRO = dict(TINY, hidden_size=16, num_hidden_layers=4, intermediate_size=32,
             conv_dim=(8,) * 7, num_conv_pos_embedding_groups=2)
NAMED_CONFIGS = dict(zip(NAMED_MODELS, (TINY, MICRO, {})))


@dataclass
class ModelOutput:
    logits: torch.Tensor
    frame_mask: torch.Tensor  # (batch, frames) bool: True for real (non-padding) frames
    hidden_states: tuple[torch.Tensor, ...] | None = None  # HF indexing: [0] = transformer input


def normalize_waveforms(x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Zero mean, unit variance per utterance over its real samples, padding kept at zero:
    the input wav2vec 2.0 expects (``Wav2Vec2FeatureExtractor(do_normalize=True)``)."""
    m = valid.to(x.dtype)
    n = m.sum(1, keepdim=True).clamp(min=1.0)
    mean = (x * m).sum(1, keepdim=True) / n
    var = (((x - mean) * m) ** 2).sum(1, keepdim=True) / n
    return (x - mean) / torch.sqrt(var + 1e-7) * m


class EmotionClassifier(nn.Module):
    """wav2vec 2.0 encoder → masked mean pooling of the last layer → FC logits."""

    def __init__(self, config: Wav2Vec2Config, num_labels: int = len(EMOTIONS),
                 encoder: Wav2Vec2Model | None = None):
        super().__init__()
        # LayerDrop (0.1 in wav2vec2-base) skips whole layers in training; the multi-level
        # loss needs every layer's output (transformers 5 then returns fewer hidden states)
        config.layerdrop = 0.0
        self.config = config
        self.wav2vec2 = encoder if encoder is not None else Wav2Vec2Model(config)
        self.head = nn.Linear(config.hidden_size, num_labels)

    def set_spec_augment(self, mask_time_prob: float, mask_time_length: int) -> None:
        """SpecAugment-style time masking of the transformer input in training (HF's
        ``mask_time_prob``). Set by the study, never inherited silently from a checkpoint's
        config (wav2vec2-base ships 0.05). The mask embedding is kept even when off."""
        cfg = self.wav2vec2.config
        cfg.mask_time_prob, cfg.mask_time_length = float(mask_time_prob), int(mask_time_length)
        cfg.apply_spec_augment = mask_time_prob > 0
        if mask_time_prob > 0:
            self.add_mask_embedding()

    def add_mask_embedding(self) -> None:
        """The learned mask vector of SpecAugment (HF creates it only when the config's
        ``mask_time_prob`` is positive; a pretrained encoder brings its own)."""
        if getattr(self.wav2vec2, "masked_spec_embed", None) is None:
            self.wav2vec2.masked_spec_embed = nn.Parameter(torch.rand(self.config.hidden_size))

    @property
    def num_layers(self) -> int:
        return self.config.num_hidden_layers

    def uses_attention_mask(self) -> bool:
        # Group-norm encoders (wav2vec2-base) were trained without attention masks:
        # HF advises zero padding and no mask for them.
        return self.config.feat_extract_norm == "layer"

    def frame_mask(self, lengths: torch.Tensor, num_frames: int) -> torch.Tensor:
        n = self.wav2vec2._get_feat_extract_output_lengths(lengths).clamp(max=num_frames)
        return torch.arange(num_frames, device=lengths.device)[None, :] < n[:, None]

    def forward(self, waveforms: torch.Tensor, lengths: torch.Tensor | None = None,
                output_hidden_states: bool = False) -> ModelOutput:
        if lengths is None:
            lengths = torch.full((waveforms.shape[0],), waveforms.shape[1],
                                 device=waveforms.device, dtype=torch.long)
        valid = torch.arange(waveforms.shape[1], device=waveforms.device)[None, :] < lengths[:, None]
        waveforms = normalize_waveforms(waveforms, valid)
        sample_mask = valid.long() if self.uses_attention_mask() else None
        out = self.wav2vec2(waveforms, attention_mask=sample_mask,
                            output_hidden_states=output_hidden_states)
        last = out.last_hidden_state
        if output_hidden_states and len(out.hidden_states) != self.num_layers + 1:
            raise RuntimeError(f"expected {self.num_layers + 1} hidden states, got {len(out.hidden_states)}")
        mask = self.frame_mask(lengths, last.shape[1])
        m = mask.unsqueeze(-1).to(last.dtype)
        pooled = (last * m).sum(1) / m.sum(1).clamp(min=1.0)
        return ModelOutput(self.head(pooled), mask,
                           out.hidden_states if output_hidden_states else None)


def _config_for(name: str) -> Wav2Vec2Config:
    return Wav2Vec2Config(**NAMED_CONFIGS[name])


def build_teacher(source: str | os.PathLike, num_labels: int = len(EMOTIONS)) -> EmotionClassifier:
    """The teacher: a named config ("tiny", "micro", "base": random weights) or a
    pretrained wav2vec 2.0 loaded offline from a local folder or the local HF cache."""
    source = str(source)
    if source in NAMED_CONFIGS:
        return EmotionClassifier(_config_for(source), num_labels)
    path = Path(source).expanduser()
    local_only = True  # never download: a model id must already be in the HF cache
    try:
        encoder = Wav2Vec2Model.from_pretrained(str(path) if path.exists() else source,
                                                local_files_only=local_only)
    except OSError as err:
        raise FileNotFoundError(
            f"wav2vec 2.0 weights not found at {source!r}: give a local folder holding "
            f"config.json + model weights (e.g. a copy of facebook/wav2vec2-base), a model id "
            f"already in the local Hugging Face cache, or one of {sorted(NAMED_CONFIGS)}") from err
    return EmotionClassifier(encoder.config, num_labels, encoder=encoder)


def default_layer_map(student_layers: int, teacher_layers: int) -> dict[int, int]:
    """Student layer k ← teacher layer k·(teacher/student): 1→2, 2→4, …, 6→12 for 6 of 12."""
    if teacher_layers % student_layers:
        raise ValueError(f"teacher has {teacher_layers} layers, not a multiple of the "
                         f"student's {student_layers}: pass an explicit layer_map")
    step = teacher_layers // student_layers
    return {k: k * step for k in range(1, student_layers + 1)}


def build_student(teacher: EmotionClassifier, num_layers: int = 6,
                  layer_map: dict[int, int] | None = None) -> EmotionClassifier:
    """The distil student: the teacher's config with ``num_layers`` transformer blocks.

    The CNN feature encoder, feature projection, positional conv, encoder layer norm
    and classification head are copied from the teacher; student layer k is copied
    from teacher layer ``layer_map[k]`` (HF hidden-state numbering, 1-based).
    """
    layer_map = layer_map or default_layer_map(num_layers, teacher.num_layers)
    if sorted(layer_map) != list(range(1, num_layers + 1)):
        raise ValueError(f"layer_map must name student layers 1..{num_layers}, got {sorted(layer_map)}")
    bad = [t for t in layer_map.values() if not 1 <= t <= teacher.num_layers]
    if bad:
        raise ValueError(f"layer_map names teacher layers {bad}; the teacher has 1..{teacher.num_layers}")
    config = copy.deepcopy(teacher.config)
    config.num_hidden_layers = num_layers
    student = EmotionClassifier(config, teacher.head.out_features)
    t, s = teacher.wav2vec2, student.wav2vec2
    s.feature_extractor.load_state_dict(t.feature_extractor.state_dict())
    s.feature_projection.load_state_dict(t.feature_projection.state_dict())
    s.encoder.pos_conv_embed.load_state_dict(t.encoder.pos_conv_embed.state_dict())
    s.encoder.layer_norm.load_state_dict(t.encoder.layer_norm.state_dict())
    if getattr(t, "masked_spec_embed", None) is not None:
        student.add_mask_embedding()
        s.masked_spec_embed.data.copy_(t.masked_spec_embed.data)
    for k, tk in layer_map.items():
        s.encoder.layers[k - 1].load_state_dict(t.encoder.layers[tk - 1].state_dict())
    student.head.load_state_dict(teacher.head.state_dict())
    return student


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def size_mib(model: nn.Module) -> float:
    """fp32 size of the parameters in MiB (the paper's Table 3 'Param' column)."""
    return count_parameters(model) * 4 / 2**20


def model_info(source: str, student_layers: int = 6) -> dict:
    teacher = build_teacher(source)
    student = build_student(teacher, student_layers)
    return {name: {"layers": m.num_layers, "parameters": count_parameters(m), "size_mib": round(size_mib(m), 2)}
            for name, m in (("teacher", teacher), ("student", student))}
