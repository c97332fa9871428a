"""UA / WA, confusion matrices, and evaluation of a model under every test condition."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from ..data.dataset import AudioCache, Condition, NoisyPairDataset, collate
from ..data.kept_audio import KeptAudio, keeps
from ..names import CLEAN, NO_LEVEL, NOISE
from .cnn_features import CnnFeatures


def confusion(y_true, y_pred, n: int | None = None) -> np.ndarray:
    """Counts: rows are true classes, columns predicted classes (``n`` classes; default: as many as the
    largest index seen)."""
    y_true, y_pred = np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int)
    if n is None:
        n = int(max(y_true.max(initial=-1), y_pred.max(initial=-1))) + 1
    m = np.zeros((n, n), dtype=int)
    np.add.at(m, (y_true, y_pred), 1)
    return m


def ua_wa(y_true, y_pred, n: int | None = None) -> tuple[float, float]:
    """UA: recall averaged over the classes present; WA: plain accuracy."""
    m = confusion(y_true, y_pred, n)
    support = m.sum(1)
    present = support > 0
    if not present.any():
        raise ValueError("no samples to score")
    ua = float(np.mean(np.diag(m)[present] / support[present]))
    return ua, float(np.trace(m) / m.sum())


def exact_batches(model, lengths: list[int], batch_size: int) -> list[list[int]]:
    """Index batches under which no prediction depends on the batch, utterances of similar length
    together so that little compute goes to padding. A model that honours the attention mask
    (layer-norm wav2vec 2.0) ignores padding: batches of up to ``batch_size``. One that cannot
    (group-norm, e.g. wav2vec2-base, whose first GroupNorm and attention would see the zeros) only
    ever shares a batch with utterances of the same length."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    if getattr(model, "uses_attention_mask", lambda: True)():
        return [order[s:s + batch_size] for s in range(0, len(order), batch_size)]
    batches = []
    for i in order:
        if batches and len(batches[-1]) < batch_size and lengths[batches[-1][0]] == lengths[i]:
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches


@torch.no_grad()
def predict_condition(models: dict, test_df: pd.DataFrame, condition: Condition, noise_bank: dict, seed: int,
                      level: str = "p56", batch_size: int = 32, device="cpu",
                      transform: Callable[[list[np.ndarray]], list[np.ndarray]] | None = None,
                      audio: AudioCache | None = None, distance=None, rirs: dict | None = None,
                      kept: KeptAudio | None = None) -> dict[str, pd.DataFrame]:
    """Per-utterance predictions and class probabilities of each of ``models`` (name → model, one
    architecture) under one condition, in ``test_df``'s order.

    The noisy audio depends only on (seed, utterance, noise, SNR): every model sees the
    same, and it is made once for all of ``models``. ``transform`` (e.g. the VAD + NMF enhancer) maps
    the list of inputs to what the model hears, all at once so that it may batch its work. Batches
    never change a prediction (``exact_batches``). ``distance`` (a ``representation.LayerDistance``)
    collects the first model's layer states. ``kept``: where a signal condition's audio is read from when an earlier
    step of the fold made it, and kept when this is the first (``data/kept_audio.py``)."""
    first = next(iter(models.values()))
    for m in models.values():
        m.eval().to(device)
    labels = first.labels  # the classes every model of one fold shares, in logit order
    utt_ids = list(test_df["utt_id"])
    keep = kept is not None and keeps(condition)
    made = kept.load(condition, utt_ids) if keep else None
    ds = NoisyPairDataset(test_df, noise_bank, condition, seed=seed, level=level, audio=audio, labels=labels,
                          rirs=rirs, made=made)
    heard = {}  # index → the audio made here, to keep for the fold's other steps

    def make(i: int) -> dict:
        it = ds[i]
        if keep and made is None:
            heard[i] = it["noisy"]
        return it

    if transform is not None:
        items = [make(i) for i in range(len(ds))]
        items = [dict(it, noisy=x) for it, x in zip(items, transform([it["noisy"] for it in items]))]
        item, lengths = items.__getitem__, [len(it["noisy"]) for it in items]
    else:  # items made batch by batch, so that only one batch's padded tensors exist at a time
        item, lengths = make, [len(ds.audio.get(r.utt_id, r.path)) for r in ds.rows.itertuples()]
    rows = {name: [] for name in models}
    for b in (collate([item(i) for i in idx]) for idx in exact_batches(first, lengths, batch_size)):
        x, n = b["noisy"].to(device), b["lengths"].to(device)
        for k, (name, model) in enumerate(models.items()):
            hidden = distance is not None and k == 0 and any(distance.covers(u) for u in b["utt_id"])
            out = model(x, n, output_hidden_states=hidden)
            if hidden:
                distance.add(condition, b["utt_id"], out.hidden_states, out.frame_mask)
            probs = torch.softmax(out.logits.float(), -1).cpu().numpy()
            for i, utt in enumerate(b["utt_id"]):
                rows[name].append(dict(utt_id=utt, condition=condition.condition, severity=condition.level,
                                       noise=condition.noise_name, snr_db=condition.snr_db,
                                       label=int(b["label"][i]), pred=int(probs[i].argmax()),
                                       **{f"p_{e}": float(probs[i, c]) for c, e in enumerate(labels)}))
    if heard:
        kept.save(condition, utt_ids, [heard[i] for i in range(len(ds))])
    order = {u: k for k, u in enumerate(utt_ids)}
    return {name: pd.DataFrame(r).sort_values("utt_id", key=lambda s: s.map(order), kind="stable", ignore_index=True)
            for name, r in rows.items()}


def evaluate_conditions(models: dict, test_df: pd.DataFrame, conditions: list[Condition], noise_bank: dict,
                        seed: int, level: str = "p56", batch_size: int = 32, device="cpu", transform=None,
                        progress: bool = True, desc: str = "evaluate", max_seconds: float | None = None,
                        distance=None, rirs: dict | None = None, kept: KeptAudio | None = None,
                        audio: AudioCache | None = None, features: CnnFeatures | None = None
                        ) -> dict[str, pd.DataFrame]:
    """Each model's predictions under every condition; each utterance cut at ``max_seconds`` as in training
    (``audio``: the utterances and speech levels already read, to share between calls; ``features``: where a frozen
    CNN's outputs are shared with the fold's other models, ``cnn_features.py``)."""
    audio = audio or AudioCache(max_seconds)
    with features.attached(*models.values()) if features is not None else nullcontext():
        parts = [predict_condition(models, test_df, c, noise_bank, seed, level, batch_size, device, transform, audio,
                                   distance, rirs, kept)
                 for c in tqdm(conditions, desc=desc, disable=not progress, leave=False)]
    return {name: pd.concat([p[name] for p in parts], ignore_index=True) for name in models}


def metrics_from_predictions(pred: pd.DataFrame, model_name: str, fold: str) -> pd.DataFrame:
    """The long metrics rows (docs/design.md, "Outputs of a study"): model, condition, severity, noise, snr_db,
    fold, ua, wa, n. ``condition`` is clean, noise (the trained types) or a test-only family; ``severity`` its
    level (the SNR of a noise)."""
    if "condition" not in pred:  # predictions of a study made before the test-only conditions
        pred = pred.assign(condition=np.where(pred.noise == CLEAN, CLEAN, NOISE), severity=pred.snr_db)
    rows = []
    keys = [pred["condition"], pred["noise"], pred["snr_db"].fillna(NO_LEVEL), pred["severity"].fillna(NO_LEVEL)]
    for (condition, noise, snr, severity), g in pred.groupby(keys, sort=False):
        ua, wa = ua_wa(g["label"], g["pred"])
        rows.append(dict(model=model_name, condition=condition, severity=None if severity == NO_LEVEL else severity,
                         noise=noise, snr_db=None if snr == NO_LEVEL else float(snr), fold=fold, ua=ua, wa=wa,
                         n=len(g)))
    return pd.DataFrame(rows)
