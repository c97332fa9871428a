"""Any self-supervised encoder with a CNN front-end: wav2vec 2.0, HuBERT, WavLM and data2vec-audio load from a
folder as their own class, distil into a student of the same class (WavLM's relative position bias included),
feed the multi-level loss the right layers, and round-trip through a checkpoint; a folder whose weights do not
fit its class, or an unsupported family, is refused by name."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import (
    Data2VecAudioConfig,
    HubertConfig,
    Wav2Vec2Config,
    Wav2Vec2ForPreTraining,
    Wav2Vec2Model,
    WavLMConfig,
)

from mlkd_lib.method.checkpoint import load_model, save_best
from mlkd_lib.method.losses import masked_mse, multilevel_loss
from mlkd_lib.method.models import ENCODERS, build_student, build_teacher, model_info

SMALL = dict(hidden_size=16, num_hidden_layers=4, num_attention_heads=2, intermediate_size=32, conv_dim=(8, 8, 8),
             conv_stride=(5, 4, 4), conv_kernel=(10, 4, 4), num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2,
             hidden_dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, feat_proj_dropout=0.0, layerdrop=0.1,
             mask_time_prob=0.05)
# one of each family, in both CNN norms; data2vec-audio's positional conv is a stack of layers of its own kind
CONFIGS = {"wav2vec2": lambda: Wav2Vec2Config(**SMALL, feat_extract_norm="layer"),
           "hubert": lambda: HubertConfig(**SMALL, feat_extract_norm="group"),
           "wavlm": lambda: WavLMConfig(**SMALL, feat_extract_norm="layer", num_buckets=32, max_bucket_distance=64),
           "data2vec-audio": lambda: Data2VecAudioConfig(**dict(SMALL, num_conv_pos_embeddings=2),
                                                         conv_pos_kernel_size=5)}
FAMILIES = tuple(CONFIGS)
SIX = ["neu", "hap", "ang", "sad", "fea", "dis"]


def _save(family: str, folder, seed: int = 0):
    """A pretrained-like encoder folder of ``family``, as save_pretrained writes it."""
    torch.manual_seed(seed)
    model = ENCODERS[family].model(CONFIGS[family]())
    model.save_pretrained(folder)
    return model


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("encoders")
    return {f: (root / f, _save(f, root / f, seed=i)) for i, f in enumerate(FAMILIES)}


def _state(module) -> dict:
    return dict(module.state_dict())


def _layer(model, i: int) -> dict:
    return _state(model.encoder.encoder.layers[i])


def test_every_family_is_in_the_map_and_preflight_knows_the_same_ones():
    from mlkd_lib.names import ENCODER_TYPES
    assert tuple(ENCODERS) == ENCODER_TYPES == FAMILIES


@pytest.mark.parametrize("family", FAMILIES)
def test_a_folder_loads_as_its_own_class_with_its_weights(folders, family):
    folder, saved = folders[family]
    teacher = build_teacher(folder, SIX)
    assert type(teacher.encoder) is ENCODERS[family].model and teacher.family == family
    assert teacher.labels == tuple(SIX) and teacher.head.out_features == 6
    assert _state(teacher.encoder).keys() == _state(saved).keys()
    assert all(torch.equal(v, _state(saved)[k]) for k, v in _state(teacher.encoder).items())
    info = model_info(str(folder), 2)
    assert info["teacher"]["family"] == info["student"]["family"] == family
    assert info["teacher"]["layers"] == 4 and info["student"]["layers"] == 2


@pytest.mark.parametrize("family", FAMILIES)
def test_student_layer_k_is_teacher_layer_2k_tensor_by_tensor(folders, family):
    teacher = build_teacher(folders[family][0], SIX)
    student = build_student(teacher, 2)
    assert type(student.encoder) is type(teacher.encoder) and student.labels == teacher.labels
    assert student.num_layers == 2 and len(student.encoder.encoder.layers) == 2
    for k in (1, 2):
        s, t = _layer(student, k - 1), _layer(teacher, 2 * k - 1)
        assert set(t) <= set(s)
        assert all(torch.equal(s[name], t[name]) for name in t), (family, k)
        extra = set(s) - set(t)
        if family == "wavlm" and k == 1:
            # the bias layer 0 computes and passes on: the teacher's layer-0 embedding, in the student's first layer
            assert extra == {"attention.rel_attn_embed.weight"}
            bias = "attention.rel_attn_embed.weight"
            assert torch.equal(s[bias], _layer(teacher, 0)[bias])
        else:
            assert not extra, (family, k, extra)
    ts, ss = _state(teacher.encoder), _state(student.encoder)
    rest = [k for k in ss if not k.startswith("encoder.layers.")]
    assert "masked_spec_embed" in rest and any(k.startswith("encoder.pos_conv_embed.") for k in rest)
    assert all(torch.equal(ss[k], ts[k]) for k in rest)
    assert torch.equal(student.head.weight, teacher.head.weight) and torch.equal(student.head.bias, teacher.head.bias)


@pytest.mark.parametrize("family", FAMILIES)
def test_hidden_states_and_the_multilevel_loss_read_the_right_layers(folders, family):
    torch.manual_seed(3)
    teacher = build_teacher(folders[family][0], SIX).eval()
    if family == "wavlm":  # a bias as large as trained ones, so that it visibly shapes every layer's attention
        with torch.no_grad():
            teacher.encoder.encoder.layers[0].attention.rel_attn_embed.weight.normal_(0, 3.0)
    same = build_student(teacher, 2, layer_map={1: 1, 2: 2}).eval()  # the teacher's first two layers
    even = build_student(teacher, 2).eval()  # layers 2 and 4
    x, lengths = 0.1 * torch.randn(2, 6000), torch.tensor([6000, 4500])
    with torch.no_grad():
        t = teacher(x, lengths, output_hidden_states=True)
        s = same(x, lengths, output_hidden_states=True)
        e = even(x, lengths, output_hidden_states=True)
    assert len(t.hidden_states) == 5 and len(s.hidden_states) == len(e.hidden_states) == 3
    assert t.hidden_states[0].shape == s.hidden_states[2].shape and torch.equal(t.frame_mask, s.frame_mask)
    mask = t.frame_mask
    # on the same input the first two layers are the teacher's: L_ML is 0 against teacher layers 1, 2 only
    assert float(multilevel_loss(s.hidden_states, t.hidden_states, {1: 1, 2: 2}, mask)) == 0.0
    assert float(multilevel_loss(s.hidden_states, t.hidden_states, {1: 2, 2: 4}, mask)) > 1e-6
    # the distilled pair: student layer k against teacher layer 2k, as the teacher cache hands them ({layer: states})
    cache = {2: t.hidden_states[2], 4: t.hidden_states[4]}
    by_hand = sum(((e.hidden_states[k] - t.hidden_states[2 * k]) ** 2)[mask].mean() for k in (1, 2)) / 2
    torch.testing.assert_close(multilevel_loss(e.hidden_states, cache, {1: 2, 2: 4}, mask), by_hand)
    torch.testing.assert_close(masked_mse(e.hidden_states[2], t.hidden_states[4], mask),
                               ((e.hidden_states[2] - t.hidden_states[4]) ** 2)[mask].mean())
    if family == "wavlm":  # the student's layers do use the teacher's layer-0 relative position bias
        with torch.no_grad():
            same.encoder.encoder.layers[0].attention.rel_attn_embed.weight.zero_()
            s0 = same(x, lengths, output_hidden_states=True)
        assert float(multilevel_loss(s0.hidden_states, t.hidden_states, {1: 1, 2: 2}, mask)) > 1e-6


@pytest.mark.parametrize("family", FAMILIES)
def test_a_checkpoint_round_trips_each_family(folders, family, tmp_path):
    teacher = build_teacher(folders[family][0], SIX)
    student = build_student(teacher, 2)
    with torch.no_grad():
        student.head.weight.normal_(0, 1.0)
    save_best(student, tmp_path / "best.pt", "student_sup", 4, 0.5)
    again = load_model(tmp_path / "best.pt")
    assert type(again.encoder) is type(student.encoder) and again.labels == tuple(SIX) and again.num_layers == 2
    x, lengths = 0.1 * torch.randn(2, 7000), torch.tensor([7000, 5200])
    with torch.no_grad():
        assert torch.equal(again.eval()(x, lengths).logits, student.eval()(x, lengths).logits)


@pytest.mark.parametrize("family", FAMILIES)
def test_a_folder_with_missing_weights_is_refused_naming_them(family, tmp_path):
    """Half-loaded weights in any family: its fourth layer cut from the file would start random."""
    _save(family, tmp_path / "cut")
    weights = load_file(tmp_path / "cut" / "model.safetensors")
    dropped = sorted(k for k in weights if k.startswith("encoder.layers.3."))
    save_file({k: v for k, v in weights.items() if k not in dropped}, tmp_path / "cut" / "model.safetensors",
              metadata={"format": "pt"})
    with pytest.raises(ValueError, match=rf"cut.*missing: encoder\.layers\.3\..*\({len(dropped)} in all\)"):
        build_teacher(tmp_path / "cut")


def test_a_config_naming_the_wrong_family_is_refused(tmp_path):
    # wav2vec 2.0 weights under a WavLM config: the gates and the bias would start random
    _save("wav2vec2", tmp_path / "w2v_as_wavlm")
    config = json.loads((tmp_path / "w2v_as_wavlm" / "config.json").read_text())
    (tmp_path / "w2v_as_wavlm" / "config.json").write_text(json.dumps(dict(config, model_type="wavlm")))
    with pytest.raises(ValueError, match=r"w2v_as_wavlm.*WavLMModel.*missing: .*gru_rel_pos.* \(\d+ in all\)"):
        build_teacher(tmp_path / "w2v_as_wavlm")
    # WavLM weights under a wav2vec 2.0 config: its gates and bias would be dropped
    _save("wavlm", tmp_path / "wavlm_as_w2v")
    config = json.loads((tmp_path / "wavlm_as_w2v" / "config.json").read_text())
    (tmp_path / "wavlm_as_w2v" / "config.json").write_text(json.dumps(dict(config, model_type="wav2vec2")))
    with pytest.raises(ValueError, match=r"wavlm_as_w2v.*Wav2Vec2Model.*no place for: .*(rel_attn_embed|gru_rel_pos)"):
        build_teacher(tmp_path / "wavlm_as_w2v")


def test_an_unsupported_family_is_refused_naming_it_and_the_supported_ones(tmp_path):
    from mlkd_lib.config import make_config
    from mlkd_lib.study.preflight import _model_problems
    _save("hubert", tmp_path / "odd")
    config = json.loads((tmp_path / "odd" / "config.json").read_text())
    (tmp_path / "odd" / "config.json").write_text(json.dumps(dict(config, model_type="whisper")))
    with pytest.raises(ValueError, match=r"odd.*'whisper'.*wav2vec2, hubert, wavlm, data2vec-audio"):
        build_teacher(tmp_path / "odd")
    problems = _model_problems(make_config("micro", model=str(tmp_path / "odd")))
    assert len(problems) == 1 and "'whisper'" in problems[0]
    assert "wav2vec2, hubert, wavlm, data2vec-audio" in problems[0]
    for family in FAMILIES:  # pre-flight takes every supported family
        _save(family, tmp_path / family)
        assert _model_problems(make_config("micro", model=str(tmp_path / family))) == []


def test_what_a_checkpoint_may_lack_or_carry_besides_is_accepted(tmp_path):
    """wav2vec2-base is a pretraining checkpoint (quantizer, projections: other heads, dropped) and a config may
    ask for SpecAugment's mask vector that the weights lack (HF creates it only when mask_time_prob > 0)."""
    torch.manual_seed(0)
    pre = Wav2Vec2ForPreTraining(Wav2Vec2Config(**SMALL, codevector_dim=8, proj_codevector_dim=8,
                                                num_codevectors_per_group=4))
    pre.save_pretrained(tmp_path / "pretraining")
    teacher = build_teacher(tmp_path / "pretraining")
    assert all(torch.equal(v, _state(pre.wav2vec2)[k]) for k, v in _state(teacher.encoder).items())
    plain = Wav2Vec2Model(Wav2Vec2Config(**dict(SMALL, mask_time_prob=0.0)))
    plain.save_pretrained(tmp_path / "no_mask_vector")
    config = json.loads((tmp_path / "no_mask_vector" / "config.json").read_text())
    (tmp_path / "no_mask_vector" / "config.json").write_text(json.dumps(dict(config, mask_time_prob=0.05)))
    teacher = build_teacher(tmp_path / "no_mask_vector")
    assert all(torch.equal(v, _state(teacher.encoder)[k]) for k, v in _state(plain).items())


@pytest.mark.parametrize("family", FAMILIES)
def test_the_hf_export_refuses_an_encoder_that_does_not_map(family, folders, monkeypatch):
    """The Hugging Face export copies the encoder into its family's classifier; weights that would not all land
    there (here a layer short) are refused, never exported beside random ones."""
    from mlkd_lib.deploy.hf import to_hf
    teacher = build_teacher(folders[family][0], SIX)
    assert type(to_hf(teacher)).__name__ == ENCODERS[family].classifier.__name__  # whole: it maps
    full = teacher.encoder.state_dict()
    monkeypatch.setattr(teacher.encoder, "state_dict",
                        lambda *a, **k: {n: v for n, v in full.items() if not n.startswith("encoder.layers.1.")})
    with pytest.raises(RuntimeError, match=r"does not map onto .*missing .*encoder\.layers\.1\."):
        to_hf(teacher)
