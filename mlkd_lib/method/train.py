"""Training: the teacher on clean speech, each student arm on noisy speech (``arms.py``).

One loop serves every role; what differs between them is decided once, in ``Role``. After
every epoch the resume state is written atomically (checkpoint.py), so a killed run started again
continues where it stopped and ends with the same weights. The best epoch by validation UA
(training speakers only) is kept apart for evaluation.
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

from ..arms import arm, trained
from ..config import StudyConfig
from ..data.dataset import AudioCache, NoisyPairDataset, collate
from ..device import autocast, loader_workers, peak_memory, pick_device, reset_peak_memory, set_threads
from ..layout import ModelDir
from ..names import TEACHER
from .checkpoint import load_resume, save_best, save_resume
from .cnn_features import CnnFeatures
from .evaluate import exact_batches, ua_wa
from .losses import LOSSES, mlkd_objective
from .models import EmotionClassifier, build_student, build_teacher, default_layer_map
from .teacher_cache import TeacherTargets


def bucketed_batches(lengths, batch_size: int, generator: torch.Generator, window: int = 8) -> list[list[int]]:
    """Shuffled batches of similar-length utterances, so that little compute goes to padding:
    shuffle, sort within windows of ``window`` batches by length, cut into batches, shuffle those."""
    order = torch.randperm(len(lengths), generator=generator).tolist()
    batches = []
    for s in range(0, len(order), batch_size * window):
        chunk = sorted(order[s:s + batch_size * window], key=lambda i: lengths[i])
        batches += [chunk[j:j + batch_size] for j in range(0, len(chunk), batch_size)]
    return [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]


@dataclass
class TrainResult:
    best_path: Path
    history: pd.DataFrame
    best_val_ua: float
    seconds: float


@dataclass
class Role:
    """What one role trains: its model, on which input (clean for the teacher, noisy for the
    students), for how many epochs, whether the CNN is frozen, and its loss (``losses.LOSSES``)."""
    name: str
    model: EmotionClassifier
    input_key: str
    epochs: int
    freeze_cnn: bool
    loss: str = "CE"

    @property
    def distils(self) -> bool:
        """Whether the teacher teaches: its targets are computed (or cached) for the training audio."""
        return LOSSES[self.loss].teacher

    @classmethod
    def of(cls, name: str, cfg: StudyConfig, teacher: EmotionClassifier | None, noise_bank) -> Role:
        """The role's model, freshly built: the teacher from ``cfg.model`` with the study's classes
        (``cfg.emotions``, in logit order); a student arm (``arms.py``) from the teacher's or the pretrained
        encoder's even layers, with the teacher's classes."""
        if name not in trained():
            raise ValueError(f"role must be one of {trained()}, got {name!r}")
        if name == TEACHER:
            return cls(name, build_teacher(cfg.model, cfg.emotions), "clean", cfg.teacher_epochs,
                       cfg.freeze_feature_encoder)
        loss, init = arm(name).loss, arm(name).init(cfg)
        if teacher is None and (init == "teacher" or LOSSES[loss].teacher):
            raise ValueError(f"{name} needs the trained teacher")
        if teacher is not None and teacher.labels != tuple(cfg.emotions):
            raise ValueError(f"{name}: the teacher's classes {list(teacher.labels)} are not the study's emotions "
                             f"{list(cfg.emotions)} (same codes, same order)")
        if not noise_bank:
            raise ValueError(f"{name} trains on noisy speech and needs a noise bank")
        # the pretrained encoder with the random head build_teacher gives it: the student's head starts fresh
        source = teacher if init == "teacher" else build_teacher(cfg.model, cfg.emotions)
        # the student's CNN is always frozen: it is its source's, and only the transformer is trained
        return cls(name, build_student(source, cfg.student_layers), "noisy", cfg.student_epochs, True, loss)

    def datasets(self, cfg: StudyConfig, train_df, val_df, noise_bank, audio: AudioCache):
        """Training and validation items, labelled by their index in the model's classes."""
        labels = self.model.labels
        if self.input_key == "clean":
            return (NoisyPairDataset(train_df, mode="clean", audio=audio, labels=labels),
                    NoisyPairDataset(val_df, mode="clean", audio=audio, labels=labels))
        # a fixed noisy validation set: the same draw every epoch, another seed than training's
        return (NoisyPairDataset(train_df, noise_bank, "random", cfg.snrs, cfg.seed, cfg.level, audio, labels),
                NoisyPairDataset(val_df, noise_bank, "random", cfg.snrs, cfg.seed + 1, cfg.level, audio, labels))


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
             ) -> dict[str, float]:
    """Validation UA / WA, batched so that the batch never changes a prediction (``exact_batches``);
    with the teacher's ``targets``, also the objective's terms (``val_ce``, ``val_kd``, ``val_ml``)."""
    model.eval()
    lengths = [len(dataset.audio.get(r.utt_id, r.path)) for r in dataset.rows.itertuples()]
    y, p, sums = [], [], {}
    for idx in exact_batches(model, lengths, cfg.eval_batch_size):
        b = collate([dataset[i] for i in idx])
        with autocast(device, cfg.amp):
            out = model(b[input_key].to(device), b["lengths"].to(device), output_hidden_states=targets is not None)
            if targets is not None:
                _, parts = objective(cfg, out, b["label"].to(device), b, targets, mapping, loss)
                for k, v in parts.items():
                    sums[k] = sums.get(k, 0.0) + v * len(idx)
        y += b["label"].tolist()
        p += out.logits.argmax(-1).tolist()
    ua, wa = ua_wa(y, p, len(model.labels))
    return {"val_ua": ua, "val_wa": wa, **{f"val_{k}": v / len(y) for k, v in sums.items()}}


def _seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def train(role: str, cfg: StudyConfig, train_df: pd.DataFrame, val_df: pd.DataFrame, out_dir: str | Path,
          noise_bank: dict | None = None, teacher: EmotionClassifier | None = None,
          stop_after_epoch: int | None = None, progress: bool = True,
          features: CnnFeatures | None = None) -> TrainResult:
    """Train one model of ``role`` into ``out_dir`` (its best checkpoint, resume state and history).

    Resumes from the resume state when present. ``teacher`` (trained) is required for the
    students: they are initialised from its even layers. ``stop_after_epoch`` ends the run after
    that epoch's checkpoint, as a kill would (for tests). ``features``: where a frozen CNN's outputs are shared
    with the fold's other models (``cnn_features.py``).
    """
    out = ModelDir(Path(out_dir))
    out.path.mkdir(parents=True, exist_ok=True)
    set_threads(cfg)
    device = pick_device(cfg)
    _seed_everything(cfg.seed)
    r = Role.of(role, cfg, teacher, noise_bank)
    model = r.model
    audio = AudioCache(cfg.max_seconds)
    train_ds, val_ds = r.datasets(cfg, train_df, val_df, noise_bank, audio)
    model.set_spec_augment(cfg.mask_time_prob, cfg.mask_time_length)
    model.to(device)
    if features is not None:
        features.attach(model)  # for good: the model is this function's own
    lr = cfg.lr if role == TEACHER else cfg.student_lr
    opt, sched = _optimizer(model, cfg, r.freeze_cnn, r.epochs * -(-len(train_ds) // cfg.batch_size), lr)

    mapping, targets = None, None
    if r.distils:
        teacher = teacher.to(device).eval()
        for p in teacher.parameters():
            p.requires_grad_(False)
        mapping = default_layer_map(cfg.student_layers, teacher.num_layers)
        targets = TeacherTargets(teacher, list(mapping.values()), device, cfg.teacher_cache, out.teacher_cache,
                                 cfg.amp)
        # validation utterances too (the two sets are disjoint): L_ML on validation shows whether it converges
        targets.fill(((u.utt_id, audio.get(u.utt_id, u.path)) for u in pd.concat([train_df, val_df]).itertuples()),
                     progress)

    start_epoch, history, best_ua = 0, [], -1.0
    if out.last_ckpt.exists():
        start_epoch, history, best_ua = load_resume(out.last_ckpt, model, opt, sched)
        if progress:
            print(f"{role}: resumed from {out.last_ckpt.name} after epoch {start_epoch} of {r.epochs}", flush=True)

    workers = loader_workers(cfg, device)
    if workers and r.input_key == "noisy":  # forked workers inherit what is read here; what they read dies with them
        for u in train_df.itertuples():
            audio.level_db(u.utt_id, u.path, cfg.level)

    t0 = time.time()
    for epoch in range(start_epoch, r.epochs):
        model.train()
        train_ds.set_epoch(epoch)
        order = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)
        batches = bucketed_batches(train_df["duration_s"].to_numpy(), cfg.batch_size, order)
        loader = DataLoader(train_ds, batch_sampler=batches, collate_fn=collate, num_workers=workers)
        sums, n_batches, t_epoch = {}, 0, time.time()
        reset_peak_memory(device)
        for b in tqdm(loader, desc=f"{role} epoch {epoch + 1}/{r.epochs}", disable=not progress, leave=False):
            x, lengths, labels = b[r.input_key].to(device), b["lengths"].to(device), b["label"].to(device)
            with autocast(device, cfg.amp):
                out_s = model(x, lengths, output_hidden_states=r.distils)
                loss, parts = objective(cfg, out_s, labels, b, targets, mapping, r.loss)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            n_batches += 1
            for k, v in dict(parts, loss=loss.item()).items():
                sums[k] = sums.get(k, 0.0) + v
        step_s = (time.time() - t_epoch) / n_batches  # loss.item() waits for the device: these are real step times
        val = validate(model, val_ds, cfg, device, r.input_key, targets, mapping, r.loss)
        row = {"epoch": epoch + 1, **{k: v / n_batches for k, v in sums.items()}, **val,
               "lr": sched.get_last_lr()[0], "seconds": time.time() - t_epoch, "step_s": step_s, **peak_memory(device)}
        history.append(row)
        val_ua = val["val_ua"]
        if cfg.selection == "last" or val_ua >= best_ua:  # ties to the later epoch
            best_ua = val_ua
            save_best(model, out.best_ckpt, role, epoch + 1, val_ua)
        save_resume(out.last_ckpt, model, opt, sched, epoch + 1, history, best_ua)
        pd.DataFrame(history).to_csv(out.history, index=False)
        if progress:
            print(f"{role} epoch {epoch + 1}/{r.epochs}: loss {row['loss']:.3f} val UA {val_ua:.3f} "
                  f"({row['seconds']:.1f} s, {step_s:.3f} s a step"
                  + (f", peak {row['peak_gib']:.1f} GiB" if "peak_gib" in row else "") + ")", flush=True)
        if stop_after_epoch is not None and epoch + 1 >= stop_after_epoch:
            break
    return TrainResult(out.best_ckpt, pd.DataFrame(history), best_ua, time.time() - t0)



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
    first = bucketed_batches(train_df["duration_s"].to_numpy(), cfg.batch_size,
                             torch.Generator().manual_seed(cfg.seed * 100_003))[0]
    b = collate([ds[i] for i in first])
    mapping = default_layer_map(cfg.student_layers, teacher.num_layers)
    targets = TeacherTargets(teacher.to(device).eval(), list(mapping.values()), device, "off")
    with autocast(device, cfg.amp):
        out = r.model.to(device).eval()(b["noisy"].to(device), b["lengths"].to(device), output_hidden_states=True)
        total, parts = objective(cfg, out, b["label"].to(device), b, targets, mapping)  # every term, weighed
    return dict(parts, total=total.item(), utterances=len(first))
