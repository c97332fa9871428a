"""Checkpoints: the best epoch's (the model kept for evaluation, its config travelling with the
weights) and the resume state (everything a killed training needs to continue: model, optimiser,
scheduler, RNG states, history), both written atomically where ``layout.ModelDir`` says; the resume
state is dropped once its step is done.

A checkpoint is data, never code: the config is a plain dict and the RNG states are tensors and
lists, so every file is read with ``torch.load(..., weights_only=True)``, which refuses to run
whatever a pickle asks for. A best checkpoint written before (it held a ``Wav2Vec2Config`` object)
is still read, with that one class allowed; anything else unexpected is refused with its file named.
The config dict's ``model_type`` says which encoder class to rebuild; ``labels`` are the classes in
logit order; ``temperature_scaling`` the temperature fitted on the fold's clean validation speech (absent
from a checkpoint written before temperatures were fitted: its model is used raw). Checkpoints from before
the encoder was any family (weights under ``wav2vec2.``, no ``labels``) are read as wav2vec 2.0 with the
first ``num_labels`` of the paper's classes.
"""

from __future__ import annotations

import copy
import errno
import os
import pickle
import random
import re
import shutil
from pathlib import Path

import numpy as np
import torch
from transformers import Wav2Vec2Config

from ..layout import ModelDir, mark_done
from ..names import EMOTIONS
from .models import EmotionClassifier, config_from_dict

FORMAT = 3  # 1: the config pickled as a Wav2Vec2Config object; 2: the encoder's weights under wav2vec2., no labels
OLD_PREFIX, PREFIX = "wav2vec2.", "encoder."  # where the encoder's weights were, and are, in a state dict


class CheckpointError(ValueError):
    """A checkpoint that cannot be read safely (names the file and what to do)."""


def _bytes_of(obj) -> int:
    """About how many bytes ``obj``'s tensors take: what a save of it needs on disk."""
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(_bytes_of(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_bytes_of(v) for v in obj)
    return 0


def atomic_save(obj, path: Path) -> None:
    """Write ``obj`` to ``path`` whole or not at all: to a temporary file, then renamed over it, so a
    kill or a full disk mid-write leaves the previous file as it was."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    try:
        torch.save(obj, tmp)
    except (OSError, RuntimeError) as err:  # torch reports a failed write as either
        tmp.unlink(missing_ok=True)
        full = isinstance(err, OSError) and err.errno == errno.ENOSPC or "No space left" in str(err)
        if not full:
            raise
        free = shutil.disk_usage(path.parent).free
        raise OSError(errno.ENOSPC, f"no space left on the device of {path.parent} to write {path.name}: it needs "
                                    f"about {_bytes_of(obj) / 2**20:.0f} MiB, {free / 2**20:.0f} MiB are free. "
                                    f"{path.name} and the other checkpoints there are unchanged; free some space "
                                    f"and run the step again: it resumes from its last complete epoch") from err
    os.replace(tmp, path)


def _load(path: Path, what: str, mmap: bool = False) -> dict:
    """A checkpoint as data (``weights_only``); a format-1 best checkpoint with its config object allowed. ``mmap``:
    tensors are mapped, not read (for a checkpoint's small fields)."""
    try:
        with torch.serialization.safe_globals([Wav2Vec2Config]):
            return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as err:
        code = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(err))
        if code is None:
            raise CheckpointError(f"{path}: not a readable checkpoint (damaged, or another kind of file)") from None
        raise CheckpointError(
            f"{path}: refused to load this {what}: its pickle asks to run {code.group(1)}, and a checkpoint is never "
            f"unpickled as code; if it is a resume state (last.pt) from an earlier version of mlkd-ser, delete it and "
            f"the step trains again from its start") from None
    except (RuntimeError, EOFError, OSError) as err:
        raise CheckpointError(f"{path}: not a readable checkpoint ({str(err).splitlines()[0][:160]})") from None


def current_keys(state: dict) -> dict:
    """A model state dict with the encoder's weights where :class:`EmotionClassifier` keeps them now
    (``encoder.``; checkpoints and resume states written before had them under ``wav2vec2.``)."""
    return {PREFIX + k[len(OLD_PREFIX):] if k.startswith(OLD_PREFIX) else k: v for k, v in state.items()}


def save_best(model: EmotionClassifier, path: Path, role: str, epoch: int, val_ua: float,
              temperature_scaling: dict | None = None) -> None:
    """The selected epoch; ``temperature_scaling``: its temperature, where it is fitted with it (``train.py``)."""
    atomic_save({"format": FORMAT, "model": model.state_dict(), "config": model.config.to_dict(), "role": role,
                 "labels": list(model.labels), "num_labels": len(model.labels), "epoch": epoch, "val_ua": val_ua,
                 **({"temperature_scaling": temperature_scaling} if temperature_scaling else {})}, path)


def read_temperature_scaling(path: str | Path) -> dict | None:
    """The temperature a best checkpoint carries (``method/temperature.py``: ``temperature_scaling``), or None; its
    weights are mapped, not read."""
    ckpt = _load(Path(path), "checkpoint", mmap=True)
    return ckpt.get("temperature_scaling") if isinstance(ckpt, dict) else None


def add_temperature_scaling(path: Path, temperature_scaling: dict) -> None:
    """The best checkpoint with its temperature, fitted after training (a student's, on a clean validation pass)."""
    atomic_save({**_load(path, "checkpoint"), "temperature_scaling": temperature_scaling}, path)


def load_model(path: str | Path) -> EmotionClassifier:
    """A trained model from its checkpoint (config travels with the weights), on the CPU."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    ckpt = _load(path, "checkpoint")
    if not isinstance(ckpt, dict) or "model" not in ckpt or not ({"config", "wav2vec2_config"} & set(ckpt)):
        raise CheckpointError(f"{path}: not a checkpoint of a trained mlkd-ser model (no weights and config)")
    config = ckpt.get("config", ckpt.get("wav2vec2_config"))
    try:
        config = config_from_dict(config) if isinstance(config, dict) else config
    except ValueError as err:
        raise CheckpointError(f"{path}: {err}") from None
    labels = ckpt.get("labels") or EMOTIONS[: ckpt["num_labels"]]
    model = EmotionClassifier(config, labels)
    state = current_keys(ckpt["model"])
    if PREFIX + "masked_spec_embed" in state:
        model.add_mask_embedding()
    model.load_state_dict(state)
    model.trained_epoch = ckpt.get("epoch")  # the epoch model selection kept
    model.temperature_scaling = ckpt.get("temperature_scaling")  # fitted on validation; None: none was
    return model


def last_epoch_model(out: ModelDir, like: EmotionClassifier) -> EmotionClassifier | None:
    """The last epoch's weights (the resume state, there until the step is done) in a copy of ``like``,
    with its ``trained_epoch``; None without a resume state."""
    if not out.last_ckpt.is_file():
        return None
    ckpt = _load(out.last_ckpt, "resume state")
    model = copy.deepcopy(like)
    model.load_state_dict(current_keys(ckpt["model"]))
    model.trained_epoch = ckpt["epoch"]
    return model


def _rng_state() -> dict:
    """Every generator training draws from, as tensors and plain lists (data, not pickled objects)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {"torch": torch.get_rng_state(),
            "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                      "has_gauss": int(has_gauss), "cached_gaussian": float(gauss)},
            "python": [version, list(internal), gauss_next],
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_resume(path: Path, model, optimizer, scheduler, epoch: int, history: list, best_val_ua: float) -> None:
    atomic_save({"format": FORMAT, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                 "scheduler": scheduler.state_dict(), "rng": _rng_state(), "epoch": epoch, "history": history,
                 "best_val_ua": best_val_ua}, path)


def load_resume(path: Path, model, optimizer, scheduler) -> tuple[int, list, float]:
    """Continue from ``last.pt``: (epochs done, history, best validation UA). Read onto the CPU
    whatever the training device: the RNG states must stay CPU tensors (``torch.set_rng_state``
    rejects a GPU one), and ``load_state_dict`` moves weights and optimiser state to where the
    model's parameters live."""
    ckpt = _load(path, "resume state")
    model.load_state_dict(current_keys(ckpt["model"]))
    optimizer.load_state_dict(ckpt["optimizer"])
    scheduler.load_state_dict(ckpt["scheduler"])
    _set_rng_state(ckpt["rng"])
    return ckpt["epoch"], ckpt["history"], ckpt["best_val_ua"]


def finish_step(out: ModelDir, keep_checkpoints: bool = False, **info) -> None:
    """Mark a finished step done and, unless ``keep_checkpoints``, drop what only a resume needed
    (``last.pt``, the teacher cache): a wav2vec2-base fold would otherwise leave about 12 GB."""
    mark_done(out.path, **info)  # first: a kill in between leaves a done step with spare files, never a lost one
    if not keep_checkpoints:
        out.last_ckpt.unlink(missing_ok=True)
        shutil.rmtree(out.teacher_cache, ignore_errors=True)
