"""Checkpoints: the best epoch's (the model kept for evaluation, its config travelling with the
weights) and the resume state (everything a killed training needs to continue: model, optimiser,
scheduler, RNG states, history), both written atomically where ``layout.ModelDir`` says; the resume
state is dropped once its step is done."""

from __future__ import annotations

import copy
import os
import random
import shutil
from pathlib import Path

import numpy as np
import torch

from ..layout import ModelDir, mark_done
from .models import EmotionClassifier


def atomic_save(obj, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)  # a kill mid-write never leaves a broken checkpoint


def save_best(model: EmotionClassifier, path: Path, role: str, epoch: int, val_ua: float) -> None:
    atomic_save({"model": model.state_dict(), "wav2vec2_config": model.config, "role": role,
                 "num_labels": model.head.out_features, "epoch": epoch, "val_ua": val_ua}, path)


def load_model(path: str | Path, map_location="cpu") -> EmotionClassifier:
    """A trained model from its checkpoint (config travels with the weights)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    ckpt = torch.load(path, map_location=map_location, weights_only=False)
    model = EmotionClassifier(ckpt["wav2vec2_config"], ckpt["num_labels"])
    if "wav2vec2.masked_spec_embed" in ckpt["model"]:
        model.add_mask_embedding()
    model.load_state_dict(ckpt["model"])
    model.trained_epoch = ckpt.get("epoch")  # the epoch model selection kept
    return model


def last_epoch_model(out: ModelDir, like: EmotionClassifier) -> EmotionClassifier | None:
    """The last epoch's weights (the resume state, there until the step is done) in a copy of ``like``,
    with its ``trained_epoch``; None without a resume state."""
    if not out.last_ckpt.is_file():
        return None
    ckpt = torch.load(out.last_ckpt, map_location="cpu", weights_only=False)
    model = copy.deepcopy(like)
    model.load_state_dict(ckpt["model"])
    model.trained_epoch = ckpt["epoch"]
    return model


def _rng_state() -> dict:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_resume(path: Path, model, optimizer, scheduler, epoch: int, history: list, best_val_ua: float) -> None:
    atomic_save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                 "rng": _rng_state(), "epoch": epoch, "history": history, "best_val_ua": best_val_ua}, path)


def load_resume(path: Path, model, optimizer, scheduler) -> tuple[int, list, float]:
    """Continue from ``last.pt``: (epochs done, history, best validation UA). Read onto the CPU
    whatever the training device: the RNG states must stay CPU tensors (``torch.set_rng_state``
    rejects a GPU one), and ``load_state_dict`` moves weights and optimiser state to where the
    model's parameters live."""
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    model.load_state_dict(ckpt["model"])
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
