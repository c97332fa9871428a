"""The paper's baseline, built as cited ([23]): NMF speech enhancement, then a VAD that removes
the non-speech frames, then the clean-trained teacher on what remains.

- NMF: magnitude spectrogram V ≈ [W_s W_n]·H with KL-divergence multiplicative updates.
  W_s (speech basis) is learned once per fold from clean training speech; W_n (noise basis)
  from the frames of the noisy input that the VAD calls non-speech (if it finds too few, the
  quietest 20 % of frames serve). A Wiener-style mask |W_s H_s|² / (|W_s H_s|² + |W_n H_n|²)
  is applied to the noisy STFT, and the result is resynthesised. Iteration counts were chosen
  from the measured objective (02b plots it): after ``NOISE_ITERS`` / ``FIT_ITERS`` updates
  the KL divergence is within about 1 % of its value after three times as many.
- VAD: WebRTC's GMM voice activity detector (``webrtcvad-wheels``: compiled C, no model file,
  microseconds a frame, deterministic). It runs on the enhanced signal and its non-speech
  30 ms frames are dropped before the classifier.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from ..data.audio import SAMPLE_RATE
from ..data.conditions.families import heard, trained_conditions
from ..data.dataset import AudioCache
from ..data.vad import VAD_FRAME_MS, vad_decisions

N_FFT, HOP = 512, 256  # 32 ms Hann window, 50 % overlap
EPS = 1e-10
NOISE_ITERS, FIT_ITERS = 200, 100
FIT_CHUNK = 16  # utterances fitted together (sorted by length, so that little work goes to padding)
MIN_SPEECH_S = 0.25  # keep the whole signal when the VAD hears less speech than this


def stft_mag_phase(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    spec = torch.stft(torch.from_numpy(np.asarray(x, dtype=np.float32)), N_FFT, HOP, window=torch.hann_window(N_FFT),
                      return_complex=True, center=True)
    return spec.abs().numpy(), torch.angle(spec).numpy()  # float32: NMF needs no more


def istft(mag: np.ndarray, phase: np.ndarray, length: int) -> np.ndarray:
    spec = torch.polar(torch.from_numpy(mag).float(), torch.from_numpy(phase).float())
    return torch.istft(spec, N_FFT, HOP, window=torch.hann_window(N_FFT), center=True, length=length).numpy()


def vad_speech_frames(x: np.ndarray, aggressiveness: int = 2) -> np.ndarray:
    """Boolean per STFT frame: True where WebRTC VAD hears speech."""
    decisions = vad_decisions(x, aggressiveness)
    if not len(decisions):
        decisions = np.array([True])
    n = SAMPLE_RATE * VAD_FRAME_MS // 1000
    frames = 1 + len(x) // HOP
    # STFT frame t is centred at t·HOP; map it to the VAD frame that holds that sample
    return decisions[np.minimum((np.arange(frames) * HOP) // n, len(decisions) - 1)]


def drop_non_speech(x: np.ndarray, aggressiveness: int = 2, min_speech_s: float = MIN_SPEECH_S) -> np.ndarray:
    """``x`` without the 30 ms frames the VAD calls non-speech (a trailing partial frame is kept
    with its neighbour's decision). Too little speech found: ``x`` unchanged, since a classifier
    needs something to hear."""
    decisions = vad_decisions(x, aggressiveness)
    n = SAMPLE_RATE * VAD_FRAME_MS // 1000
    if decisions.sum() * n < min_speech_s * SAMPLE_RATE:
        return x
    keep = np.repeat(decisions, n)
    keep = np.concatenate([keep, np.full(len(x) - len(keep), decisions[-1])])
    return x[keep]


def kl_divergence(V: np.ndarray, WH: np.ndarray) -> float:
    """The generalised KL divergence D(V ‖ WH) that the multiplicative updates decrease."""
    return float(np.sum(V * np.log((V + EPS) / (WH + EPS)) - V + WH))


def nmf(V: np.ndarray, W: np.ndarray, H: np.ndarray, iters: int, fixed_cols: int = 0,
        track: bool = False) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """KL-NMF V ≈ W H by multiplicative updates (Lee & Seung), from the given start. The first
    ``fixed_cols`` columns of W stay fixed (learned bases); the rest are learned. With ``track``,
    the objective after each update is returned (its fall is the convergence check).

    V, W, H may carry a leading batch axis (one factorisation per utterance, done together in torch's batched
    matrix products): frames that pad V to a common length are zero in V and in H, so they stay zero and add
    nothing to any update."""
    V, W, H = (torch.from_numpy(np.array(a, dtype=np.float32)) for a in (V, W, H))
    learn_w = fixed_cols < W.shape[-1]
    w_sum = W.sum(-2).unsqueeze(-1) + EPS
    history = []
    for _ in range(iters):
        H.mul_((W.transpose(-1, -2) @ _ratio(V, W, H)).div_(w_sum))
        if learn_w:
            step = (_ratio(V, W, H) @ H.transpose(-1, -2)).div_(H.sum(-1).unsqueeze(-2) + EPS)
            W[..., fixed_cols:] *= step[..., fixed_cols:]
            w_sum = W.sum(-2).unsqueeze(-1) + EPS
        if track:
            history.append(kl_divergence(V.numpy(), (W @ H).numpy()))
    return W.numpy(), H.numpy(), history


def _ratio(V: torch.Tensor, W: torch.Tensor, H: torch.Tensor) -> torch.Tensor:
    """V / (W H + ε), the sum and the quotient written over W H: a new V-sized array for each cost a third of the
    time. (The products themselves get new arrays: a matrix product written into a given one may round differently.)"""
    wh = W @ H
    return torch.div(V, wh.add_(EPS), out=wh)


def _stack(parts: list[np.ndarray]) -> np.ndarray:
    """(F, T_i) arrays as one (batch, F, max T) array, zero-padded."""
    out = np.zeros((len(parts), parts[0].shape[0], max(p.shape[1] for p in parts)), dtype=np.float32)
    for i, p in enumerate(parts):
        out[i, :, : p.shape[1]] = p
    return out


def _random(rng: np.random.Generator, shape) -> np.ndarray:
    return rng.random(shape, dtype=np.float32) + EPS


@dataclass
class VadNmfEnhancer:
    """Callable noisy waveform → the baseline's input to the teacher (enhanced, non-speech dropped)."""
    speech_basis: np.ndarray
    noise_components: int = 8
    aggressiveness: int = 2
    noise_iters: int = NOISE_ITERS
    fit_iters: int = FIT_ITERS
    seed: int = 0

    @classmethod
    def fit(cls, clean_waves: list[np.ndarray], speech_components: int = 32, noise_components: int = 8,
            aggressiveness: int = 2, iters: int = 200, seed: int = 0, max_frames: int = 4_000) -> VadNmfEnhancer:
        """Learn the speech basis from the speech frames of clean training utterances."""
        if not clean_waves:
            raise ValueError("the NMF speech basis needs clean training speech")
        frames = []
        for w in clean_waves:
            mag, _ = stft_mag_phase(w)
            frames.append(mag[:, vad_speech_frames(w, aggressiveness)])
        V = np.concatenate(frames, axis=1)
        rng = np.random.default_rng(seed)
        if V.shape[1] > max_frames:
            V = V[:, rng.choice(V.shape[1], max_frames, replace=False)]
        W, _, _ = nmf(V, _random(rng, (V.shape[0], speech_components)), _random(rng, (speech_components, V.shape[1])),
                      iters)
        W /= W.sum(0, keepdims=True) + EPS
        return cls(W, noise_components, aggressiveness, seed=seed)

    def save_basis(self, path: str | Path) -> None:
        """The learned speech basis (the explorer rebuilds the enhancer from it)."""
        np.save(path, self.speech_basis)

    def _start(self, noisy: np.ndarray):
        """An utterance's spectrogram, its noise frames and the NMF starts, drawn as one utterance alone would."""
        rng = np.random.default_rng(self.seed)
        mag, phase = stft_mag_phase(noisy)
        quiet = ~vad_speech_frames(noisy, self.aggressiveness)
        if quiet.sum() < 5:  # the VAD hears speech everywhere: take the quietest frames
            energy = mag.sum(0)
            quiet = energy <= np.quantile(energy, 0.2)
        V_n, k_n = mag[:, quiet], self.noise_components
        W_n0, H_n0 = _random(rng, (V_n.shape[0], k_n)), _random(rng, (k_n, V_n.shape[1]))
        H0 = _random(rng, (self.speech_basis.shape[1] + k_n, mag.shape[1]))
        return mag, phase, V_n, W_n0, H_n0, H0

    def _mask(self, mag, phase, W_n, H, length):
        k_s = self.speech_basis.shape[1]
        S, N = (self.speech_basis @ H[:k_s]) ** 2, (W_n @ H[k_s:]) ** 2
        return istft(mag * (S / (S + N + EPS)), phase, length).astype(np.float32)

    def enhance(self, noisy: np.ndarray, track: bool = False):
        """The NMF-enhanced waveform (same length as ``noisy``); with ``track`` also the
        objective histories {"noise basis": [...], "fit": [...]}."""
        mag, phase, V_n, W_n0, H_n0, H0 = self._start(noisy)
        W_n, _, hist_n = nmf(V_n, W_n0, H_n0, self.noise_iters, track=track)
        W_n /= W_n.sum(0, keepdims=True) + EPS
        W = np.concatenate([self.speech_basis, W_n], axis=1)
        _, H, hist = nmf(mag, W, H0, self.fit_iters, fixed_cols=W.shape[1], track=track)
        out = self._mask(mag, phase, W_n, H, len(noisy))
        return (out, {"noise basis": hist_n, "fit": hist}) if track else out

    def enhance_many(self, noisy: list[np.ndarray], chunk: int = FIT_CHUNK) -> list[np.ndarray]:
        """``enhance`` of every input, the factorisations done together (zero-padded to a common length): the
        same updates from the same starts, without a Python loop per utterance and iteration.

        The noise bases are learned all together: their update sums over frames, whose rounding depends on the
        padded length. The fit keeps the bases fixed and sums over no frame, so padding changes none of its bits:
        it runs in chunks of ``chunk`` utterances of similar length, each padded only to its own longest."""
        if not noisy:
            return []
        starts = [self._start(x) for x in noisy]
        W_n, _, _ = nmf(_stack([s[2] for s in starts]), np.stack([s[3] for s in starts]),
                        _stack([s[4] for s in starts]), self.noise_iters)
        W_n /= W_n.sum(-2, keepdims=True) + EPS
        W = np.concatenate([np.broadcast_to(self.speech_basis, (len(noisy), *self.speech_basis.shape)), W_n], axis=2)
        H = [None] * len(noisy)
        order = sorted(range(len(noisy)), key=lambda i: starts[i][0].shape[1])
        for idx in (order[k:k + chunk] for k in range(0, len(order), chunk)):
            _, fitted, _ = nmf(_stack([starts[i][0] for i in idx]), W[idx], _stack([starts[i][5] for i in idx]),
                               self.fit_iters, fixed_cols=W.shape[-1])
            for i, h in zip(idx, fitted):
                H[i] = h[:, : starts[i][0].shape[1]]
        return [self._mask(s[0], s[1], W_n[i], H[i], len(x)) for i, (s, x) in enumerate(zip(starts, noisy))]

    def __call__(self, noisy: list[np.ndarray]) -> list[np.ndarray]:
        """The baseline's front-end on a list of noisy inputs: enhanced, non-speech dropped."""
        return [drop_non_speech(y, self.aggressiveness) for y in self.enhance_many(noisy)]


def enhancement_scores(clean: np.ndarray, degraded: np.ndarray) -> dict[str, float]:
    """PESQ wide-band (ITU-T P.862.2) and STOI of ``degraded`` against ``clean`` (same length).
    NaN where PESQ finds no utterance in the signal."""
    from pesq import PesqError, pesq
    from pystoi import stoi
    try:
        p = float(pesq(SAMPLE_RATE, clean, degraded, "wb"))
    except PesqError:
        p = float("nan")
    return {"pesq_wb": p, "stoi": float(stoi(clean, degraded, SAMPLE_RATE, extended=False))}


ENHANCEMENT_COLUMNS = ["utt_id", "noise", "snr_db", "pesq_wb_noisy", "stoi_noisy", "pesq_wb_enhanced",
                       "stoi_enhanced"]


def score_enhancement(enhancer, cfg, data, per_emotion: int, progress: bool = True
                      ) -> pd.DataFrame:
    """PESQ-WB and STOI of the noisy and of the NMF-enhanced audio against the clean speech, for
    ``per_emotion`` test utterances of each emotion under every noise type at ``cfg.enhancement_snrs``
    (PESQ is slow; 0 scores none and gives the columns alone)."""
    audio = AudioCache(cfg.max_seconds)
    rows = data.test.groupby("emotion", sort=True).head(per_emotion)
    scored = set(cfg.enhancement_snrs or cfg.snrs)
    conditions = [c for c in trained_conditions(cfg.noise_types, cfg.snrs) if c.snr_db is not None
                  and c.snr_db in scored]
    out = []
    for c in tqdm(conditions, desc="PESQ / STOI", disable=not progress, leave=False):
        clean = [audio.get(r.utt_id, r.path) for r in rows.itertuples()]
        noisy = [heard(x, r.utt_id, c, data.noise_bank, None, cfg.seed, cfg.level,
                       audio.level_db(r.utt_id, r.path, cfg.level)) for x, r in zip(clean, rows.itertuples())]
        for r, x, y, z in zip(rows.itertuples(), clean, noisy, map(enhancer.enhance, noisy)):
            before, after = enhancement_scores(x, y), enhancement_scores(x, z)
            out.append(dict(utt_id=r.utt_id, noise=c.noise, snr_db=c.snr_db,
                            **{f"{k}_noisy": v for k, v in before.items()},
                            **{f"{k}_enhanced": v for k, v in after.items()}))
    return pd.DataFrame(out, columns=ENHANCEMENT_COLUMNS)


def clean_training_audio(data, cfg, limit: int = 200) -> list[np.ndarray]:
    """Up to ``limit`` clean training utterances of the fold (``data``: ``prepare.FoldData``), for the speech basis."""
    audio = AudioCache(cfg.max_seconds)
    rows = data.train.sample(min(limit, len(data.train)), random_state=cfg.seed)
    return [audio.get(r.utt_id, r.path) for r in rows.itertuples()]
