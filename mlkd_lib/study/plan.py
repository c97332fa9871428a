"""`mlkd study --plan`: what a study will cost before it starts — its steps, the disk it needs, and
the device hours, from the corpus' durations and one training step of the configured model timed
on this machine. Estimates, and they say what they rest on."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..arms import study_arms
from ..config import StudyConfig
from ..data.conditions.families import condition_count, corpus_conditions
from ..data.folds import planned_fold_names, split_part
from ..data.prepare import test_classes
from ..data.synthetic import SPEAKERS
from ..data.user_manifest import complete_manifest
from ..device import pick_device, set_threads
from ..method.models import build_student, build_teacher, count_parameters
from ..names import BASELINE, TEACHER
from .preflight import disk_need, study_utterances

SYNTHETIC_MEAN_S = 1.7  # the synthetic corpus' mean utterance (measured on the demo's 600)


def corpus_durations(cfg: StudyConfig) -> tuple[pd.DataFrame, str]:
    """(speaker, duration_s) of every utterance the study uses (its classes only), and where they came from."""
    columns = ["speaker", "duration_s", "split"]
    df = study_utterances(cfg)
    if df is not None:
        where = cfg.manifest or cfg.iemocap_root or cfg.manifest_path
        return df[[c for c in columns if c in df]], f"{where}, the classes {', '.join(cfg.emotions)}"
    n = len(SPEAKERS) * 4 * cfg.synth_per_class  # speakers x 4 emotions
    speakers = [s.speaker_id for s in SPEAKERS] * (n // len(SPEAKERS))
    return (pd.DataFrame({"speaker": speakers, "duration_s": SYNTHETIC_MEAN_S}),
            f"the preset's size ({n} utterances of about {SYNTHETIC_MEAN_S} s: the corpus is not made yet)")


def _size(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:.1f} GiB" if n_bytes >= 2**30 else f"{n_bytes / 2**20:.0f} MiB"


def _hours(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"


def _step_seconds(model, batch: torch.Tensor, device, train: bool) -> float:
    """Seconds of one step on ``batch`` (forward, and backward when ``train``): the fastest of three
    after a warm-up, since other work on the machine only ever makes a step slower."""
    model.to(device).train(train)
    times = []
    for _ in range(4):
        t0 = time.perf_counter()
        with torch.set_grad_enabled(train):
            out = model(batch, output_hidden_states=False)
            if train:
                out.logits.sum().backward()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return min(times[1:])


@dataclass
class Plan:
    steps: list[str]
    lines: list[str] = field(default_factory=list)
    disk_peak: float = 0.0  # bytes

    def render(self) -> str:
        return "\n".join([f"{len(self.steps)} steps: " + ", ".join(self.steps), *self.lines])


def make_plan(cfg: StudyConfig, folds: list[str], jobs: int = 1) -> Plan:
    durations, source = corpus_durations(cfg)
    speakers = sorted(durations.speaker.unique())
    folds = list(folds) or planned_fold_names(cfg.protocol, speakers, cfg.n_folds)
    cut = durations.duration_s.clip(upper=cfg.max_seconds)
    n_folds = len(folds)
    n = len(speakers)
    # the share of the corpus a fold tests on: a speaker, a group of speakers, or the corpus's test sets
    test_share = 1 / (cfg.n_folds if cfg.protocol == "kfold" else n)
    if cfg.protocol == "split" and "split" in durations:
        test_share = float(durations.split.map(split_part).eq("test").mean())
    share_val = cfg.n_val_speakers / n if cfg.validation == "speaker" else (1 - test_share) * cfg.val_fraction
    train_s, val_s, test_s = (cut.sum() * f for f in (1 - test_share - share_val, share_val, test_share))
    conditions = condition_count(cfg)

    set_threads(cfg)
    device = pick_device(cfg)
    torch.manual_seed(0)
    teacher = build_teacher(cfg.model, cfg.emotions)
    student = build_student(teacher, cfg.student_layers)
    seconds = float(np.clip(cut.mean(), 1.0, cfg.max_seconds))
    batch = torch.randn(cfg.batch_size, int(seconds * 16_000), device=device)
    audio_s = cfg.batch_size * seconds
    rate = {name: _step_seconds(m, batch, device, train) / audio_s  # seconds per second of audio
            for name, m, train in (("teacher train", teacher, True), ("teacher infer", teacher, False),
                                   ("student train", student, True), ("student infer", student, False))}
    infer_t, infer_s = rate["teacher infer"], rate["student infer"]
    corpora = {Path(p).stem: test_classes(complete_manifest(p, progress=False), cfg, p) for p in cfg.test_manifests}
    # each model of each fold also scores every other corpus under its conditions (family corpus)
    scored_s = conditions * test_s + sum(len(corpus_conditions(cfg, name)) * df.duration_s.clip(upper=cfg.max_seconds)
                                         .sum() for name, df in corpora.items())
    evaluate_t, evaluate_s = scored_s * infer_t, scored_s * infer_s
    student_s = cfg.student_epochs * (train_s * rate["student train"] + val_s * infer_s) + evaluate_s
    arms = study_arms(cfg)
    per_fold = {
        TEACHER: cfg.teacher_epochs * (train_s * rate["teacher train"] + val_s * infer_t) + evaluate_t,
        BASELINE: evaluate_t,  # plus the NMF enhancement, on the CPU
        # an MLKD student first fills the teacher cache (training and validation audio) once
        **{m: student_s + ((train_s + val_s) * infer_t if loss == "MLKD" else 0.0) for m, (loss, _) in arms.items()},
    }
    total = n_folds * sum(per_fold.values())

    p_t, p_s = count_parameters(teacher), count_parameters(student)
    peak, final = disk_need(cfg, p_t, p_s, teacher.config.hidden_size, train_s, n_folds, jobs, len(arms), test_s,
                            teacher.config.conv_dim[-1])

    fold_models = (TEACHER, BASELINE, *arms)
    steps = ["data", *(f"{f}/{m}" for f in folds[:2] for m in fold_models)]
    if n_folds > 2:
        steps.append(f"... ({len(fold_models) * n_folds} fold steps in all)")
    lines = [
        f"corpus: {len(durations)} utterances, {_hours(durations.duration_s.sum())} ({source}); cut at "
        f"{cfg.max_seconds:g} s: per fold about {_hours(train_s)} of training and {_hours(test_s)} of test audio, "
        f"{conditions} test conditions, {n_folds} fold{'s' * (n_folds != 1)}",
        *(f"test corpus {name}: {len(df)} utterances of the study's classes, {_hours(df.duration_s.sum())}, scored "
          f"by every model of every fold under {len(corpus_conditions(cfg, name))} conditions"
          for name, df in corpora.items()),
        f"models: teacher {p_t / 1e6:.2f} M parameters, student {p_s / 1e6:.2f} M ({cfg.model})",
        f"time: about {_hours(total)} on the {device.type.upper()} ({_hours(total / max(1, jobs))} of wall time with "
        f"--jobs {jobs}); measured: one training step of batch {cfg.batch_size} x {seconds:.1f} s on {device} "
        f"took {rate['teacher train'] * audio_s:.2f} s (teacher), {rate['student train'] * audio_s:.2f} s (student); "
        f"{cfg.teacher_epochs} teacher and {cfg.student_epochs} student epochs; the NMF baseline's CPU time "
        f"is not counted",
        f"disk: about {_size(peak)} at the peak, {_size(final)} when done ({1 + len(arms)} fp32 checkpoints a "
        f"fold; a step's last.pt and the teacher cache exist while it runs and "
        + ("are all kept: keep_checkpoints)" if cfg.keep_checkpoints else "are dropped when it is done)"),
        "These are estimates from one timed forward and backward pass on this machine; a real step also waits for its "
        "batch and the optimizer: the first epochs of a run give the real pace (history.csv: step_s, peak_gib).",
    ]
    return Plan(steps, lines, peak)
