"""Teacher and student construction, pooling, loading from a local path, sizes."""

from __future__ import annotations

import pytest
import torch
from transformers import Wav2Vec2Model

from mlkd_lib.method.models import build_student, build_teacher, default_layer_map, model_info


def _same(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_student_layer_k_is_teacher_layer_2k():
    torch.manual_seed(0)
    teacher = build_teacher("tiny")
    student = build_student(teacher, 6)
    t, s = teacher.encoder, student.encoder
    assert student.num_layers == 6
    for k in range(1, 7):
        assert _same(s.encoder.layers[k - 1], t.encoder.layers[2 * k - 1])
        assert not _same(s.encoder.layers[k - 1], t.encoder.layers[2 * k - 2])  # not the odd layer
    for part in ("feature_extractor", "feature_projection"):
        assert _same(getattr(s, part), getattr(t, part))
    assert _same(s.encoder.pos_conv_embed, t.encoder.pos_conv_embed)
    assert _same(student.head, teacher.head)


def test_layer_map_is_configurable_and_checked():
    teacher = build_teacher("micro")  # 4 layers
    student = build_student(teacher, 2, layer_map={1: 1, 2: 4})
    assert _same(student.encoder.encoder.layers[0], teacher.encoder.encoder.layers[0])
    assert default_layer_map(6, 12) == {1: 2, 2: 4, 3: 6, 4: 8, 5: 10, 6: 12}
    with pytest.raises(ValueError, match="teacher layers"):
        build_student(teacher, 2, layer_map={1: 2, 2: 9})
    with pytest.raises(ValueError, match="multiple"):
        default_layer_map(3, 4)


def test_padding_does_not_change_a_prediction():
    torch.manual_seed(0)
    model = build_teacher("tiny").eval()
    x = torch.randn(1, 16_000) * 0.1
    padded = torch.cat([x, torch.zeros(1, 8_000)], 1)
    batch = torch.cat([padded, torch.randn(1, 24_000) * 0.1])
    with torch.no_grad():
        alone = model(x).logits
        in_batch = model(batch, torch.tensor([16_000, 24_000]), output_hidden_states=True)
    torch.testing.assert_close(in_batch.logits[:1], alone, atol=1e-4, rtol=1e-4)
    assert int(in_batch.frame_mask[0].sum()) < int(in_batch.frame_mask[1].sum())
    assert len(in_batch.hidden_states) == model.num_layers + 1


def test_base_sizes_match_the_papers_table_3():
    info = model_info("base")
    assert info["teacher"]["size_mib"] == pytest.approx(360.17, abs=0.5)
    assert info["student"]["size_mib"] == pytest.approx(197.91, abs=0.5)
    assert info["teacher"]["layers"] == 12 and info["student"]["layers"] == 6


def test_teacher_loads_offline_from_a_local_folder(tmp_path):
    torch.manual_seed(1)
    encoder = build_teacher("micro").encoder
    encoder.save_pretrained(tmp_path / "w2v")
    teacher = build_teacher(tmp_path / "w2v")
    assert _same(teacher.encoder, encoder)
    assert isinstance(teacher.encoder, Wav2Vec2Model)
    with pytest.raises(FileNotFoundError, match="no-such-model"):
        build_teacher(tmp_path / "no-such-model")


def test_every_layer_reports_a_hidden_state_in_training_mode():
    from transformers import Wav2Vec2Config

    from mlkd_lib.method.models import MICRO, EmotionClassifier
    model = EmotionClassifier(Wav2Vec2Config(**dict(MICRO, layerdrop=0.9))).train()  # as wav2vec2-base's 0.1, only more
    for _ in range(3):
        out = model(torch.randn(2, 8000), output_hidden_states=True)
        assert len(out.hidden_states) == model.num_layers + 1


def test_inputs_are_normalised_per_utterance_over_real_samples():
    from mlkd_lib.method.models import normalize_waveforms
    x = torch.cat([3 + 0.5 * torch.randn(1, 1000), torch.zeros(1, 500)], 1)
    valid = torch.arange(1500)[None] < 1000
    y = normalize_waveforms(x, valid)
    assert abs(float(y[0, :1000].mean())) < 1e-5 and abs(float(y[0, :1000].std(unbiased=False)) - 1) < 1e-3
    assert float(y[0, 1000:].abs().sum()) == 0.0
    # loudness no longer changes what the model sees
    torch.testing.assert_close(normalize_waveforms(10 * x, valid), y, atol=1e-5, rtol=1e-4)


def test_each_initialisation_reading_starts_where_it_says(micro_data, tmp_path):
    """The paper's CE-only student owes the teacher nothing: its layers are the pretrained encoder's even
    layers and its head is fresh; the MLKD student and the control start from the fine-tuned teacher."""
    import dataclasses

    from mlkd_lib.arms import STUDENT_CONTROL, STUDENT_SUP, STUDENT_UNSUP
    from mlkd_lib.method.roles import Role
    cfg, _, bank = micro_data
    torch.manual_seed(2)
    build_teacher("micro").encoder.save_pretrained(tmp_path / "pretrained")
    cfg = dataclasses.replace(cfg, model=str(tmp_path / "pretrained"), student_layers=2)
    pretrained = build_teacher(cfg.model)
    teacher = build_teacher(cfg.model)
    with torch.no_grad():  # "fine-tuning" moved every weight of the teacher away from the pretrained ones
        for p in teacher.parameters():
            p.add_(0.01 * torch.randn_like(p))
    roles = {m: Role.of(m, cfg, teacher, bank).model for m in (STUDENT_SUP, STUDENT_UNSUP, STUDENT_CONTROL)}
    for model, source in ((STUDENT_SUP, teacher), (STUDENT_CONTROL, teacher), (STUDENT_UNSUP, pretrained)):
        s, t = roles[model].encoder, source.encoder
        for k in (1, 2):  # micro: 4 layers, so student layer k <- layer 2k
            assert _same(s.encoder.layers[k - 1], t.encoder.layers[2 * k - 1]), (model, k)
        assert _same(s.feature_extractor, t.feature_extractor) and _same(s.feature_projection, t.feature_projection)
    assert _same(roles[STUDENT_SUP].head, teacher.head) and _same(roles[STUDENT_CONTROL].head, teacher.head)
    fresh = roles[STUDENT_UNSUP].head.weight
    assert not torch.allclose(fresh, teacher.head.weight) and not torch.allclose(fresh, pretrained.head.weight)
    # the keys flip the readings: MLKD from the pretrained encoder (the fourth cell), CE from the teacher
    flipped = dataclasses.replace(cfg, sup_init="pretrained", unsup_init="teacher")
    sup = Role.of(STUDENT_SUP, flipped, teacher, bank)
    assert sup.distils and _same(sup.model.encoder.encoder.layers[0], pretrained.encoder.encoder.layers[1])
    unsup = Role.of(STUDENT_UNSUP, flipped, teacher, bank)
    assert not unsup.distils and _same(unsup.model.head, teacher.head)


def test_labels_are_the_models_classes_in_order():
    from transformers import Wav2Vec2Config

    from mlkd_lib.method.models import MICRO, EmotionClassifier
    model = build_teacher("micro", ["cal", "neu", "hap", "sad", "ang", "fea"])
    assert model.labels == ("cal", "neu", "hap", "sad", "ang", "fea") and model.head.out_features == 6
    assert build_student(model, 2).labels == model.labels
    with pytest.raises(TypeError, match="class names"):
        EmotionClassifier(Wav2Vec2Config(**MICRO), 4)  # a count is not the classes
    with pytest.raises(ValueError, match="distinct"):
        build_teacher("micro", ["neu", "neu"])
