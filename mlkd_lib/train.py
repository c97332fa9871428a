"""Training: the teacher on clean speech, the student with (MLKD) or without supervision.

One loop serves all three roles. After every epoch a checkpoint (model, optimiser,
scheduler, RNG states, history) is written atomically, so a killed run started
again continues where it stopped and ends with the same weights. The best epoch by
validation UA (training speakers only) is kept apart for evaluation.
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from .config import StudyConfig
from .data.dataset import AudioCache, NoisyPairDataset, collate
from .evaluate import ua_wa
from .losses import mlkd_objective
from .models import EmotionClassifier, build_student, build_teacher, default_layer_map

ROLES = ("teacher", "student_sup", "student_unsup")


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
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled and device.type == "cuda")


def atomic_save(obj, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)  # a kill mid-write never leaves a broken checkpoint


def load_model(path: str | Path, map_location="cpu") -> EmotionClassifier:
    """A trained model from a ``best.pt`` checkpoint (config travels with the weights)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    ckpt = torch.load(path, map_location=map_location, weights_only=False)
    model = EmotionClassifier(ckpt["wav2vec2_config"], ckpt["num_labels"])
    if "wav2vec2.masked_spec_embed" in ckpt["model"]:
        model.add_mask_embedding()
    model.load_state_dict(ckpt["model"])
    return model


class TeacherTargets:
    """The frozen teacher's hidden states (the layers the student learns from) and
    logits for each training utterance, computed once on the unpadded clean audio.

    ``storage``: ``"memory"`` keeps fp32 tensors; ``"disk"`` writes fp16 ``.npy`` files
    under ``cache_dir`` and reads them back as memmaps (the paper preset's size)."""

    def __init__(self, teacher: EmotionClassifier, layers: list[int], device: torch.device,
                 storage: str = "memory", cache_dir: Path | None = None, amp: bool = False):
        self.teacher, self.layers, self.device, self.amp = teacher, sorted(set(layers)), device, amp
        self.storage, self.cache_dir = storage, cache_dir
        self._mem: dict[str, tuple[dict[int, torch.Tensor], torch.Tensor]] = {}
        if storage == "disk":
            if cache_dir is None:
                raise ValueError("a disk teacher cache needs cache_dir")
            cache_dir.mkdir(parents=True, exist_ok=True)

    def _path(self, utt_id: str) -> Path:
        return self.cache_dir / f"{utt_id}.npz"

    @torch.no_grad()
    def _compute(self, clean: np.ndarray) -> tuple[dict[int, torch.Tensor], torch.Tensor]:
        x = torch.from_numpy(np.asarray(clean, dtype=np.float32))[None].to(self.device)
        with autocast(self.device, self.amp):
            out = self.teacher(x, output_hidden_states=True)
        return ({t: out.hidden_states[t][0].float().cpu() for t in self.layers}, out.logits[0].float().cpu())

    def fill(self, utterances, progress: bool = True) -> None:
        """Compute the targets of each ``(utt_id, clean waveform)`` not cached yet."""
        for utt_id, clean in tqdm(utterances, desc="teacher targets", disable=not progress, leave=False):
            if utt_id in self._mem or (self.storage == "disk" and self._path(utt_id).exists()):
                continue
            hidden, logits = self._compute(clean)
            if self.storage == "disk":
                tmp = self._path(utt_id).with_suffix(".tmp.npz")
                np.savez(tmp, logits=logits.numpy(), **{f"h{t}": h.half().numpy() for t, h in hidden.items()})
                os.replace(tmp, self._path(utt_id))
            else:
                self._mem[utt_id] = (hidden, logits)

    def _get(self, utt_id: str):
        if self.storage == "disk":
            data = np.load(self._path(utt_id), mmap_mode="r")
            return ({t: torch.from_numpy(np.asarray(data[f"h{t}"], dtype=np.float32)) for t in self.layers},
                    torch.from_numpy(np.asarray(data["logits"])))
        return self._mem[utt_id]

    def batch(self, utt_ids: list[str], num_frames: int) -> tuple[dict[int, torch.Tensor], torch.Tensor]:
        """Targets for a batch, zero-padded to the student's ``num_frames``."""
        got = [self._get(u) for u in utt_ids]
        hidden = {}
        for t in self.layers:
            h = torch.zeros(len(got), num_frames, got[0][0][t].shape[-1])
            for i, (hs, _) in enumerate(got):
                n = min(num_frames, hs[t].shape[0])
                h[i, :n] = hs[t][:n]
            hidden[t] = h.to(self.device)
        return hidden, torch.stack([lg for _, lg in got]).to(self.device)


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


def _optimizer(model: EmotionClassifier, cfg: StudyConfig, freeze_cnn: bool, steps: int):
    if freeze_cnn:
        model.wav2vec2.freeze_feature_encoder()
    enc = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("head.")]
    opt = torch.optim.AdamW([{"params": enc, "lr": cfg.lr}, {"params": model.head.parameters(), "lr": cfg.head_lr}],
                            weight_decay=cfg.weight_decay)
    warm = max(1, int(cfg.warmup_frac * steps))

    def schedule(step: int) -> float:  # linear warm-up, then linear decay to 0
        return min((step + 1) / warm, max(0.0, (steps - step) / max(1, steps - warm)))

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, schedule)


def _rng_state() -> dict:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@torch.no_grad()
def validate(model: EmotionClassifier, dataset: NoisyPairDataset, cfg: StudyConfig, device,
             input_key: str) -> tuple[float, float]:
    model.eval()
    y, p = [], []
    for b in DataLoader(dataset, batch_size=cfg.eval_batch_size, collate_fn=collate):
        with autocast(device, cfg.amp):
            out = model(b[input_key].to(device), b["lengths"].to(device))
        y += b["label"].tolist()
        p += out.logits.argmax(-1).tolist()
    return ua_wa(y, p)


def train(role: str, cfg: StudyConfig, train_df: pd.DataFrame, val_df: pd.DataFrame, out_dir: str | Path,
          noise_bank: dict | None = None, teacher: EmotionClassifier | None = None,
          stop_after_epoch: int | None = None, progress: bool = True) -> TrainResult:
    """Train one model of ``role`` into ``out_dir`` (``last.pt``, ``best.pt``, ``history.csv``).

    Resumes from ``out_dir/last.pt`` when present. ``teacher`` (trained) is required for
    the students: they are initialised from its even layers. ``stop_after_epoch`` ends
    the run after that epoch's checkpoint, as a kill would (for tests).
    """
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")
    if role != "teacher" and teacher is None:
        raise ValueError(f"{role} needs the trained teacher")
    if role != "teacher" and not noise_bank:
        raise ValueError(f"{role} trains on noisy speech and needs a noise bank")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    set_threads(cfg)
    device = pick_device(cfg)
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    random.seed(cfg.seed)

    audio = AudioCache(cfg.max_seconds)
    if role == "teacher":
        model, epochs, freeze = build_teacher(cfg.model), cfg.teacher_epochs, cfg.freeze_feature_encoder
        train_ds = NoisyPairDataset(train_df, mode="clean", audio=audio)
        val_ds, input_key = NoisyPairDataset(val_df, mode="clean", audio=audio), "clean"
    else:
        model, epochs, freeze = build_student(teacher, cfg.student_layers), cfg.student_epochs, True
        train_ds = NoisyPairDataset(train_df, noise_bank, "random", cfg.snrs, cfg.seed, cfg.level, audio)
        # fixed noisy validation set: same draw every epoch, other seed than training
        val_ds = NoisyPairDataset(val_df, noise_bank, "random", cfg.snrs, cfg.seed + 1, cfg.level, audio)
        input_key = "noisy"
    model.set_spec_augment(cfg.mask_time_prob, cfg.mask_time_length)
    model.to(device)
    steps_per_epoch = -(-len(train_ds) // cfg.batch_size)
    opt, sched = _optimizer(model, cfg, freeze, epochs * steps_per_epoch)

    mapping, targets = None, None
    if role == "student_sup":
        teacher = teacher.to(device).eval()
        for p in teacher.parameters():
            p.requires_grad_(False)
        mapping = default_layer_map(cfg.student_layers, teacher.num_layers)
        if cfg.teacher_cache != "off":
            targets = TeacherTargets(teacher, list(mapping.values()), device, cfg.teacher_cache,
                                     out_dir / "teacher_cache", cfg.amp)
            targets.fill(((r.utt_id, audio.get(r.utt_id, r.path)) for r in train_df.itertuples()), progress)

    start_epoch, history, best_ua = 0, [], -1.0
    last_path, best_path = out_dir / "last.pt", out_dir / "best.pt"
    if last_path.exists():
        ckpt = torch.load(last_path, map_location=device, weights_only=False)
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        _set_rng_state(ckpt["rng"])
        start_epoch, history, best_ua = ckpt["epoch"], ckpt["history"], ckpt["best_val_ua"]

    t0 = time.time()
    for epoch in range(start_epoch, epochs):
        model.train()
        train_ds.set_epoch(epoch)
        order = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)
        batches = bucketed_batches(train_df["duration_s"].to_numpy(), cfg.batch_size, order)
        loader = DataLoader(train_ds, batch_sampler=batches, collate_fn=collate)
        sums, n_batches, t_epoch = {}, 0, time.time()
        for b in tqdm(loader, desc=f"{role} epoch {epoch + 1}/{epochs}", disable=not progress, leave=False):
            x = b["clean" if role == "teacher" else "noisy"].to(device)
            lengths, labels = b["lengths"].to(device), b["label"].to(device)
            with autocast(device, cfg.amp):
                out = model(x, lengths, output_hidden_states=role == "student_sup")
                t_logits = t_hidden = None
                if role == "student_sup":
                    if targets is not None:
                        t_hidden, t_logits = targets.batch(b["utt_id"], out.frame_mask.shape[1])
                    else:
                        with torch.no_grad():
                            t_out = teacher(b["clean"].to(device), lengths, output_hidden_states=True)
                        t_hidden, t_logits = t_out.hidden_states, t_out.logits
                loss, parts = mlkd_objective(out.logits.float(), labels, out.hidden_states, t_logits, t_hidden,
                                             mapping, out.frame_mask, cfg.temperature, cfg.alpha, cfg.beta)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            n_batches += 1
            for k, v in dict(parts, loss=loss.item()).items():
                sums[k] = sums.get(k, 0.0) + v
        val_ua, val_wa = validate(model, val_ds, cfg, device, input_key)
        row = {"epoch": epoch + 1, **{k: v / n_batches for k, v in sums.items()}, "val_ua": val_ua,
               "val_wa": val_wa, "lr": sched.get_last_lr()[0], "seconds": time.time() - t_epoch}
        history.append(row)
        if val_ua > best_ua:
            best_ua = val_ua
            atomic_save({"model": model.state_dict(), "wav2vec2_config": model.config, "role": role,
                         "num_labels": model.head.out_features, "epoch": epoch + 1, "val_ua": val_ua}, best_path)
        atomic_save({"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                     "rng": _rng_state(), "epoch": epoch + 1, "history": history, "best_val_ua": best_ua}, last_path)
        pd.DataFrame(history).to_csv(out_dir / "history.csv", index=False)
        if progress:
            print(f"{role} epoch {epoch + 1}/{epochs}: loss {row['loss']:.3f} val UA {val_ua:.3f} "
                  f"({row['seconds']:.1f} s)", flush=True)
        if stop_after_epoch is not None and epoch + 1 >= stop_after_epoch:
            break
    return TrainResult(best_path, pd.DataFrame(history), best_ua, time.time() - t0)
