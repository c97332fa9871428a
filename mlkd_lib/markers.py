"""Where a step writes and how a rerun knows it finished: ``done.json`` in the step's folder.
A module of its own with no heavy imports, so the scheduler side (a Ray worker deciding to
skip a step) reads the same markers the notebooks write without importing torch."""

from __future__ import annotations

import json
import time
from pathlib import Path

from .layout import DONE, StudyLayout


def step_dir(study_dir: str | Path, fold: str, model: str) -> Path:
    return StudyLayout(study_dir).fold(fold).model(model).path


def mark_done(directory: str | Path, **info) -> Path:
    path = Path(directory) / DONE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"finished": time.strftime("%Y-%m-%dT%H:%M:%S"), **info}, indent=2))
    return path


def is_done(directory: str | Path) -> bool:
    return (Path(directory) / DONE).is_file()
