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


def test_checkpoints_round_trip_as_data_and_the_older_format_is_still_read(tmp_path):
    torch.manual_seed(0)
    model = build_teacher("micro")
    save_best(model, tmp_path / "best.pt", "teacher", 3, 0.5)
    raw = torch.load(tmp_path / "best.pt", weights_only=True)  # plain data: loads with nothing allowed
    assert isinstance(raw["config"], dict) and raw["epoch"] == 3
    again = load_model(tmp_path / "best.pt")
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
    # the format before: the config as a pickled Wav2Vec2Config object
    torch.save({"model": model.state_dict(), "wav2vec2_config": model.config, "role": "teacher", "num_labels": 4,
                "epoch": 2, "val_ua": 0.4}, tmp_path / "old.pt")
    assert load_model(tmp_path / "old.pt").trained_epoch == 2


def test_a_full_disk_mid_save_keeps_the_previous_checkpoints_and_a_rerun_resumes(micro_data, tmp_path, monkeypatch):
    cfg, manifest, _ = micro_data
    parts = split(manifest, get_fold(manifest, "Ses01F"))
    cfg = dataclasses.replace(cfg, teacher_epochs=3)
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
