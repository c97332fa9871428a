"""Watching a study run from outside: when a step is done, when its teacher is mid-training (to kill it there), and
after which epoch a rerun resumed."""

from __future__ import annotations

import time

import pytest
import torch


def teacher_saved_epoch(study, alive=lambda: True, timeout_s=240) -> int | None:
    """Block until the teacher has written a resume state but not finished; the epoch it holds, or None once
    ``alive()`` is false or the time is up."""
    teacher = study / "folds" / "Ses01F" / "teacher"
    deadline = time.time() + timeout_s
    while time.time() < deadline and alive():
        if (teacher / "last.pt").is_file() and not (teacher / "done.json").is_file():
            try:
                return torch.load(teacher / "last.pt", weights_only=True)["epoch"]
            except Exception:  # caught mid-rename: look again
                pass
        time.sleep(0.05)
    return None


def wait_until(ready, timeout_s=240) -> bool:
    """Block until ``ready()`` is true (True) or the time is up (False)."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if ready():
            return True
        time.sleep(0.1)
    return False


def wait_for_training(study, timeout_s=240):
    """``teacher_saved_epoch``, or the test fails."""
    epoch = teacher_saved_epoch(study, timeout_s=timeout_s)
    if epoch is None:
        pytest.fail(f"the teacher of {study} never reached an epoch checkpoint")
    return epoch


def resumed_after(study) -> int:
    text = (study / "folds" / "Ses01F" / "02_train_teacher.ipynb").read_text()
    marker = "teacher: resumed from last.pt after epoch "
    assert marker in text, "the rerun did not resume the teacher"
    return int(text.split(marker, 1)[1].split()[0])
