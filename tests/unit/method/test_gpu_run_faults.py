"""What a multi-day GPU run of the paper preset needs, checked as far as a CPU machine can: resume
loads its checkpoint onto the CPU, results never depend on the batch for group-norm models (the
teacher's live targets equal its cached ones: test_train.py), test audio is cut like training audio, finished
steps leave no resume state behind, the disk cache is read as memory maps, loader workers change
nothing."""

from __future__ import annotations

import dataclasses
import io
import os

import numpy as np
import pytest
import soundfile as sf
import torch
from transformers import Wav2Vec2Config

from mlkd_lib.data import prepare
from mlkd_lib.data.conditions.families import Condition
from mlkd_lib.data.dataset import AudioCache, NoisyPairDataset
from mlkd_lib.data.folds import get_fold, split
from mlkd_lib.explore import players
from mlkd_lib.layout import StudyLayout
from mlkd_lib.method import checkpoint
from mlkd_lib.method.evaluate import exact_batches, predict_condition
from mlkd_lib.method.models import MICRO, EmotionClassifier, default_layer_map
from mlkd_lib.method.teacher_cache import TeacherTargets
from mlkd_lib.method.train import train
from mlkd_lib.study import notebook


def group_norm_model(seed: int = 0) -> EmotionClassifier:
    """wav2vec2-base's layout in miniature: group-norm feature encoder, no attention mask."""
    torch.manual_seed(seed)
    model = EmotionClassifier(Wav2Vec2Config(**dict(MICRO, feat_extract_norm="group")))
    assert not model.uses_attention_mask()
    return model.eval()


@pytest.fixture(scope="module")
def fold(micro_data):
    cfg, manifest, bank = micro_data
    parts = split(manifest, get_fold(manifest, "Ses01F"))
    return dataclasses.replace(cfg, teacher_epochs=2, student_epochs=1, batch_size=8), parts, bank


def test_resume_reads_the_checkpoint_onto_the_cpu_whatever_the_training_device(fold, tmp_path, monkeypatch):
    """On a GPU, ``torch.load(last.pt, map_location=cuda)`` put the saved CPU RNG state on the GPU and
    ``torch.set_rng_state`` rejected it. Here the training device is the CPU, so a load that follows
    the training device (a ``torch.device`` as map_location) is made to act like a GPU's: its tensors
    land on 'meta', which ``set_rng_state`` rejects just as it rejects a CUDA tensor."""
    cfg, parts, _ = fold
    train("teacher", cfg, parts["train"], parts["val"], tmp_path, stop_after_epoch=1, progress=False)
    real_load = torch.load

    def load_like_a_gpu_machine(path, map_location=None, **kw):
        if isinstance(map_location, torch.device):
            map_location = "meta"
        return real_load(path, map_location=map_location, **kw)

    monkeypatch.setattr(torch, "load", load_like_a_gpu_machine)
    result = train("teacher", cfg, parts["train"], parts["val"], tmp_path, progress=False)
    assert list(result.history.epoch) == [1, 2]


def test_group_norm_evaluation_does_not_depend_on_the_batch_size(fold):
    cfg, parts, bank = fold
    model, test = group_norm_model(), parts["test"].head(12)
    assert test.duration_s.nunique() > 3  # utterances of different lengths: padding would reach the model
    runs = {bs: predict_condition({"m": model}, test, Condition("factory", 5.0), bank, seed=0, batch_size=bs)["m"]
            for bs in (1, 32)}
    probs = [c for c in runs[1].columns if c.startswith("p_")]
    assert list(runs[1].utt_id) == list(test.utt_id) == list(runs[32].utt_id)
    np.testing.assert_allclose(runs[1][probs].values, runs[32][probs].values, atol=1e-5)
    assert (runs[1].pred == runs[32].pred).all()


def test_exact_batches_mix_lengths_only_for_models_that_honour_the_mask():
    lengths = [5, 3, 5, 3, 7]
    assert exact_batches(group_norm_model(), lengths, 32) == [[1, 3], [0, 2], [4]]
    masked = EmotionClassifier(Wav2Vec2Config(**MICRO))
    assert exact_batches(masked, lengths, 2) == [[1, 3], [0, 2], [4]]  # similar lengths together, any mix


def test_test_utterances_are_cut_at_max_seconds_like_training(fold, tmp_path):
    cfg, parts, bank = fold
    cfg = dataclasses.replace(cfg, max_seconds=0.6, snrs=[5.0], noise_types=["factory"])
    test = parts["test"].head(6)
    cut = test.copy()
    for i, r in enumerate(test.itertuples()):  # the same utterances, cut on disk
        x, rate = sf.read(r.path, dtype="float32")
        sf.write(tmp_path / f"{i}.wav", x[: int(cfg.max_seconds * rate)], rate, subtype="FLOAT")
        cut.iloc[i, cut.columns.get_loc("path")] = str(tmp_path / f"{i}.wav")
    model, data = group_norm_model(), dataclasses.replace(prepare.load_fold(cfg, "Ses01F"), test=test)
    for d, name in ((data, "whole"), (dataclasses.replace(data, test=cut), "cut")):
        (tmp_path / name).mkdir()
        notebook.evaluate_and_save(model, "teacher", cfg, d, tmp_path / name, progress=False)
    whole, pre_cut = (np.loadtxt(tmp_path / n / "predictions.csv", delimiter=",", skiprows=1, usecols=(5, 6, 7, 8))
                      for n in ("whole", "cut"))
    np.testing.assert_allclose(whole, pre_cut, atol=1e-6)


def test_the_mix_player_plays_the_noisy_audio_the_models_hear(fold):
    """01's player read utterances whole: a long one was played, and levelled (so the noise's gain set),
    unlike the cut audio every model hears under that condition."""
    cfg, parts, bank = fold
    test, cond = parts["test"].head(1), Condition(sorted(bank)[0], 5.0)
    assert test.duration_s.iloc[0] > 0.6
    player = players.mix_player(test, bank, [cond.snr_db], cfg.seed, cfg.level, max_seconds=0.6)
    heard, _ = sf.read(io.BytesIO(player.children[1].children[1].children[1].value), dtype="float32")
    item = NoisyPairDataset(test, bank, cond, seed=cfg.seed, level=cfg.level, audio=AudioCache(0.6))[0]
    expected = np.clip(item["noisy"] * players.shared_gain(item["clean"], item["noisy"]), -1, 1)
    assert len(heard) == len(expected) == int(0.6 * 16_000)
    np.testing.assert_allclose(heard, expected, atol=1e-4)  # 16-bit WAV


def test_a_finished_step_drops_its_resume_state_unless_asked_to_keep_it(tmp_path):
    for keep in (False, True):
        out = StudyLayout(tmp_path / str(keep)).fold("Ses01F").model("student_sup")
        out.teacher_cache.mkdir(parents=True)
        (out.teacher_cache / "u1").mkdir()
        for f in (out.best_ckpt, out.last_ckpt, out.metrics):
            f.write_text("x")
        checkpoint.finish_step(out, keep_checkpoints=keep, fold="Ses01F")
        assert out.done.is_file() and out.best_ckpt.is_file() and out.metrics.is_file()
        assert out.last_ckpt.exists() is keep and out.teacher_cache.exists() is keep


def test_the_disk_cache_is_read_as_memory_maps_and_equals_the_memory_cache(fold, tmp_path):
    cfg, parts, _ = fold
    teacher = group_norm_model()
    layers = list(default_layer_map(2, teacher.num_layers).values())
    audio = AudioCache()
    utts = [(r.utt_id, audio.get(r.utt_id, r.path)) for r in parts["train"].head(3).itertuples()]
    mem = TeacherTargets(teacher, layers, torch.device("cpu"), "memory")
    disk = TeacherTargets(teacher, layers, torch.device("cpu"), "disk", tmp_path / "cache")
    for t in (mem, disk):
        t.fill(utts, progress=False)
    files = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert files == sorted([f"h{t}.npy" for t in layers] + ["logits.npy", "index.json"])
    reopened = TeacherTargets(teacher, layers, torch.device("cpu"), "disk", tmp_path / "cache")
    assert isinstance(reopened._hidden[layers[0]], np.memmap) and reopened._hidden[layers[0]].dtype == np.float16
    for u, _ in utts:
        (h_mem, lg_mem), (h_disk, lg_disk) = mem.get(u), disk.get(u)
        torch.testing.assert_close(lg_disk, lg_mem)
        for t in layers:
            torch.testing.assert_close(h_disk[t], h_mem[t], atol=2e-3 * float(h_mem[t].abs().max()), rtol=1e-2)
    # one gather per layer gives each utterance its own frames, zero-padded to the batch's length
    ids = [u for u, _ in utts][::-1]
    frames = max(mem.get(u)[0][layers[0]].shape[0] for u in ids) + 2
    hidden, logits = reopened.batch(ids, frames)
    for i, u in enumerate(ids):
        h = mem.get(u)[0][layers[-1]]
        torch.testing.assert_close(hidden[layers[-1]][i, : len(h)], h, atol=2e-3 * float(h.abs().max()), rtol=1e-2)
        assert not hidden[layers[-1]][i, len(h):].any()
        torch.testing.assert_close(logits[i], mem.get(u)[1])


def test_a_disk_cache_killed_while_filling_is_filled_again(fold, tmp_path):
    """The store's index is written last: without it the arrays are not trusted, whatever they hold."""
    cfg, parts, _ = fold
    teacher = group_norm_model()
    audio = AudioCache()
    utts = [(r.utt_id, audio.get(r.utt_id, r.path)) for r in parts["train"].head(2).itertuples()]
    first = TeacherTargets(teacher, [1], torch.device("cpu"), "disk", tmp_path / "cache")
    first.fill(utts, progress=False)
    want = first.get(utts[0][0])[1]
    (tmp_path / "cache" / "index.json").unlink()  # as a kill before the index was written leaves it
    np.lib.format.open_memmap(tmp_path / "cache" / "logits.npy", "r+")[:] = 0
    again = TeacherTargets(teacher, [1], torch.device("cpu"), "disk", tmp_path / "cache")
    assert not again._index
    again.fill(utts, progress=False)
    torch.testing.assert_close(again.get(utts[0][0])[1], want)


def test_loader_workers_change_nothing(fold, tmp_path):
    cfg, parts, bank = fold
    teacher = group_norm_model()
    runs = {w: train("student_unsup", dataclasses.replace(cfg, loader_workers=w), parts["train"], parts["val"],
                     tmp_path / str(w), bank, teacher, progress=False) for w in (0, 2)}
    a, b = (torch.load(r.best_path, weights_only=True)["model"] for r in runs.values())
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=0, rtol=0)


def test_the_loader_workers_live_for_the_whole_training(fold, tmp_path, monkeypatch):
    """Forked once, not every epoch: a fork copies the process with its model and corpus, which on a GPU host
    was much of a short epoch. Each item records the process that read it."""
    from mlkd_lib.method.step_time import StepClock
    from mlkd_lib.method.train import prepare, run_epoch
    cfg, parts, bank = fold
    readers = tmp_path / "readers"
    read = NoisyPairDataset.__getitem__

    def recorded(self, index):
        with open(readers, "a") as f:
            f.write(f"{os.getpid()}\n")
        return read(self, index)

    monkeypatch.setattr(NoisyPairDataset, "__getitem__", recorded)
    run = prepare("teacher", dataclasses.replace(cfg, loader_workers=2), parts["train"], parts["val"],
                  tmp_path / "t", progress=False)
    steps = [run_epoch(run, epoch, StepClock(run.device))["steps"] for epoch in range(3)]
    pids = set(readers.read_text().split())
    assert min(steps) > 1 and len(pids) == 2 and str(os.getpid()) not in pids


def test_the_teacher_goes_where_its_targets_are_computed():
    """A teacher loaded from its checkpoint sits on the CPU; targets computed on the GPU (the representation
    diagnostic's reference) need it there, in eval mode, or the first convolution meets a CUDA input."""
    teacher = group_norm_model().train()
    targets = TeacherTargets(teacher, [1, 2], torch.device("meta"), "memory")
    assert next(targets.teacher.parameters()).device.type == "meta" and not targets.teacher.training
