"""Where models run: the device, CPU threads, mixed precision and loader workers, decided here
once for training, evaluation and the benchmarks."""

from __future__ import annotations

import os

import torch

from .config import StudyConfig


def pick_device(cfg: StudyConfig) -> torch.device:
    if cfg.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device='cuda' asked for, but torch sees no GPU")
    return torch.device(cfg.device)


def set_threads(cfg: StudyConfig) -> None:
    """CPU threads: ``cfg.threads`` if set, else all cores (parallel study jobs set 1 each)."""
    torch.set_num_threads(cfg.threads or os.cpu_count() or 1)


def autocast(device: torch.device, enabled: bool):
    """bf16 autocast on a GPU when ``enabled``; a no-op on the CPU."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled and device.type == "cuda")


def loader_workers(cfg: StudyConfig, device: torch.device) -> int:
    """DataLoader worker processes: ``cfg.loader_workers``, or with -1 four on a GPU (reading and
    mixing audio keeps up with the card) and none on the CPU (the cores are busy training)."""
    if cfg.loader_workers >= 0:
        return cfg.loader_workers
    return min(4, os.cpu_count() or 1) if device.type == "cuda" else 0
