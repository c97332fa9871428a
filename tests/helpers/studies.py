"""Watching a study run from outside: when its teacher is mid-training (to kill it there), and after which
epoch a rerun resumed."""

from __future__ import annotations

import time

import pytest
import torch


def wait_for_training(study, timeout_s=240):
    """Block until the teacher has written a resume state but not finished; return the epoch it holds."""
    teacher = study / "folds" / "Ses01F" / "teacher"
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if (teacher / "last.pt").is_file() and not (teacher / "done.json").is_file():
            try:
                return torch.load(teacher / "last.pt", weights_only=True)["epoch"]
            except Exception:  # caught mid-rename: look again
                pass
        time.sleep(0.05)
    pytest.fail(f"the teacher of {study} never reached an epoch checkpoint")


def resumed_after(study) -> int:
    text = (study / "folds" / "Ses01F" / "02_train_teacher.ipynb").read_text()
    marker = "teacher: resumed from last.pt after epoch "
    assert marker in text, "the rerun did not resume the teacher"
    return int(text.split(marker, 1)[1].split()[0])
