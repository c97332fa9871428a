"""Listening widgets (ipywidgets): hear clean and noisy speech at a chosen noise and SNR, and see
what each model makes of it.

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
import torch
from matplotlib.figure import Figure

from ..arms import label
from ..data.audio import SAMPLE_RATE
from ..data.conditions.families import Condition, heard
from ..data.dataset import AudioCache


def wav_bytes(x: np.ndarray, gain: float) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, np.clip(x * gain, -1, 1), SAMPLE_RATE, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def audio_player() -> W.Audio:
    return W.Audio(format="wav", autoplay=False, loop=False, layout=W.Layout(width="260px"))


def shared_gain(*signals: np.ndarray) -> float:
    """One gain for all players of a view: the loudest signal peaks at 0.9."""
    peak = max(float(np.max(np.abs(s))) for s in signals)
    return 0.9 / peak if peak > 0 else 1.0


def figure_png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def spectrogram_png(signals: dict[str, np.ndarray], title: str) -> bytes:
    """Waveform over spectrogram, one column per signal, as PNG bytes for an Image widget
    (no Output widget: it also runs headless under papermill and Voilà). Drawn with the
    Figure API at screen resolution: about 0.4 s for three signals, so updates stay snappy."""
    fig = Figure(figsize=(3.3 * len(signals), 3.2), dpi=72)
    axes = fig.subplots(2, len(signals), squeeze=False, gridspec_kw={"height_ratios": [1, 2]}, sharex=True)
    peak = max(float(np.max(np.abs(x))) for x in signals.values()) or 1.0
    for c, (name, x) in enumerate(signals.items()):
        t = np.arange(len(x)) / SAMPLE_RATE
        axes[0][c].plot(t[::4], x[::4], lw=0.4)
        axes[0][c].set_ylim(-peak, peak)
        axes[0][c].set_title(name, fontsize=9)
        axes[1][c].specgram(x, NFFT=512, Fs=SAMPLE_RATE, noverlap=352, cmap="magma", vmin=-140)
        axes[1][c].set_xlabel("time (s)")
    axes[1][0].set_ylabel("Hz")
    fig.suptitle(title, fontsize=9)
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.13, top=0.86, wspace=0.25, hspace=0.15)
    return figure_png(fig)


def mix_player(manifest: pd.DataFrame, bank: dict, snrs, seed: int = 0, level: str = "p56",
               max_seconds: float | None = None) -> W.VBox:
    """Pick an utterance, a noise type and an SNR; hear and see clean vs noisy, cut at ``max_seconds``
    as the models hear it (the speech level, and so the noise's gain, is that of the cut audio)."""
    audio = AudioCache(max_seconds)
    rows = manifest.set_index("utt_id")
    utt = W.Dropdown(options=list(manifest.utt_id), description="utterance")
    noise = W.Dropdown(options=sorted(bank), description="noise")
    snr = W.SelectionSlider(options=[float(s) for s in snrs], value=float(snrs[0]), description="SNR (dB)",
                            continuous_update=False)
    clean_player, noisy_player = audio_player(), audio_player()
    noisy_label = W.Label()
    image = W.Image(format="png")

    def show(_=None):
        row = rows.loc[utt.value]
        clean = audio.get(utt.value, row.path)
        noisy = heard(clean, utt.value, Condition(noise.value, snr.value), bank, None, seed, level,
                      audio.level_db(utt.value, row.path, level))
        gain = shared_gain(clean, noisy)
        clean_player.value, noisy_player.value = wav_bytes(clean, gain), wav_bytes(noisy, gain)
        noisy_label.value = f"{noise.value} at {snr.value:g} dB"
        image.value = spectrogram_png({"clean": clean, noisy_label.value: noisy}, f"{utt.value} ({row.emotion})")

    for w in (utt, noise, snr):
        w.observe(show, names="value")
    show()
    players = W.HBox([W.VBox([W.Label("clean"), clean_player]), W.VBox([noisy_label, noisy_player])])
    return W.VBox([W.HBox([utt, noise, snr]), players, image])


def class_probabilities(model, x: np.ndarray) -> np.ndarray:
    """The model's probabilities for ``x``, scaled by the temperature fitted on its validation speech (the baseline's
    come through its teacher, and so with the teacher's temperature)."""
    with torch.no_grad():
        logits = model(torch.from_numpy(np.asarray(x, dtype=np.float32))[None]).logits
    return torch.softmax(logits.double() / model.calibration_temperature, -1)[0].numpy()


def predictions_html(true_label: str | None, probs: dict[str, np.ndarray | None], notes: list[str],
                     labels: list[str] | tuple[str, ...], min_confidence: float = 0.0) -> str:
    """A table: one row per model, a bar per class (``labels``, the study's classes in logit order), the
    predicted class in bold, the model's confidence (its top probability; below ``min_confidence`` the answer is
    marked uncertain) and, with a ``true_label``, whether it is right."""
    head = "".join(f"<th style='padding:2px 8px'>{e}</th>" for e in labels)
    rows = []
    for name, p in probs.items():
        if p is None:
            rows.append(f"<tr><td>{label(name)}</td><td colspan={len(labels) + 2}><i>not trained</i></td></tr>")
            continue
        best = int(np.argmax(p))
        cells = "".join(
            f"<td style='padding:2px 8px'><div style='background:#4c72b0;height:10px;width:{60 * v:.0f}px'></div>"
            f"{'<b>' if i == best else ''}{v:.2f}{'</b>' if i == best else ''}</td>" for i, v in enumerate(p))
        mark = "" if true_label is None else "✔" if labels[best] == true_label else "✘"
        full = ",".join(f"{v:.6f}" for v in p)  # full precision, for tests and for copying
        unsure = p[best] < min_confidence
        answer = (f"<span style='color:#999'>{mark} {labels[best]}?</span> <i>uncertain</i>" if unsure
                  else f"{mark} {labels[best]}")
        rows.append(f"<tr class='mlkd-row' data-model='{name}' data-probs='{full}' "
                    f"data-uncertain='{str(unsure).lower()}'><td>{label(name)}</td>{cells}"
                    f"<td style='padding:2px 8px'>{p[best]:.2f}</td><td>{answer}</td></tr>")
    note = "".join(f"<div style='color:#a33'>{n}</div>" for n in notes)
    title = "your recording" if true_label is None else f"true label: {true_label}"
    return (f"<div><b>{title}</b>{note}<table><tr><th>model</th>{head}<th>confidence</th><th>prediction</th></tr>"
            + "".join(rows) + f"</table><small>temperature-scaled probabilities; uncertain: confidence below "
            f"{min_confidence:g}</small></div>")
