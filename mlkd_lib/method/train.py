"""Training: the teacher on clean speech, each student arm on noisy speech (``arms.py``).

One loop serves every role; what differs between them is decided once, in ``Role``. After
every epoch the resume state is written atomically (checkpoint.py), so a killed run started again
continues where it stopped and ends with the same weights. The best epoch by validation UA
(training speakers only) is kept apart for evaluation, with the temperature that calibrates its
probabilities on the validation utterances' clean speech (``temperature.py``).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from ..config import StudyConfig
from ..data.batches import EpochBatches
from ..data.dataset import AudioCache, NoisyPairDataset, collate
from ..device import autocast, loader_workers, peak_memory, pick_device, reset_peak_memory, set_threads
from ..layout import ModelDir
from ..names import TEACHER
from .checkpoint import (
    add_temperature_scaling,
    current_keys,
    load_resume,
    read_temperature_scaling,
    save_best,
    save_resume,
)
from .cnn_features import CnnFeatures
from .evaluate import exact_batches, ua_wa
from .losses import LOSSES, mlkd_objective
from .models import EmotionClassifier, default_layer_map
from .roles import Role
from .step_time import StepClock
from .teacher_cache import TeacherTargets
from .temperature import temperature_scaling


@dataclass
class TrainResult:
    best_path: Path
    history: pd.DataFrame
    best_val_ua: float
    seconds: float
    temperature_scaling: dict | None = None  # the selected epoch's temperature (None: training not finished)


def _optimizer(model: EmotionClassifier, cfg: StudyConfig, freeze_cnn: bool, steps: int, lr: float):
    if freeze_cnn:
        model.encoder.freeze_feature_encoder()
    enc = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("head.")]
    opt = torch.optim.AdamW([{"params": enc, "lr": lr}, {"params": model.head.parameters(), "lr": cfg.head_lr}],
                            weight_decay=cfg.weight_decay)
    warm = max(1, int(cfg.warmup_frac * steps))

    def schedule(step: int) -> float:  # linear warm-up, then linear decay to 0
        return min((step + 1) / warm, max(0.0, (steps - step) / max(1, steps - warm)))

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, schedule)


def objective(cfg: StudyConfig, out, labels: torch.Tensor, batch: dict, targets: TeacherTargets | None,
              mapping: dict | None, loss: str = "MLKD"):
    """The study's objective on one batch's model output: α(L_KD + β·L_ML) + (1 − α)L_CE against the
    teacher's targets for the batch's clean audio (β = 0 for a ``loss`` without the layer-wise term), or L_CE
    alone without ``targets``."""
    t_hidden = t_logits = None
    if targets is not None:
        t_hidden, t_logits = targets.batch(batch["utt_id"], out.frame_mask.shape[1], batch["clean"], batch["lengths"])
    beta = cfg.beta if LOSSES[loss].layers else 0.0
    return mlkd_objective(out.logits.float(), labels, out.hidden_states, t_logits, t_hidden, mapping, out.frame_mask,
                          cfg.temperature, cfg.alpha, beta, cfg.kd_t_squared)


@torch.no_grad()
def validate(model: EmotionClassifier, dataset: NoisyPairDataset, cfg: StudyConfig, device, input_key: str,
             targets: TeacherTargets | None = None, mapping: dict | None = None, loss: str = "MLKD"
             ) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
    """Validation UA / WA, batched so that the batch never changes a prediction (``exact_batches``);
    with the teacher's ``targets``, also the objective's terms (``val_ce``, ``val_kd``, ``val_ml``). Also the
    logits and labels, utterance by utterance (what a temperature is fitted on)."""
    model.eval()
    lengths = [len(dataset.audio.get(r.utt_id, r.path)) for r in dataset.rows.itertuples()]
    y, p, sums, logits = [], [], {}, []
    for idx in exact_batches(model, lengths, cfg.eval_batch_size):
        b = collate([dataset[i] for i in idx])
        with autocast(device, cfg.amp):
            out = model(b[input_key].to(device), b["lengths"].to(device), output_hidden_states=targets is not None)
            if targets is not None:
                _, parts = objective(cfg, out, b["label"].to(device), b, targets, mapping, loss)
                for k, v in parts.items():  # summed on the device in float64, read once
                    sums[k] = sums.get(k, 0.0) + v.double() * len(idx)
        y += b["label"].tolist()
        p += out.logits.argmax(-1).tolist()
        logits.append(out.logits.float().cpu().numpy())
    ua, wa = ua_wa(y, p, len(model.labels))
    return ({"val_ua": ua, "val_wa": wa, **{f"val_{k}": float(v) / len(y) for k, v in sums.items()}},
            np.concatenate(logits), np.asarray(y))


def fitted_temperature(run: Run) -> dict:
    """The selected epoch's temperature: in its checkpoint already where the training's own validation pass heard
    clean speech (the teacher's), else fitted now on a clean pass over the validation utterances with the selected
    weights (a student validates on noisy speech). Reads no test utterance (a training never has them) and draws no
    random number."""
    scaling = read_temperature_scaling(run.out.best_ckpt)
    if scaling is None:
        run.model.load_state_dict(current_keys(torch.load(run.out.best_ckpt, map_location="cpu",
                                                          weights_only=True)["model"]))
        clean = NoisyPairDataset(run.val_ds.rows, mode="clean", audio=run.val_ds.audio, labels=run.model.labels)
        _, logits, labels = validate(run.model, clean, run.cfg, run.device, "clean")
        scaling = temperature_scaling(logits, labels)
        add_temperature_scaling(run.out.best_ckpt, scaling)
    return scaling


def _seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


@dataclass
class Run:
    """One training run, prepared once: the role and its model, the data, optimizer and schedule, the teacher's
    targets (a distilling role's), where it writes and how it reads batches."""
    role: Role
    cfg: StudyConfig
    device: torch.device
    train_df: pd.DataFrame
    train_ds: NoisyPairDataset
    val_ds: NoisyPairDataset
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LambdaLR
    out: ModelDir
    loader: DataLoader
    sampler: EpochBatches
    targets: TeacherTargets | None = None
    mapping: dict | None = None

    @property
    def model(self) -> EmotionClassifier:
        return self.role.model


def prepare(role: str, cfg: StudyConfig, train_df: pd.DataFrame, val_df: pd.DataFrame, out_dir: str | Path,
            noise_bank: dict | None = None, teacher: EmotionClassifier | None = None, progress: bool = True,
            features: CnnFeatures | None = None) -> Run:
    """Everything a run needs before its first step (the teacher's targets filled for a distilling role)."""
    out = ModelDir(Path(out_dir))
    out.path.mkdir(parents=True, exist_ok=True)
    set_threads(cfg)
    device = pick_device(cfg)
    _seed_everything(cfg.seed)
    r = Role.of(role, cfg, teacher, noise_bank)
    audio = AudioCache(cfg.max_seconds)
    train_ds, val_ds = r.datasets(cfg, train_df, val_df, noise_bank, audio)
    r.model.set_spec_augment(cfg.mask_time_prob, cfg.mask_time_length)
    r.model.to(device)
    if features is not None:
        features.attach(r.model)  # for good: the model is this run's own
    lr = cfg.lr if role == TEACHER else cfg.student_lr
    opt, sched = _optimizer(r.model, cfg, r.freeze_cnn, r.epochs * -(-len(train_ds) // cfg.batch_size), lr)
    workers = loader_workers(cfg, device)
    if workers and r.input_key == "noisy":  # the workers inherit what is read here, once
        for u in train_df.itertuples():
            audio.level_db(u.utt_id, u.path, cfg.level)
    sampler = EpochBatches(train_df["duration_s"].to_numpy(), cfg.batch_size, cfg.seed)
    # built once: its workers live across the epochs (the sampler tells them which epoch an item is drawn for)
    loader = DataLoader(train_ds, batch_sampler=sampler, collate_fn=collate, num_workers=workers,
                        persistent_workers=workers > 0, prefetch_factor=2 if workers else None,
                        pin_memory=device.type == "cuda")
    run = Run(r, cfg, device, train_df, train_ds, val_ds, opt, sched, out, loader, sampler)
    if r.distils:
        teacher = teacher.to(device).eval()
        for p in teacher.parameters():
            p.requires_grad_(False)
        run.mapping = default_layer_map(cfg.student_layers, teacher.num_layers)
        run.targets = TeacherTargets(teacher, list(run.mapping.values()), device, cfg.teacher_cache,
                                     out.teacher_cache, cfg.amp)
        # validation utterances too (the two sets are disjoint): L_ML on validation shows whether it converges
        run.targets.fill(((u.utt_id, audio.get(u.utt_id, u.path)) for u in pd.concat([train_df, val_df])
                          .itertuples()), progress)
    return run


def run_epoch(run: Run, epoch: int, clock: StepClock, progress: bool = False, max_steps: int | None = None
              ) -> dict[str, float]:
    """One epoch of training steps (at most ``max_steps``), each timed by ``clock``; the objective's terms
    averaged over its steps."""
    cfg, r, device = run.cfg, run.role, run.device
    run.model.train()
    run.train_ds.set_epoch(epoch)
    run.sampler.set_epoch(epoch)
    sums, n = {}, 0
    it = iter(tqdm(run.loader, desc=f"{r.name} epoch {epoch + 1}/{r.epochs}", disable=not progress, leave=False))
    while max_steps is None or n < max_steps:
        clock.begin()
        b = next(it, None)
        if b is None:
            break
        x, lengths, labels = (b[k].to(device, non_blocking=True) for k in (r.input_key, "lengths", "label"))
        clock.lap("data")
        with autocast(device, cfg.amp):
            out = run.model(x, lengths, output_hidden_states=r.distils)
            loss, parts = objective(cfg, out, labels, b, run.targets, run.mapping, r.loss)
        clock.lap("forward")
        run.opt.zero_grad(set_to_none=True)
        loss.backward()
        clock.lap("backward")
        run.opt.step()
        run.sched.step()
        clock.lap("optimizer")
        clock.done()
        n += 1
        for k, v in dict(parts, loss=loss.detach()).items():  # summed on the device in float64: no wait here
            sums[k] = sums.get(k, 0.0) + v.double()
    return {k: float(v) / max(n, 1) for k, v in sums.items()} | {"steps": n}


def train(role: str, cfg: StudyConfig, train_df: pd.DataFrame, val_df: pd.DataFrame, out_dir: str | Path,
          noise_bank: dict | None = None, teacher: EmotionClassifier | None = None,
          stop_after_epoch: int | None = None, progress: bool = True,
          features: CnnFeatures | None = None) -> TrainResult:
    """Train one model of ``role`` into ``out_dir`` (its best checkpoint, resume state and history).

    Resumes from the resume state when present. ``teacher`` (trained) is required for the
    students: they are initialised from its even layers. ``stop_after_epoch`` ends the run after
    that epoch's checkpoint, as a kill would (for tests). ``features``: where a frozen CNN's outputs are shared
    with the fold's other models (``cnn_features.py``). ``history.csv`` gains, per epoch, where a step's time went
    (``step_time.py``).
    """
    run = prepare(role, cfg, train_df, val_df, out_dir, noise_bank, teacher, progress, features)
    out, r = run.out, run.role
    start_epoch, history, best_ua = 0, [], -1.0
    if out.last_ckpt.exists():
        start_epoch, history, best_ua = load_resume(out.last_ckpt, run.model, run.opt, run.sched)
        if progress:
            print(f"{role}: resumed from {out.last_ckpt.name} after epoch {start_epoch} of {r.epochs}", flush=True)
    t0 = time.time()
    for epoch in range(start_epoch, r.epochs):
        t_epoch, clock = time.time(), StepClock(run.device, cfg.profile_every)
        reset_peak_memory(run.device)
        terms = run_epoch(run, epoch, clock, progress)
        steps = terms.pop("steps")
        step_s = (time.time() - t_epoch) / steps
        val, logits, labels = validate(run.model, run.val_ds, cfg, run.device, r.input_key, run.targets, run.mapping,
                                       r.loss)
        row = {"epoch": epoch + 1, **terms, **val, "lr": run.sched.get_last_lr()[0], "seconds": time.time() - t_epoch,
               "step_s": step_s, **{k: v for k, v in clock.summary().items() if k != "step_s"},
               **peak_memory(run.device)}
        history.append(row)
        if cfg.selection == "last" or val["val_ua"] >= best_ua:  # ties to the later epoch
            best_ua = val["val_ua"]
            # a pass over clean validation speech (the teacher's): the temperature is fitted on what it computed
            save_best(run.model, out.best_ckpt, role, epoch + 1, best_ua,
                      temperature_scaling(logits, labels) if r.input_key == "clean" else None)
        save_resume(out.last_ckpt, run.model, run.opt, run.sched, epoch + 1, history, best_ua)
        pd.DataFrame(history).to_csv(out.history, index=False)
        if progress:
            print(f"{role} epoch {epoch + 1}/{r.epochs}: loss {row['loss']:.3f} val UA {val['val_ua']:.3f} "
                  f"({row['seconds']:.1f} s, {step_s:.3f} s a step"
                  + (f", peak {row['peak_gib']:.1f} GiB" if "peak_gib" in row else "") + ")", flush=True)
        if stop_after_epoch is not None and epoch + 1 >= stop_after_epoch:
            break
    scaling = fitted_temperature(run) if len(history) >= r.epochs else None  # once every epoch is trained
    return TrainResult(out.best_ckpt, pd.DataFrame(history), best_ua, time.time() - t0, scaling)


@torch.no_grad()
def first_batch_losses(role: str, cfg: StudyConfig, train_df: pd.DataFrame, noise_bank: dict,
                       teacher: EmotionClassifier) -> dict[str, float]:
    """The objective's terms (CE, KD, ML and the total) for the untrained student on its first
    training batch: how the terms weigh against each other before training moves them (03 shows it).
    Changes nothing that ``train`` does: it reseeds before building its own model."""
    torch.manual_seed(cfg.seed)
    device = pick_device(cfg)
    r = Role.of(role, cfg, teacher, noise_bank)
    audio = AudioCache(cfg.max_seconds)
    ds = NoisyPairDataset(train_df, noise_bank, "random", cfg.snrs, cfg.seed, cfg.level, audio, r.model.labels)
    first = next(iter(EpochBatches(train_df["duration_s"].to_numpy(), cfg.batch_size, cfg.seed)))  # epoch 0's
    b = collate([ds[i] for i in first])
    mapping = default_layer_map(cfg.student_layers, teacher.num_layers)
    targets = TeacherTargets(teacher.to(device).eval(), list(mapping.values()), device, "off")
    with autocast(device, cfg.amp):
        out = r.model.to(device).eval()(b["noisy"].to(device), b["lengths"].to(device), output_hidden_states=True)
        total, parts = objective(cfg, out, b["label"].to(device), b, targets, mapping)  # every term, weighed
    return {k: float(v) for k, v in parts.items()} | {"total": float(total), "utterances": len(first)}
