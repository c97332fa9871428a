"""`mlkd study --plan`: what a study will cost before it starts — its steps, the disk it needs, and
the device hours, from the corpus' durations and training steps of each role measured on this device
through the real loader (``step_time.measured_steps``). Projections, and they say what they rest on."""

from __future__ import annotations

import json
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
from ..data.prepare import at_most, test_classes
from ..data.synthetic import SPEAKERS
from ..data.user_manifest import complete_manifest
from ..device import pick_device, set_threads
from ..method.losses import LOSSES
from ..method.models import build_student, build_teacher, count_parameters
from ..method.step_bench import breakdown, measured_steps, spread_lengths
from ..names import BASELINE, TEACHER
from .preflight import disk_need, study_utterances

SYNTHETIC_MEAN_S = 1.7  # the synthetic corpus' mean utterance (measured on the demo's 600)


def corpus_durations(cfg: StudyConfig) -> tuple[pd.DataFrame, str]:
    """(speaker, duration_s) of every utterance the study uses (its classes only), and where they came from."""
    columns = ["speaker", "duration_s", "split", "fold"]
    df = study_utterances(cfg)
    if df is not None:
        where = cfg.manifest or cfg.iemocap_root or cfg.manifest_path
        return df[[c for c in columns if c in df]], f"{where}, the classes {', '.join(cfg.emotions)}"
    n = len(SPEAKERS) * 4 * cfg.synth_per_class  # speakers x 4 emotions
    speakers = [s.speaker_id for s in SPEAKERS] * (n // len(SPEAKERS))
    return (pd.DataFrame({"speaker": speakers, "duration_s": spread_lengths(SYNTHETIC_MEAN_S, n)}),
            f"the preset's size, {n} utterances of about {SYNTHETIC_MEAN_S} s: the corpus is not made yet")


def _size(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:.1f} GiB" if n_bytes >= 2**30 else f"{n_bytes / 2**20:.0f} MiB"


def _hours(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"


def _forward_seconds(model, batch: torch.Tensor, device) -> float:
    """Seconds of one inference pass on ``batch``: the fastest of three after a warm-up, since other work on the
    machine only ever makes a pass slower."""
    model.to(device).eval()
    times = []
    for _ in range(4):
        t0 = time.perf_counter()
        with torch.no_grad():
            model(batch, output_hidden_states=False)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return min(times[1:])


PLAN_STEPS, PLAN_WARMUP = 6, 2  # timed training steps of each role, after untimed ones


@dataclass
class Plan:
    steps: list[str]  # the steps shown (the first folds' and how many in all, when there are more)
    lines: list[str] = field(default_factory=list)
    disk_peak: float = 0.0  # bytes
    measured: dict = field(default_factory=dict)  # what the projection rests on: plan.json
    count: int = 0  # the study's steps in all (0: as many as shown)

    def render(self) -> str:
        return "\n".join([f"{self.count or len(self.steps)} steps: " + ", ".join(self.steps), *self.lines])

    def save(self, path: Path) -> None:
        """``plan.json``: each role's measured step (``step_s`` and its breakdown) and the projection made from it."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.measured, indent=2))


@dataclass
class Shares:
    """How a fold divides the corpus (cut at ``max_seconds``): utterances and seconds of audio it trains on, and
    seconds it validates and tests on."""
    train_n: float
    train_s: float
    val_s: float
    test_s: float


def fold_shares(cfg: StudyConfig, durations: pd.DataFrame, cut: pd.Series) -> Shares:
    n = durations.speaker.nunique()
    # the share of the corpus a fold tests on: a speaker, a group of speakers, or the corpus's test sets
    test_share = 1 / (cfg.n_folds if cfg.protocol == "kfold" else n)
    if cfg.protocol == "split" and "split" in durations:
        test_share = float(durations.split.map(split_part).eq("test").mean())
    if cfg.protocol == "folds" and "fold" in durations:  # the rows of one of the given folds, on average
        given = durations.fold.astype(str).str.strip()
        test_share = float(given.ne("").mean()) / max(1, given[given.ne("")].nunique())
    share_val = cfg.n_val_speakers / n if cfg.validation == "speaker" else (1 - test_share) * cfg.val_fraction
    train = 1 - test_share - share_val
    shares = Shares(len(cut) * train, cut.sum() * train, cut.sum() * share_val, cut.sum() * test_share)
    if not cfg.fold_utterances:
        return shares
    most = cfg.fold_utterances * len(cfg.emotions)  # a trial's parts: at most this many utterances each
    mean = float(cut.mean())
    return Shares(min(shares.train_n, most), min(shares.train_s, most * mean), min(shares.val_s, most * mean),
                  min(shares.test_s, most * mean))


def _gpu_fit(device, measured: dict) -> str:
    """How many trainings of the largest measured peak fit in the card's memory (with a tenth kept free)."""
    if device.type != "cuda":
        return ""
    peak = max(m.get("peak_gib", 0.0) for m in measured.values())
    total = torch.cuda.get_device_properties(device).total_memory / 2**30
    return (f"; on this {total:.0f} GiB card {int(0.9 * total // max(peak, 1e-3))} trainings of {peak:.1f} GiB peak "
            "fit at once (whether they overlap is not measured: time a pair with --jobs 2)")


def measure_roles(cfg: StudyConfig, cut: pd.Series, arms: dict) -> dict[str, dict]:
    """Each trained role's measured step (``step_bench.measured_steps``) on lengths drawn from the corpus's ``cut``
    ones; one arm timed per loss: arms of a loss differ in their starting weights only, not in a step's work."""
    torch.manual_seed(0)
    lengths = np.random.default_rng(0).choice(cut.to_numpy(), (PLAN_STEPS + PLAN_WARMUP) * cfg.batch_size)
    first = {loss: m for m, (loss, _) in reversed(arms.items())}
    timed = measured_steps(cfg, lengths, PLAN_STEPS, PLAN_WARMUP, (TEACHER, *first.values()))
    return {TEACHER: timed[TEACHER], **{m: timed[first[loss]] for m, (loss, _) in arms.items()}}


def fold_seconds(cfg: StudyConfig, fold: Shares, steps_per_epoch: int, measured: dict, infer: dict,
                 scored_s: float) -> dict[str, float]:
    """Each model's device seconds in one fold: its epochs of measured steps and validation, then scoring
    ``scored_s`` seconds of audio (``infer``: inference seconds per second of audio, teacher and student); a
    distilling student first fills the teacher's targets for its training and validation audio."""
    def training(role: str, epochs: int, pace: float) -> float:
        return epochs * (steps_per_epoch * measured[role]["step_s"] + fold.val_s * pace) + scored_s * pace

    out = {TEACHER: training(TEACHER, cfg.teacher_epochs, infer[TEACHER]),
           BASELINE: scored_s * infer[TEACHER]}  # plus the NMF enhancement, on the CPU
    for m, (loss, _) in study_arms(cfg).items():
        fill = (fold.train_s + fold.val_s) * infer[TEACHER] if LOSSES[loss].teacher else 0.0
        out[m] = training(m, cfg.student_epochs, infer["student"]) + fill
    return out


def steps_key(cfg: StudyConfig, cut: pd.Series, device) -> str:
    """What a plan's measured steps and inference pace rest on: every setting, the corpus's cut lengths, the model
    folder's files, the device and the code. A plan whose key is the same may reuse them."""
    import hashlib

    from ..paths import library_fingerprint
    folder = cfg.model_path
    files = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir() if p.is_file()) \
        if folder.is_dir() else []
    blob = json.dumps([{k: v for k, v in cfg.to_json().items() if k != "folds"}, np.round(cut.to_numpy(), 3).tolist(),
                       files, str(device), torch.__version__, library_fingerprint()], default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def make_plan(cfg: StudyConfig, folds: list[str], jobs: int = 1, previous: dict | None = None) -> Plan:
    """The study's steps, disk and device hours, projected from training steps of each role measured on this device
    through the real loader, on utterances as long as the corpus's (the model's random weights: the same work).
    ``previous``: an earlier plan's record (``plan.json``), whose measurements are reused where they rest on the
    same settings, corpus, model, device and code (``steps_key``)."""
    durations, source = corpus_durations(cfg)
    folds = list(folds) or planned_fold_names(cfg.protocol, sorted(durations.speaker.unique()), cfg.n_folds,
                                              list(durations.get("fold", [])))
    cut = durations.duration_s.clip(upper=cfg.max_seconds)
    fold, n_folds, conditions = fold_shares(cfg, durations, cut), len(folds), condition_count(cfg)
    arms = study_arms(cfg)
    set_threads(cfg)
    device = pick_device(cfg)
    key = steps_key(cfg, cut, device)
    reused = previous is not None and previous.get("key") == key and {"roles", "infer"} <= set(previous)
    teacher = build_teacher(cfg.model, cfg.emotions)
    student = build_student(teacher, cfg.student_layers)
    if reused:
        measured, infer = previous["roles"], previous["infer"]
    else:
        measured = measure_roles(cfg, cut, arms)
        seconds = float(np.clip(cut.mean(), 1.0, cfg.max_seconds))
        batch = torch.randn(cfg.batch_size, int(seconds * 16_000), device=device)
        infer = {m: _forward_seconds(model, batch, device) / (cfg.batch_size * seconds)
                 for m, model in ((TEACHER, teacher), ("student", student))}
    corpora = {Path(p).stem: at_most(test_classes(complete_manifest(p, progress=False), cfg, p), cfg.fold_utterances,
                                     cfg.seed) for p in cfg.test_manifests}
    # each model of each fold also scores every other corpus under its conditions (family corpus)
    scored_s = conditions * fold.test_s + sum(len(corpus_conditions(cfg, name)) * df.duration_s.clip(
        upper=cfg.max_seconds).sum() for name, df in corpora.items())
    steps_per_epoch = -(-fold.train_n // cfg.batch_size)
    per_fold = fold_seconds(cfg, fold, steps_per_epoch, measured, infer, scored_s)
    total = n_folds * sum(per_fold.values())
    p_t, p_s = count_parameters(teacher), count_parameters(student)
    peak, final = disk_need(cfg, p_t, p_s, teacher.config.hidden_size, fold.train_s, n_folds, jobs, len(arms),
                            fold.test_s, teacher.config.conv_dim[-1])
    fold_models = (TEACHER, BASELINE, *arms)
    steps = ["data", *(f"{f}/{m}" for f in folds[:2] for m in fold_models)]
    if n_folds > 2:
        steps.append(f"... ({len(fold_models) * n_folds} fold steps in all)")
    record = {"key": key, "measured": previous["measured"] if reused else time.strftime("%Y-%m-%dT%H:%M:%S"),
              "device": str(device), "batch_size": cfg.batch_size, "steps_per_epoch": steps_per_epoch,
              "timed_steps": PLAN_STEPS, "warmup_steps": PLAN_WARMUP, "roles": measured, "infer": infer,
              "fold_hours": {m: s / 3600 for m, s in per_fold.items()}, "total_hours": total / 3600, "jobs": jobs}
    lines = [
        f"corpus: {len(durations)} utterances, {_hours(durations.duration_s.sum())} ({source}); cut at "
        f"{cfg.max_seconds:g} s: per fold about {_hours(fold.train_s)} of training and {_hours(fold.test_s)} of test "
        f"audio, {conditions} test conditions, {n_folds} fold{'s' * (n_folds != 1)}",
        *(f"test corpus {name}: {len(df)} utterances of the study's classes, {_hours(df.duration_s.sum())}, scored "
          f"by every model of every fold under {len(corpus_conditions(cfg, name))} conditions"
          for name, df in corpora.items()),
        f"models: teacher {p_t / 1e6:.2f} M parameters, student {p_s / 1e6:.2f} M ({cfg.model})",
        f"measured on {device}: {PLAN_STEPS} training steps of batch {cfg.batch_size} after {PLAN_WARMUP} of warm-up, "
        f"through the real loader, on utterances drawn from the corpus's lengths (written to plan.json"
        + (f"; reused from the plan of {record['measured']}: the same settings, corpus, model, device and code; "
           f"--force measures again):" if reused else "):"),
        *(f"  {role}: {breakdown(m)}" for role, m in measured.items()),
        f"time: about {_hours(total)} on the {device.type.upper()} ({_hours(total / max(1, jobs))} of wall time with "
        f"--jobs {jobs}): {steps_per_epoch:.0f} steps an epoch, {cfg.teacher_epochs} teacher and {cfg.student_epochs} "
        f"student epochs, validation and scoring at the measured inference pace; the NMF baseline's CPU time is not "
        f"counted{_gpu_fit(device, measured)}",
        f"disk: about {_size(peak)} at the peak, {_size(final)} when done ({1 + len(arms)} fp32 checkpoints a "
        f"fold; a step's last.pt and the teacher cache exist while it runs and "
        + ("are all kept: keep_checkpoints)" if cfg.keep_checkpoints else "are dropped when it is done)"),
    ]
    return Plan(steps, lines, peak, record, 1 + len(fold_models) * n_folds)
