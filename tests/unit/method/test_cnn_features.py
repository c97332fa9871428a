"""A frozen CNN's outputs shared between a fold's models: what is read back is what the CNN computes, bit for bit, so
training and scoring give the same weights and predictions with or without sharing; only a CNN with the same weights
on the same input is ever served, a learning CNN never is, and a damaged file is computed anew."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch
from transformers import Wav2Vec2Config

from mlkd_lib.data.conditions.families import Condition
from mlkd_lib.data.folds import get_fold, split
from mlkd_lib.method.cnn_features import CnnFeatures
from mlkd_lib.method.evaluate import evaluate_conditions
from mlkd_lib.method.models import MICRO, EmotionClassifier, build_teacher
from mlkd_lib.method.train import train


@pytest.fixture
def frozen():
    torch.manual_seed(0)
    model = EmotionClassifier(Wav2Vec2Config(**MICRO)).eval()
    model.encoder.freeze_feature_encoder()
    return model


def _batch():
    g = torch.Generator().manual_seed(1)
    return torch.randn(3, 8_000, generator=g), torch.tensor([8_000, 6_000, 4_321])


def test_a_second_model_with_the_same_cnn_reads_what_the_first_computed(frozen, tmp_path):
    x, n = _batch()
    with torch.no_grad():
        plain = frozen(x, n).logits
        features = CnnFeatures(tmp_path)
        other = copy.deepcopy(frozen)
        with features.attached(frozen, other):
            first, second = frozen(x, n).logits, other(x, n).logits
    assert (features.computed, features.read) == (1, 1)
    assert torch.equal(first, plain) and torch.equal(second, plain)
    assert "forward" not in vars(frozen.encoder.feature_extractor)  # detached: the module is as it was
    assert list(frozen.state_dict()) == list(other.state_dict())


def test_other_weights_or_another_input_are_computed_not_read(frozen, tmp_path):
    x, n = _batch()
    features = CnnFeatures(tmp_path)
    other = copy.deepcopy(frozen)
    with torch.no_grad():
        other.encoder.feature_extractor.conv_layers[0].conv.weight[0, 0, 0] += 1e-3
        with features.attached(frozen, other):
            frozen(x, n)
            changed = other(x, n).logits
            frozen(x[:, :7_999], n.clamp(max=7_999))
        assert torch.equal(changed, other(x, n).logits)
    assert (features.computed, features.read) == (3, 0)


def test_a_cnn_that_learns_is_always_run(tmp_path):
    torch.manual_seed(0)
    model = EmotionClassifier(Wav2Vec2Config(**MICRO)).train()
    x, n = _batch()
    features = CnnFeatures(tmp_path)
    with features.attached(model):
        model(x, n).logits.sum().backward()
    assert features.computed == features.read == 0 and not list(tmp_path.iterdir())
    assert model.encoder.feature_extractor.conv_layers[0].conv.weight.grad is not None


def test_a_damaged_file_is_computed_again(frozen, tmp_path):
    x, n = _batch()
    features = CnnFeatures(tmp_path)
    with torch.no_grad(), features.attached(frozen):
        plain = frozen(x, n).logits
        (saved,) = tmp_path.glob("*.pt")
        saved.write_bytes(saved.read_bytes()[:100])
        again = frozen(x, n).logits
    assert (features.computed, features.read) == (2, 0) and torch.equal(again, plain)


def test_student_arms_train_and_score_the_same_with_shared_features(micro_data, study_data, tmp_path):
    cfg, manifest, bank = micro_data
    parts = split(manifest, get_fold(manifest, "Ses01F"))
    cfg = dataclasses.replace(cfg, student_epochs=2, batch_size=16)
    torch.manual_seed(0)
    teacher = build_teacher(cfg.model)
    shared = CnnFeatures(tmp_path / "features")

    def weights(name, features):
        train("student_unsup_from_teacher", cfg, parts["train"], parts["val"], tmp_path / name, bank, teacher,
              progress=False, features=features)
        return torch.load(tmp_path / name / "last.pt", weights_only=True)["model"]

    alone, first = weights("alone", None), weights("first", shared)
    computed, read = shared.computed, shared.read  # the first arm reads its own validation batches after epoch 1
    second = weights("second", shared)
    assert computed > 0 and shared.computed == computed and shared.read == 2 * read + computed  # the second: all read
    for w in (first, second):
        assert all(torch.equal(alone[k], w[k]) for k in alone)

    scfg, data = study_data
    conditions = [Condition("babble", 0.0), Condition("codec", None, "codec", 8.0)]
    models = {"a": teacher, "b": copy.deepcopy(teacher)}

    def scored(features):
        return evaluate_conditions(models, data.test, conditions, data.noise_bank, scfg.seed, scfg.level,
                                   progress=False, rirs=data.rirs, features=features)

    scoring = CnnFeatures(tmp_path / "eval")
    plain, served = scored(None), scored(scoring)
    assert scoring.computed > 0 and scoring.read == scoring.computed  # "b" computed nothing
    for name in models:
        assert plain[name].equals(served[name])
