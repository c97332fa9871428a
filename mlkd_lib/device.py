"""Where models run: the device, CPU threads, mixed precision and loader workers, decided here
once for training, evaluation and the benchmarks. Imports torch only inside the functions that
need it, so that the scheduler (a Ray worker deciding to skip a step) can read the thread
settings without it."""

from __future__ import annotations

import os

from .config import StudyConfig

# the variables that cap numpy's BLAS and OpenMP threads in a step's kernel (what --jobs shares out)
THREAD_ENV_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def thread_env(threads: int) -> dict[str, str]:
    """The environment that gives a step's kernel ``threads`` BLAS / OpenMP threads."""
    return {v: str(threads) for v in THREAD_ENV_VARS}


def pick_device(cfg: StudyConfig):
    import torch
    if cfg.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device='cuda' asked for, but torch sees no GPU")
    return torch.device(cfg.device)


def cpu_cores() -> int:
    """The cores this process may use: ``OMP_NUM_THREADS`` where the environment sets it (a cluster scheduler's
    allocation, a shared machine's share), else every core of the machine."""
    try:
        return max(1, int(os.environ["OMP_NUM_THREADS"]))
    except (KeyError, ValueError):
        return os.cpu_count() or 1


def set_threads(cfg: StudyConfig) -> None:
    """CPU threads: ``cfg.threads`` if set, else every core this process may use (parallel study jobs set 1
    each)."""
    import torch
    torch.set_num_threads(cfg.threads or cpu_cores())


def autocast(device, enabled: bool):
    """bf16 autocast on a GPU when ``enabled``; a no-op on the CPU."""
    import torch
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled and device.type == "cuda")


def loader_workers(cfg: StudyConfig, device) -> int:
    """DataLoader worker processes: ``cfg.loader_workers``, or with -1 four on a GPU (reading and
    mixing audio keeps up with the card) and none on the CPU (the cores are busy training)."""
    if cfg.loader_workers >= 0:
        return cfg.loader_workers
    return min(4, os.cpu_count() or 1) if device.type == "cuda" else 0


def reset_peak_memory(device) -> None:
    """Start a new peak-memory count (CUDA only), so each epoch reports its own."""
    import torch
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory(device) -> dict[str, float]:
    """The GPU memory PyTorch held at most since the last reset, in GiB ({} on the CPU): what a card must have."""
    import torch
    return {"peak_gib": torch.cuda.max_memory_allocated(device) / 2**30} if device.type == "cuda" else {}
