"""Training: resume is exact, the teacher stays frozen, the teacher cache changes nothing."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import Wav2Vec2Config

from mlkd_lib.data.dataset import NoisyPairDataset, collate
from mlkd_lib.data.folds import get_fold, split
from mlkd_lib.method.checkpoint import load_model
from mlkd_lib.method.losses import mlkd_objective
from mlkd_lib.method.models import MICRO, EmotionClassifier, build_student, build_teacher, default_layer_map
from mlkd_lib.method.teacher_cache import TeacherTargets
from mlkd_lib.method.temperature import fit_temperature
from mlkd_lib.method.train import train


@pytest.fixture(scope="module")
def fold(micro_data):
    cfg, manifest, bank = micro_data
    parts = split(manifest, get_fold(manifest, "Ses01F"))
    cfg = dataclasses.replace(cfg, teacher_epochs=3, student_epochs=2, batch_size=16)
    return cfg, parts, bank


def _weights(path):
    return torch.load(path, weights_only=True)["model"]


def test_resumed_run_ends_with_the_same_weights(fold, tmp_path):
    cfg, parts, bank = fold
    full = train("teacher", cfg, parts["train"], parts["val"], tmp_path / "full", progress=False)
    train("teacher", cfg, parts["train"], parts["val"], tmp_path / "cut", stop_after_epoch=1, progress=False)
    assert torch.load(tmp_path / "cut" / "last.pt", weights_only=True)["epoch"] == 1
    resumed = train("teacher", cfg, parts["train"], parts["val"], tmp_path / "cut", progress=False)
    a, b = _weights(tmp_path / "full" / "last.pt"), _weights(tmp_path / "cut" / "last.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert list(full.history.loss) == list(resumed.history.loss)
    # each epoch says where its steps' time went: every phase took time, and the phases fit in the step
    csv = pd.read_csv(tmp_path / "full" / "history.csv")
    phases = csv[["data_s", "forward_s", "backward_s", "optimizer_s"]]
    assert (phases > 0).all().all() and (phases.sum(axis=1) <= csv.step_s * 1.001).all() and (csv.other_s >= 0).all()
    assert (csv.timed_steps == -(-len(parts["train"]) // cfg.batch_size)).all()  # on the CPU: every step
    # a finished run started again trains nothing more
    stamp = (tmp_path / "full" / "last.pt").stat().st_mtime_ns
    again = train("teacher", cfg, parts["train"], parts["val"], tmp_path / "full", progress=False)
    assert len(again.history) == cfg.teacher_epochs and (tmp_path / "full" / "last.pt").stat().st_mtime_ns == stamp


def test_students_resume_exactly_too(fold, tmp_path):
    cfg, parts, bank = fold
    torch.manual_seed(0)
    teacher = build_teacher(cfg.model)
    train("student_sup", cfg, parts["train"], parts["val"], tmp_path / "full", bank, teacher, progress=False)
    train("student_sup", cfg, parts["train"], parts["val"], tmp_path / "cut", bank, teacher,
          stop_after_epoch=1, progress=False)
    train("student_sup", cfg, parts["train"], parts["val"], tmp_path / "cut", bank, teacher, progress=False)
    a, b = _weights(tmp_path / "full" / "last.pt"), _weights(tmp_path / "cut" / "last.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_no_gradient_reaches_the_teacher(fold, tmp_path):
    cfg, parts, bank = fold
    torch.manual_seed(0)
    teacher = build_teacher(cfg.model)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    res = train("student_sup", dataclasses.replace(cfg, teacher_cache="off"), parts["train"], parts["val"],
                tmp_path / "s", bank, teacher, progress=False)
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())
    assert all(p.grad is None for p in teacher.parameters())
    student = load_model(res.best_path)
    assert student.num_layers == cfg.student_layers
    assert res.history.ml.notna().all() and res.history.kd.notna().all()


def _batch(cfg, parts, bank):
    ds = NoisyPairDataset(parts["train"].head(6), bank, "random", cfg.snrs, seed=0)
    return ds, collate([ds[i] for i in range(6)])


@pytest.mark.parametrize("storage, tol", [("memory", 1e-5), ("disk", 2e-3)])
def test_cached_teacher_targets_give_the_same_loss(fold, tmp_path, storage, tol):
    cfg, parts, bank = fold
    torch.manual_seed(0)
    teacher = build_teacher(cfg.model).eval()
    student = build_student(teacher, cfg.student_layers).eval()
    mapping = default_layer_map(cfg.student_layers, teacher.num_layers)
    ds, b = _batch(cfg, parts, bank)
    with torch.no_grad():
        out = student(b["noisy"], b["lengths"], output_hidden_states=True)
        live = teacher(b["clean"], b["lengths"], output_hidden_states=True)
        targets = TeacherTargets(teacher, list(mapping.values()), torch.device("cpu"), storage, tmp_path / "c")
        targets.fill(((r.utt_id, ds.audio.get(r.utt_id, r.path)) for r in ds.rows.itertuples()), progress=False)
        hidden, logits = targets.batch(b["utt_id"], out.frame_mask.shape[1])
    args = (out.logits, b["label"], out.hidden_states)
    loss_live, parts_live = mlkd_objective(*args, live.logits, live.hidden_states, mapping, out.frame_mask)
    loss_cached, parts_cached = mlkd_objective(*args, logits, hidden, mapping, out.frame_mask)
    assert parts_live["ml"] > 0 and parts_live["kd"] > 0
    assert loss_cached.item() == pytest.approx(loss_live.item(), rel=tol)
    assert parts_cached["ml"].item() == pytest.approx(parts_live["ml"].item(), rel=tol)


@pytest.mark.parametrize("norm", ["layer", "group"])
def test_training_with_and_without_the_cache_matches(fold, tmp_path, norm):
    """Live targets equal cached ones, also for a group-norm teacher (wav2vec2-base's kind), which sees
    no attention mask: its live targets are computed unpadded, one utterance at a time, like the cache."""
    cfg, parts, bank = fold
    cfg = dataclasses.replace(cfg, student_epochs=1)
    torch.manual_seed(0)
    teacher = EmotionClassifier(Wav2Vec2Config(**dict(MICRO, feat_extract_norm=norm)))
    runs = {c: train("student_sup", dataclasses.replace(cfg, teacher_cache=c), parts["train"], parts["val"],
                     tmp_path / c, bank, teacher, progress=False).history for c in ("memory", "off")}
    # a layer-norm teacher's live targets come from padded batches, the cache's from single utterances: the
    # same up to float rounding (atol for the KD term, a few thousandths here)
    cols = ["loss", "ml", "kd", "val_ml", "val_kd"]
    np.testing.assert_allclose(runs["memory"][cols].values, runs["off"][cols].values, rtol=1e-4, atol=1e-6)


def test_bad_roles_and_missing_inputs(fold, tmp_path):
    cfg, parts, bank = fold
    with pytest.raises(ValueError, match="role"):
        train("professor", cfg, parts["train"], parts["val"], tmp_path)
    with pytest.raises(ValueError, match="teacher"):
        train("student_sup", cfg, parts["train"], parts["val"], tmp_path, bank)
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        load_model(tmp_path / "no-such-checkpoint.pt")


def test_bucketed_batches_cover_every_utterance_once_and_group_lengths():
    from mlkd_lib.data.batches import bucketed_batches
    lengths = np.random.default_rng(0).uniform(1, 3, 100)
    batches = bucketed_batches(lengths, 8, torch.Generator().manual_seed(0))
    assert sorted(i for b in batches for i in b) == list(range(100))
    spread = np.mean([np.ptp(lengths[b]) for b in batches if len(b) > 1])
    assert spread < 0.5 * np.ptp(lengths)  # far less padding than random batches
    assert batches != bucketed_batches(lengths, 8, torch.Generator().manual_seed(1))


@pytest.mark.parametrize("selection, kept", [("best", 3), ("last", 4)])
def test_model_selection_keeps_the_best_validation_epoch_ties_to_the_later(fold, tmp_path, monkeypatch, selection,
                                                                           kept):
    from mlkd_lib.method import train as train_module
    cfg, parts, _ = fold
    scores = iter([0.50, 0.60, 0.60, 0.55])  # epochs 2 and 3 tie: the later one is kept
    # epoch k's validation logits are k times epoch 1's: the NLL-optimal temperature scales with them, k · T_1
    base, labels = np.array([[2.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 1.5, 0], [1.0, 0, 0, 0]]), np.array([0, 2, 2, 1])
    epoch = iter(range(1, 5))
    monkeypatch.setattr(train_module, "validate", lambda *a, **k: ({"val_ua": next(scores), "val_wa": 0.0},
                                                                   next(epoch) * base, labels))
    cfg = dataclasses.replace(cfg, teacher_epochs=4, selection=selection)
    result = train("teacher", cfg, parts["train"], parts["val"], tmp_path, progress=False)
    assert load_model(result.best_path).trained_epoch == kept
    # the teacher's validation is clean speech: its temperature is the kept epoch's, fitted on that epoch's logits
    t1 = fit_temperature(base, labels)
    assert 0.5 < t1 < 2 and result.temperature_scaling["temperature"] == pytest.approx(kept * t1, rel=1e-5)


def test_a_distilled_student_records_the_objective_on_validation_too(fold, tmp_path):
    cfg, parts, bank = fold
    torch.manual_seed(0)
    history = train("student_sup", cfg, parts["train"], parts["val"], tmp_path, bank, build_teacher(cfg.model),
                    progress=False).history
    assert {"ml", "val_ml", "val_kd", "val_ce"} <= set(history.columns)
    assert (history.val_ml > 0).all() and history.val_ml.notna().all()
    ce_only = train("student_unsup_from_teacher", cfg, parts["train"], parts["val"], tmp_path / "ce", bank,
                    build_teacher(cfg.model), progress=False).history
    assert "val_ml" not in ce_only and "ml" not in ce_only


def test_the_studys_classes_are_the_models_in_their_order(fold, tmp_path):
    """``emotions`` picks the classes and their logit order: the teacher is built with them, trained and
    scored on them, keeps them in its checkpoint and hands them to its students; a teacher of other
    classes is refused."""
    from mlkd_lib.method.roles import Role
    cfg, parts, bank = fold
    order = ["sad", "ang", "neu"]
    cfg = dataclasses.replace(cfg, emotions=order, teacher_epochs=1, student_epochs=1)
    train_df, val_df = (parts[k][parts[k].emotion.isin(order)] for k in ("train", "val"))
    result = train("teacher", cfg, train_df, val_df, tmp_path / "teacher", progress=False)
    teacher = load_model(result.best_path)
    assert teacher.labels == tuple(order) and teacher.head.out_features == 3
    assert 0.0 <= result.history.val_ua.iloc[-1] <= 1.0
    student = Role.of("student_sup", cfg, teacher, bank).model
    assert student.labels == tuple(order)
    with pytest.raises(ValueError, match=r"teacher's classes \['sad', 'ang', 'neu'\].*\['neu', 'ang', 'sad'\]"):
        Role.of("student_sup", dataclasses.replace(cfg, emotions=["neu", "ang", "sad"]), teacher, bank)
    sup = train("student_sup", cfg, train_df, val_df, tmp_path / "student", bank, teacher, progress=False)
    assert load_model(sup.best_path).labels == tuple(order) and {"val_ml", "val_kd"} <= set(sup.history)


def test_a_students_temperature_is_fitted_on_the_clean_validation_speech_alone(fold, tmp_path, monkeypatch):
    """A student validates on noisy speech, so its temperature comes from a pass of the selected weights over the
    validation utterances' clean audio: the fit reads those utterances and no other — no training utterance, no
    test utterance — and mixes no noise; the checkpoint carries it, fitted on as many utterances."""
    from mlkd_lib.data import dataset
    from mlkd_lib.method import train as train_module
    cfg, parts, bank = fold
    cfg = dataclasses.replace(cfg, student_epochs=1)
    log, span = [], []  # what was read (an utterance id) or mixed (None), in order
    get, mix, fit = dataset.AudioCache.get, dataset.mix_at_snr, train_module.fitted_temperature
    monkeypatch.setattr(dataset.AudioCache, "get", lambda self, utt, path: log.append(utt) or get(self, utt, path))
    monkeypatch.setattr(dataset, "mix_at_snr", lambda *a, **k: log.append(None) or mix(*a, **k))

    def watched(run):
        span.append(len(log))
        out = fit(run)
        span.append(len(log))
        return out

    monkeypatch.setattr(train_module, "fitted_temperature", watched)
    torch.manual_seed(0)
    result = train("student_unsup_from_teacher", cfg, parts["train"], parts["val"], tmp_path, bank,
                   build_teacher(cfg.model), progress=False)
    during = log[span[0]:span[1]]
    assert None not in during  # clean speech: no noise mixed while fitting
    assert set(during) == set(parts["val"].utt_id) and not set(during) & set(parts["test"].utt_id)
    stored = torch.load(result.best_path, weights_only=True)["temperature_scaling"]
    assert stored == result.temperature_scaling and stored["utterances"] == len(parts["val"])
    assert load_model(result.best_path).calibration_temperature == stored["temperature"] > 0
