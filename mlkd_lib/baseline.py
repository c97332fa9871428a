"""The paper's baseline: a VAD front-end and NMF speech enhancement, then the clean-trained teacher.

- VAD: WebRTC's GMM voice activity detector (``webrtcvad-wheels``: compiled C, no model
  file to manage, microseconds a frame, deterministic). Silero-VAD is more robust at
  0 dB but 10–20× slower on the CPU and pulls in onnxruntime; the demo's budget decided.
- NMF: magnitude spectrogram V ≈ [W_s W_n]·H with KL-divergence multiplicative updates.
  W_s (speech basis) is learned once from clean training speech; W_n (noise basis) from
  the frames of the noisy input that the VAD calls non-speech (if it finds too few, the
  quietest 20 % of frames serve). A Wiener-style mask |W_s H_s|² / (|W_s H_s|² + |W_n H_n|²)
  is applied to the noisy STFT, and the result is resynthesised.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import webrtcvad

from .audio import SAMPLE_RATE

N_FFT, HOP = 512, 160  # 32 ms window, 10 ms hop
VAD_FRAME_MS = 30
EPS = 1e-10


def stft_mag_phase(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    spec = torch.stft(torch.from_numpy(np.asarray(x, dtype=np.float32)), N_FFT, HOP, window=torch.hann_window(N_FFT),
                      return_complex=True, center=True)
    return spec.abs().numpy(), torch.angle(spec).numpy()  # float32: NMF needs no more


def istft(mag: np.ndarray, phase: np.ndarray, length: int) -> np.ndarray:
    spec = torch.polar(torch.from_numpy(mag).float(), torch.from_numpy(phase).float())
    return torch.istft(spec, N_FFT, HOP, window=torch.hann_window(N_FFT), center=True, length=length).numpy()


def vad_speech_frames(x: np.ndarray, aggressiveness: int = 2) -> np.ndarray:
    """Boolean per STFT frame: True where WebRTC VAD hears speech."""
    vad = webrtcvad.Vad(aggressiveness)
    n = SAMPLE_RATE * VAD_FRAME_MS // 1000
    peak = max(np.max(np.abs(x)), 1e-9)
    pcm = (np.clip(x / max(peak, 1.0), -1, 1) * 32767).astype(np.int16)  # only the VAD sees this scaled copy
    decisions = [vad.is_speech(pcm[i:i + n].tobytes(), SAMPLE_RATE) for i in range(0, len(pcm) - n + 1, n)]
    decisions = np.array(decisions or [True])
    frames = 1 + len(x) // HOP
    # STFT frame t is centred at t·HOP; map it to the VAD frame that holds that sample
    idx = np.minimum((np.arange(frames) * HOP) // n, len(decisions) - 1)
    return decisions[idx]


def nmf(V: np.ndarray, k: int, iters: int, rng: np.random.Generator, W: np.ndarray | None = None,
        fixed_cols: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """KL-NMF V ≈ W H by multiplicative updates. The first ``fixed_cols`` columns of a given
    ``W`` stay fixed (the learned bases); the rest, if any, are learned."""
    f, t = V.shape
    W = (rng.random((f, k), dtype=np.float32) + EPS) if W is None else W.astype(np.float32)
    H = rng.random((W.shape[1], t), dtype=np.float32) + EPS
    for _ in range(iters):
        WH = W @ H + EPS
        H *= (W.T @ (V / WH)) / (W.sum(0)[:, None] + EPS)
        if fixed_cols < W.shape[1]:
            WH = W @ H + EPS
            upd = ((V / WH) @ H.T) / (H.sum(1)[None, :] + EPS)
            W[:, fixed_cols:] *= upd[:, fixed_cols:]
    return W, H


@dataclass
class VadNmfEnhancer:
    """Callable noisy waveform → enhanced waveform (the baseline's front-end)."""
    speech_basis: np.ndarray
    noise_components: int = 8
    aggressiveness: int = 2
    iters: int = 20
    seed: int = 0

    @classmethod
    def fit(cls, clean_waves: list[np.ndarray], speech_components: int = 32, noise_components: int = 8,
            aggressiveness: int = 2, iters: int = 50, seed: int = 0, max_frames: int = 4_000) -> VadNmfEnhancer:
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
        W, _ = nmf(V, speech_components, iters, rng)
        W /= W.sum(0, keepdims=True) + EPS
        return cls(W, noise_components, aggressiveness, seed=seed)

    def noise_basis(self, mag: np.ndarray, speech: np.ndarray, rng) -> np.ndarray:
        quiet = ~speech
        if quiet.sum() < 5:  # the VAD hears speech everywhere: take the quietest frames
            energy = mag.sum(0)
            quiet = energy <= np.quantile(energy, 0.2)
        W, _ = nmf(mag[:, quiet], self.noise_components, self.iters, rng)
        return W / (W.sum(0, keepdims=True) + EPS)

    def __call__(self, noisy: np.ndarray) -> np.ndarray:
        rng = np.random.default_rng(self.seed)
        mag, phase = stft_mag_phase(noisy)
        W_n = self.noise_basis(mag, vad_speech_frames(noisy, self.aggressiveness), rng)
        W = np.concatenate([self.speech_basis, W_n], axis=1)
        _, H = nmf(mag, W.shape[1], self.iters, rng, W=W, fixed_cols=W.shape[1])
        ks = self.speech_basis.shape[1]
        S, N = (self.speech_basis @ H[:ks]) ** 2, (W_n @ H[ks:]) ** 2
        mask = S / (S + N + EPS)
        return istft(mag * mask, phase, len(noisy)).astype(np.float32)
