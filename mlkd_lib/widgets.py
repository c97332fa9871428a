"""Listening widgets (ipywidgets): hear clean and noisy speech at a chosen noise and SNR.

Players never normalise loudness on their own (a shared gain keeps 0 dB audibly
noisier than 20 dB), never autoplay or loop, and sliders act on release only.
"""

from __future__ import annotations

import io

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import soundfile as sf

from .audio import SAMPLE_RATE
from .data.dataset import CLEAN, AudioCache, condition_rng
from .data.mixing import mix_at_snr


def wav_bytes(x: np.ndarray, gain: float) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, np.clip(x * gain, -1, 1), SAMPLE_RATE, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def player(x: np.ndarray, gain: float, label: str) -> W.VBox:
    audio = W.Audio(value=wav_bytes(x, gain), format="wav", autoplay=False, loop=False)
    return W.VBox([W.Label(label), audio])


def shared_gain(*signals: np.ndarray) -> float:
    """One gain for all players of a view: the loudest signal peaks at 0.9."""
    peak = max(float(np.max(np.abs(s))) for s in signals)
    return 0.9 / peak if peak > 0 else 1.0


def noisy_version(clean: np.ndarray, utt_id: str, noise: str, snr_db: float | None, bank: dict, seed: int,
                  level: str, speech_db: float | None = None) -> np.ndarray:
    """The same deterministic noisy audio the study evaluates for (utterance, noise, SNR)."""
    if noise == CLEAN:
        return clean
    return mix_at_snr(clean, bank[noise], snr_db, condition_rng(seed, utt_id, noise, snr_db), level, speech_db=speech_db)


def mix_player(manifest: pd.DataFrame, bank: dict, snrs, seed: int = 0, level: str = "p56") -> W.VBox:
    """Pick an utterance, a noise type and an SNR; hear and see clean vs noisy."""
    audio = AudioCache()
    utt = W.Dropdown(options=list(manifest.utt_id), description="utterance")
    noise = W.Dropdown(options=sorted(bank), description="noise")
    snr = W.SelectionSlider(options=[float(s) for s in snrs], value=float(snrs[0]), description="SNR (dB)",
                            continuous_update=False)
    out = W.Output()

    def show(_=None):
        row = manifest.set_index("utt_id").loc[utt.value]
        clean = audio.get(utt.value, row.path)
        noisy = noisy_version(clean, utt.value, noise.value, snr.value, bank, seed, level)
        gain = shared_gain(clean, noisy)
        out.clear_output(wait=True)
        with out:
            fig, axes = plt.subplots(1, 2, figsize=(10, 2.6), sharey=True)
            for ax, x, t in zip(axes, (clean, noisy), ("clean", f"{noise.value} {snr.value:g} dB")):
                ax.specgram(x, NFFT=512, Fs=SAMPLE_RATE, noverlap=352, cmap="magma", vmin=-140)
                ax.set_title(f"{utt.value} ({row.emotion}) — {t}", fontsize=9)
            plt.show()
            from IPython.display import display
            display(W.HBox([player(clean, gain, "clean"), player(noisy, gain, f"{noise.value} at {snr.value:g} dB")]))

    for w in (utt, noise, snr):
        w.observe(show, names="value")
    show()
    return W.VBox([W.HBox([utt, noise, snr]), out])
