"""Where a study keeps what: the one description of a study folder.

    <study>/config.json, run.json, plan.json (--plan), metrics.csv, stats.csv, calibration.csv, representation.csv,
            selection.csv, table*.{csv,md}, plots/, logs/, .lock
    <study>/data/done.json, analysis/done.json               (steps without a model)
    <study>/folds/<fold>/<model>/best.pt, last.pt, history.csv, predictions.csv, metrics.csv,
                                 metrics_last.csv, selection.json, representation.csv, done.json,
                                 .lock, teacher_cache/, speech_basis.npy, enhancement.csv
    <study>/folds/<fold>/test_audio/         (while the fold's steps run: data/kept_audio.py)
    <study>/folds/<fold>/cnn_features/       (the same: method/cnn_features.py)

Everything that reads or writes a study asks this module for the path, and a finished step says so
here (``mark_done``; a rerun skips what ``is_done``); ``FolderLock`` keeps a second runner out of a
study folder and a second process out of a step folder. No heavy imports:
the scheduler side (a Ray worker deciding to skip a step) uses it without torch.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

DONE = "done.json"  # a step's marker: it finished; the only state a rerun (local or Ray) reads


def mark_done(directory: str | Path, **info) -> Path:
    path = Path(directory) / DONE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"finished": time.strftime("%Y-%m-%dT%H:%M:%S"), **info}, indent=2))
    return path


def is_done(directory: str | Path) -> bool:
    return (Path(directory) / DONE).is_file()


# the columns of a study's tables that hold names a corpus or a noise collection chose, whatever they look like:
# EmoDB's speaker "03" is a fold's name, not the number 3 (read as a number it no longer joins with the fold's folder)
NAME_COLUMNS = ("fold", "utt_id", "speaker", "noise")


def read_table(path: str | Path):
    """A CSV table a study wrote (metrics, predictions, stats, calibration …), its name columns read as text."""
    import pandas as pd  # here, not at the top: the scheduler side imports this module without pandas
    return pd.read_csv(path, dtype=dict.fromkeys(NAME_COLUMNS, str))


@dataclass(frozen=True)
class ModelDir:
    """One model's step folder, ``<study>/folds/<fold>/<model>/``."""
    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def fold(self) -> str:
        return self.path.parent.name

    best_ckpt = property(lambda self: self.path / "best.pt")  # the model evaluated and kept
    last_ckpt = property(lambda self: self.path / "last.pt")  # resume state, dropped when the step is done
    history = property(lambda self: self.path / "history.csv")
    predictions = property(lambda self: self.path / "predictions.csv")
    metrics = property(lambda self: self.path / "metrics.csv")
    done = property(lambda self: self.path / DONE)
    teacher_cache = property(lambda self: self.path / "teacher_cache")
    speech_basis = property(lambda self: self.path / "speech_basis.npy")  # the baseline's NMF basis
    enhancement = property(lambda self: self.path / "enhancement.csv")  # the baseline's PESQ / STOI


@dataclass(frozen=True)
class FoldDir:
    """One fold's folder, ``<study>/folds/<fold>/`` (a fold is named after its test speaker)."""
    path: Path

    test_audio = property(lambda self: self.path / "test_audio")  # made once, heard by every model of the fold
    cnn_features = property(lambda self: self.path / "cnn_features")  # a frozen CNN's outputs, shared the same way
    shared = property(lambda self: (self.test_audio, self.cnn_features))  # gone with the fold's last step

    def drop_shared(self) -> None:
        """The fold's last step is done: no one will read what its models shared again."""
        for folder in self.shared:
            shutil.rmtree(folder, ignore_errors=True)

    def model(self, model: str) -> ModelDir:
        return ModelDir(self.path / model)

    def notebook(self, notebook: str, model: str | None = None) -> Path:
        """A step's executed notebook (named after the model when one notebook serves two)."""
        stem, suffix = notebook.rsplit(".", 1)
        return self.path / (f"{stem}_{model}.{suffix}" if model else notebook)


@dataclass(frozen=True)
class StudyLayout:
    """A study folder: ``StudyLayout(dir).fold(f).model(m).best_ckpt``."""
    dir: Path

    def __post_init__(self):
        object.__setattr__(self, "dir", Path(self.dir))

    def __fspath__(self) -> str:  # a layout is its folder: Path(layout), open(...) and friends take it
        return str(self.dir)

    config = property(lambda self: self.dir / "config.json")
    run_json = property(lambda self: self.dir / "run.json")
    plan = property(lambda self: self.dir / "plan.json")  # --plan's measured steps and projection
    metrics = property(lambda self: self.dir / "metrics.csv")
    stats = property(lambda self: self.dir / "stats.csv")
    calibration = property(lambda self: self.dir / "calibration.csv")
    plots = property(lambda self: self.dir / "plots")
    logs = property(lambda self: self.dir / "logs")
    data_step = property(lambda self: self.dir / "data")  # 01's done.json
    analysis_step = property(lambda self: self.dir / "analysis")  # 04's done.json
    folds_dir = property(lambda self: self.dir / "folds")

    def fold(self, fold: str) -> FoldDir:
        return FoldDir(self.folds_dir / fold)

    def folds(self) -> list[str]:
        """The folds this study has started, sorted."""
        return sorted(p.name for p in self.folds_dir.iterdir() if p.is_dir()) if self.folds_dir.is_dir() else []

    def models(self, model: str | None = None) -> list[ModelDir]:
        """Every model folder of every fold (or only ``model``'s), sorted by fold then model."""
        dirs = sorted(p for p in self.folds_dir.glob(f"*/{model or '*'}") if p.is_dir())
        return [ModelDir(p) for p in dirs]


class FolderInUse(RuntimeError):
    """Another process holds the folder's lock (the message names the folder and the holder)."""


class FolderLock:
    """An exclusive OS lock (``flock``) on ``<folder>/.lock`` for as long as it is held: one runner per
    study folder, one process per step folder. The kernel releases it when its holder dies, however it
    dies, so a stale lock never blocks a rerun; the file says who holds it (host, pid, since when).
    On a file system without working locks the lock is skipped with a warning (docs/cluster.md)."""

    _held: dict[Path, FolderLock] = {}  # what this process holds: a notebook's set-up cell run twice reuses it

    def __init__(self, folder: str | Path):
        self.folder, self.fh = Path(folder).resolve(), None

    @property
    def path(self) -> Path:
        return self.folder / ".lock"

    def holder(self) -> str:
        try:
            info = json.loads(self.path.read_text() or "{}")
        except (OSError, ValueError):
            info = {}
        return f"host {info.get('host', '?')}, pid {info.get('pid', '?')}, since {info.get('since', '?')}"

    def acquire(self, wait_s: float = 0.0) -> FolderLock:
        import fcntl
        mine = self._held.get(self.folder)
        if mine is not None and mine.fh is not None:
            return mine
        self.folder.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+")
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    fh.close()
                    raise FolderInUse(f"{self.folder} is in use by another run ({self.holder()}): wait for it to "
                                      f"end, or stop it, before starting another on the same folder") from None
                time.sleep(0.2)
            except OSError as err:  # ENOLCK, EOPNOTSUPP: a file system that cannot lock
                warnings.warn(f"{self.folder}: cannot take a lock here ({err.strerror}); nothing stops a second "
                              f"run on this folder", stacklevel=2)
                fh.close()
                return self
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps({"host": socket.gethostname(), "pid": os.getpid(),
                             "since": time.strftime("%Y-%m-%dT%H:%M:%S")}))
        fh.flush()
        self.fh = fh
        self._held[self.folder] = self
        return self

    def release(self) -> None:
        if self.fh is not None:
            self.fh.close()  # closing the file releases the lock
            self.fh = None
            self._held.pop(self.folder, None)

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
