"""Training steps measured, not estimated: real steps of each role through the real loader on speech-like
utterances, warm-up excluded, each phase timed by ``step_time.StepClock``. ``mlkd bench --train-step`` prints
them for a preset's shapes; ``mlkd study --plan`` projects a study's hours from them."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from ..arms import method_arm
from ..config import make_config
from ..data.audio import speech_like, write_audio
from ..data.noise.synthetic import synthetic_bank
from ..device import peak_memory, pick_device, reset_peak_memory
from ..names import TEACHER
from .models import build_teacher
from .step_time import PHASES, StepClock
from .train import prepare, run_epoch


def measure(run, steps: int, warmup: int) -> dict[str, float]:
    """``warmup`` untimed steps, then ``steps`` timed ones, of a prepared run (``train.prepare``), through its real
    loader, epoch after epoch as its data allows: what a training step costs on this device (with ``peak_gib``
    on a GPU)."""
    warm, clock = StepClock(run.device, 1), StepClock(run.device, 1)  # every step timed: a measurement
    reset_peak_memory(run.device)
    done, epoch = 0, 0
    while done < warmup + steps:
        timing = done >= warmup
        n = run_epoch(run, epoch, clock if timing else warm, max_steps=warmup + steps - done if timing else
                      warmup - done)["steps"]
        done, epoch = done + n, epoch + 1
    return clock.summary() | peak_memory(run.device)


def bench_corpus(folder: Path, durations, labels, seed: int = 0):
    """Speech-like utterances of ``durations`` seconds written to ``folder``, as a manifest the real loader reads
    (the study's classes ``labels`` in turn, two speakers)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i, seconds in enumerate(durations):
        x = speech_like(rng, seconds=float(seconds), pause_s=0.1)
        path = write_audio(folder / f"u{i:04d}.wav", x)
        rows.append(dict(utt_id=f"u{i:04d}", path=str(path), emotion=labels[i % len(labels)],
                         speaker=f"s{i % 2}", duration_s=len(x) / 16_000))
    return pd.DataFrame(rows)


def measured_steps(cfg, durations, steps: int, warmup: int, roles=None) -> dict[str, dict]:
    """Per role (the teacher and the method's student unless ``roles`` says), ``measure`` on ``cfg``'s model
    (random weights) and settings, the utterances ``durations`` seconds long: one epoch of ``warmup + steps``
    batches cycled as needed. The student learns from the untrained teacher: the same work as from a trained one."""
    roles = roles or (TEACHER, method_arm().name)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        corpus = bench_corpus(Path(tmp) / "audio", durations, cfg.emotions)
        bank = synthetic_bank(10.0, cfg.synth_seed)  # what the noise sounds like does not change a step's work
        teacher = build_teacher(cfg.model, cfg.emotions)
        for role in roles:
            run = prepare(role, cfg, corpus, corpus.head(cfg.batch_size), Path(tmp) / role, bank,
                          None if role == TEACHER else teacher, progress=False)
            out[role] = measure(run, steps, warmup) | {"loader_workers": run.loader.num_workers}
            del run
    return out


BENCH_SECONDS = {"micro": 1.7, "demo": 1.7, "paper": 4.5}  # mean utterance: the synthetic corpus's, IEMOCAP's


def spread_lengths(mean_s: float, n: int, seed: int = 0):
    """``n`` utterance lengths of 0.5 to 1.5 times ``mean_s``: a step's time depends on how lengths spread, not on
    their mean alone, so a stand-in corpus is never of one length."""
    return np.random.default_rng(seed).uniform(0.5, 1.5, n) * mean_s


def bench_train_step(preset: str = "micro", steps: int = 32, warmup: int = 4, epoch_steps: int = 16,
                     threads: int = 0, workers: int = -1) -> dict:
    """`mlkd bench --train-step`: ``steps`` real training steps of the teacher and of the MLKD student of
    ``preset``'s shapes (the paper's: wav2vec2-base with random weights where its folder is absent), on
    speech-like utterances of 0.5 to 1.5 times the preset's mean length, through the real loader, after ``warmup``
    steps; epochs of ``epoch_steps`` steps. Returns each role's per-step breakdown (``StepClock.summary``)."""
    cfg = make_config(preset, threads=threads, loader_workers=workers)
    if not Path(cfg.model).is_dir() and cfg.model not in ("tiny", "micro", "base"):
        cfg = dataclasses.replace(cfg, model="base")
    mean_s = BENCH_SECONDS.get(preset, 1.7)
    durations = spread_lengths(mean_s, epoch_steps * cfg.batch_size)
    return {"preset": preset, "model": cfg.model, "batch_size": cfg.batch_size, "device": str(pick_device(cfg)),
            "utterance_s": mean_s, "steps": steps, "warmup": warmup, **measured_steps(cfg, durations, steps, warmup)}


def describe(res: dict) -> str:
    """The bench as lines: each role's step and where its time went."""
    lines = [f"{res['preset']} shapes ({res['model']}), batch {res['batch_size']} × {res['utterance_s']:g} s mean, "
             f"{res['device']}: {res['steps']} steps after {res['warmup']} of warm-up"]
    for role in [k for k in res if isinstance(res[k], dict)]:
        lines.append(f"  {role}: {breakdown(res[role])}")
    return "\n".join(lines)


def breakdown(r: dict) -> str:
    """One role's measured step in words: its time, steps a second, each phase, the share outside the arithmetic."""
    parts = ", ".join(f"{p} {1000 * r[f'{p}_s']:.1f} ms" for p in (*PHASES, "other"))
    outside = r["data_s"] + r["other_s"]
    peak = f", peak {r['peak_gib']:.1f} GiB" if "peak_gib" in r else ""
    return (f"{1000 * r['step_s']:.1f} ms a step ({1 / r['step_s']:.1f} steps/s; {parts}{peak}); outside forward, "
            f"backward and optimizer: {100 * outside / r['step_s']:.1f} %")
