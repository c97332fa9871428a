"""The objective as training builds it, term by term: what each role hears, the config's α, β, T and T² reaching
the loss in their places, L_ML against the teacher's even layers on the clean audio, and a resume state that would
run code refused before anything trains."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from mlkd_lib.data.batches import bucketed_batches
from mlkd_lib.data.dataset import NoisyPairDataset, collate
from mlkd_lib.data.folds import get_fold, split
from mlkd_lib.method import train as training
from mlkd_lib.method.checkpoint import CheckpointError
from mlkd_lib.method.losses import kd_loss, multilevel_loss
from mlkd_lib.method.models import EmotionClassifier, build_student, build_teacher
from mlkd_lib.method.teacher_cache import TeacherTargets
from mlkd_lib.method.train import objective, train


@pytest.fixture(scope="module")
def fold(micro_data):
    cfg, manifest, bank = micro_data
    parts = split(manifest, get_fold(manifest, "Ses01F"))
    return dataclasses.replace(cfg, teacher_epochs=1, student_epochs=1, batch_size=8), parts, bank


def _first_batch(cfg, parts, bank):
    """The first training batch as train() draws it: epoch 0's bucketed order, the dataset's epoch-0 noise."""
    ds = NoisyPairDataset(parts["train"], bank, "random", cfg.snrs, cfg.seed, cfg.level, labels=cfg.emotions)
    order = bucketed_batches(parts["train"]["duration_s"].to_numpy(), cfg.batch_size,
                             torch.Generator().manual_seed(cfg.seed * 100_003))
    return collate([ds[i] for i in order[0]])


@pytest.mark.parametrize("role", ["teacher", "student_sup", "student_unsup"])
def test_the_teacher_hears_clean_speech_and_every_student_the_noisy_mix(fold, tmp_path, monkeypatch, role):
    cfg, parts, bank = fold
    heard = []
    forward = EmotionClassifier.forward

    def spy(self, waveforms, lengths=None, output_hidden_states=False):
        if self.training:  # the model being trained (the teacher's targets are computed in eval mode)
            heard.append(waveforms.detach().clone())
        return forward(self, waveforms, lengths, output_hidden_states)

    monkeypatch.setattr(EmotionClassifier, "forward", spy)
    torch.manual_seed(0)
    teacher = None if role == "teacher" else build_teacher(cfg.model, cfg.emotions)
    train(role, cfg, parts["train"], parts["val"], tmp_path, bank, teacher, progress=False)
    batch = _first_batch(cfg, parts, bank)
    expected, other = ("clean", "noisy") if role == "teacher" else ("noisy", "clean")
    assert torch.equal(heard[0], batch[expected])
    assert not torch.allclose(heard[0], batch[other])


@pytest.mark.parametrize("alpha, beta, temperature, t_squared", [(0.3, 2.0, 7.0, True), (0.7, 0.0, 2.0, False)])
def test_the_objective_puts_each_config_value_in_its_place(fold, alpha, beta, temperature, t_squared):
    cfg, parts, bank = fold
    cfg = dataclasses.replace(cfg, alpha=alpha, beta=beta, temperature=temperature, kd_t_squared=t_squared)
    torch.manual_seed(0)
    teacher = build_teacher(cfg.model, cfg.emotions).eval()
    student = build_student(teacher, cfg.student_layers).eval()
    mapping = {1: 2, 2: 4}  # micro: 2 of 4 layers
    b = _first_batch(cfg, parts, bank)
    with torch.no_grad():
        out = student(b["noisy"], b["lengths"], output_hidden_states=True)
        targets = TeacherTargets(teacher, list(mapping.values()), torch.device("cpu"), "off")
        total, parts_ = objective(cfg, out, b["label"], b, targets, mapping)
        clean = teacher(b["clean"], b["lengths"], output_hidden_states=True)  # the teacher on the CLEAN audio
    ce = torch.nn.functional.cross_entropy(out.logits, b["label"]).item()
    kd = kd_loss(out.logits, clean.logits, temperature, t_squared).item()
    ml = multilevel_loss(out.hidden_states, clean.hidden_states, mapping, out.frame_mask).item() if beta else 0.0
    assert parts_["ce"] == pytest.approx(ce, rel=1e-6)
    assert parts_["kd"] == pytest.approx(kd, rel=1e-5)
    assert parts_["ml"] == pytest.approx(ml, rel=1e-5, abs=1e-9)
    if not t_squared:  # T² dropped: the KL term alone
        assert parts_["kd"] == pytest.approx(kd_loss(out.logits, clean.logits, temperature).item() / temperature ** 2,
                                             rel=1e-5)
    assert total.item() == pytest.approx(alpha * (kd + beta * ml) + (1 - alpha) * ce, rel=1e-5)
    # the terms in swapped places give another number: the test would see alpha and beta exchanged
    assert total.item() != pytest.approx(beta * (kd + alpha * ml) + (1 - beta) * ce, rel=1e-3)


def test_training_pairs_student_layer_k_with_teacher_layer_2k(fold, tmp_path, monkeypatch):
    cfg, parts, bank = fold
    seen = []
    real = training.mlkd_objective

    def spy(*args, **kwargs):
        seen.append(args[5])  # the layer map the objective is given
        return real(*args, **kwargs)

    monkeypatch.setattr(training, "mlkd_objective", spy)
    torch.manual_seed(0)
    teacher = build_teacher(cfg.model, cfg.emotions)
    train("student_sup", cfg, parts["train"].head(8), parts["val"].head(4), tmp_path, bank, teacher, progress=False)
    assert seen and all(m == {1: 2, 2: 4} for m in seen)


class RunsCode:
    """What a hostile resume state could hold: unpickling it would create a file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_hostile_resume_state_is_refused_before_anything_trains(fold, tmp_path):
    cfg, parts, bank = fold
    marker = tmp_path / "created-by-the-pickle"
    torch.save({"model": RunsCode(marker), "epoch": 1}, tmp_path / "last.pt")
    with pytest.raises(CheckpointError, match="last.pt.*never unpickled as code"):
        train("teacher", cfg, parts["train"], parts["val"], tmp_path, progress=False)
    assert not marker.exists() and not (tmp_path / "best.pt").exists()
