"""Checkpoints are data: a pickle that would run code is refused, an older best checkpoint is still
read, and a disk that fills up mid-save leaves the previous checkpoints intact and a rerun resumes."""

from __future__ import annotations

import dataclasses
import errno

import pytest
import torch

from mlkd_lib.data.folds import get_fold, split
from mlkd_lib.method import checkpoint
from mlkd_lib.method.checkpoint import CheckpointError, load_model, save_best
from mlkd_lib.method.models import build_teacher
from mlkd_lib.method.train import train
from mlkd_lib.names import EMOTIONS


class RunsCode:
    """What a hostile .pt could hold: unpickling it would create a file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_checkpoint_whose_pickle_would_run_code_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "created-by-the-pickle"
    torch.save({"model": RunsCode(marker), "config": {}, "num_labels": 4}, tmp_path / "someone_elses.pt")
    with pytest.raises(CheckpointError, match="someone_elses.pt.*never unpickled as code"):
        load_model(tmp_path / "someone_elses.pt")
    assert not marker.exists()
    (tmp_path / "junk.pt").write_bytes(b"Memo value not found")
    with pytest.raises(CheckpointError, match="junk.pt: not a readable checkpoint"):
        load_model(tmp_path / "junk.pt")


def test_checkpoints_round_trip_as_data_and_the_older_formats_are_still_read(tmp_path):
    torch.manual_seed(0)
    model = build_teacher("micro", ["ang", "sad", "neu"])
    model.set_spec_augment(0.05, 5)  # with SpecAugment's mask vector, as a pretrained encoder brings
    save_best(model, tmp_path / "best.pt", "teacher", 3, 0.5)
    raw = torch.load(tmp_path / "best.pt", weights_only=True)  # plain data: loads with nothing allowed
    assert isinstance(raw["config"], dict) and raw["epoch"] == 3
    assert raw["labels"] == ["ang", "sad", "neu"] and raw["config"]["model_type"] == "wav2vec2"
    again = load_model(tmp_path / "best.pt")
    assert again.labels == ("ang", "sad", "neu")
    assert model.state_dict().keys() == again.state_dict().keys()
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
    # the formats before: the encoder's weights under "wav2vec2.", no labels (the paper's first num_labels), and
    # format 1 with the config as a pickled Wav2Vec2Config object
    torch.manual_seed(1)
    four = build_teacher("micro")
    four.set_spec_augment(0.05, 5)
    old_keys = {("wav2vec2." + k[len("encoder."):] if k.startswith("encoder.") else k): v
                for k, v in four.state_dict().items()}
    torch.save({"format": 2, "model": old_keys, "config": four.config.to_dict(), "role": "teacher", "num_labels": 4,
                "epoch": 5, "val_ua": 0.4}, tmp_path / "format2.pt")
    torch.save({"model": old_keys, "wav2vec2_config": four.config, "role": "teacher", "num_labels": 4,
                "epoch": 2, "val_ua": 0.4}, tmp_path / "format1.pt")
    x = torch.randn(1, 8000)
    for name, epoch in (("format2.pt", 5), ("format1.pt", 2)):
        old = load_model(tmp_path / name)
        assert old.trained_epoch == epoch and old.labels == EMOTIONS
        assert all(torch.equal(a, b) for a, b in zip(four.state_dict().values(), old.state_dict().values()))
        with torch.no_grad():
            assert torch.equal(old.eval()(x).logits, four.eval()(x).logits)


def test_a_resume_state_written_before_the_rename_still_resumes(tmp_path):
    """A last.pt whose encoder weights sit under "wav2vec2." loads into today's model (resume and the last
    epoch's model)."""
    from mlkd_lib.layout import ModelDir
    from mlkd_lib.method.checkpoint import last_epoch_model, load_resume, save_resume
    torch.manual_seed(0)
    model = build_teacher("micro")
    opt = torch.optim.AdamW(model.parameters())
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
    out = ModelDir(tmp_path)
    save_resume(out.last_ckpt, model, opt, sched, 3, [{"epoch": 3}], 0.5)
    state = torch.load(out.last_ckpt, weights_only=True)
    state["model"] = {("wav2vec2." + k[len("encoder."):] if k.startswith("encoder.") else k): v
                      for k, v in state["model"].items()}
    torch.save(state, out.last_ckpt)
    torch.manual_seed(1)
    fresh = build_teacher("micro")
    fresh_opt = torch.optim.AdamW(fresh.parameters())
    fresh_sched = torch.optim.lr_scheduler.LambdaLR(fresh_opt, lambda step: 1.0)
    assert load_resume(out.last_ckpt, fresh, fresh_opt, fresh_sched)[0] == 3
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), fresh.state_dict().values()))
    assert last_epoch_model(out, fresh).trained_epoch == 3


def test_a_checkpoint_of_an_unsupported_encoder_is_refused_naming_it(tmp_path):
    model = build_teacher("micro")
    config = dict(model.config.to_dict(), model_type="whisper")
    torch.save({"model": model.state_dict(), "config": config, "labels": list(model.labels), "num_labels": 4},
               tmp_path / "odd.pt")
    with pytest.raises(CheckpointError, match="odd.pt.*'whisper'.*wav2vec2, hubert, wavlm, data2vec-audio"):
        load_model(tmp_path / "odd.pt")


def test_a_full_disk_mid_save_keeps_the_previous_checkpoints_and_a_rerun_resumes(micro_data, tmp_path, monkeypatch):
    cfg, manifest, _ = micro_data
    parts = split(manifest, get_fold(manifest, "Ses01F"))
    cfg = dataclasses.replace(cfg, teacher_epochs=2)
    reference = train("teacher", cfg, parts["train"], parts["val"], tmp_path / "reference", progress=False)
    out = tmp_path / "run"
    real_save, calls = torch.save, {"n": 0}

    def save_until_the_disk_is_full(obj, path, *a, **k):
        calls["n"] += 1
        if calls["n"] > 2:  # epoch 1's best.pt and last.pt go through; epoch 2's writes fill the disk
            with open(path, "wb") as fh:
                fh.write(b"half a checkpoint")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, path, *a, **k)

    monkeypatch.setattr(checkpoint.torch, "save", save_until_the_disk_is_full)
    with pytest.raises(OSError, match=r"no space left on the device of .*run to write .*needs about \d+ MiB"):
        train("teacher", cfg, parts["train"], parts["val"], out, progress=False)
    assert not list(out.glob("*.tmp"))  # the half-written file is gone
    assert torch.load(out / "last.pt", weights_only=True)["epoch"] == 1 and load_model(out / "best.pt")
    monkeypatch.setattr(checkpoint.torch, "save", real_save)  # space freed
    resumed = train("teacher", cfg, parts["train"], parts["val"], out, progress=False)
    assert list(resumed.history.loss) == list(reference.history.loss)
    a, b = (torch.load(d / "last.pt", weights_only=True)["model"] for d in (tmp_path / "reference", out))
    assert all(torch.equal(a[k], b[k]) for k in a)
