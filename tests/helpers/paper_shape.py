"""Inputs shaped like the paper preset's, made in seconds: an IEMOCAP_full_release tree, NOISEX-92
``.mat`` files and a wav2vec2-base-shaped model folder (group norm, 12 layers, narrow)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io
import soundfile as sf
from transformers import Wav2Vec2Config, Wav2Vec2Model

HEADER = "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n"
EMOTION_CODES = ("neu", "exc", "ang", "sad", "hap")  # exc is merged into hap
NOISEX_RATE = 19_980
# NOISEX-92's fifteen recordings as the SPIB copies name them: the paper's five (factory1 serves as factory) and the
# ten others, which a study takes as its unseen noise
NOISEX_FILES = ("babble", "f16", "factory1", "hfchannel", "volvo", "white", "pink", "buccaneer1", "buccaneer2",
                "destroyerengine", "destroyerops", "factory2", "leopard", "m109", "machinegun")


def make_iemocap(root: Path, per_speaker: int = 5, seed: int = 0, seconds: tuple[float, float] = (0.8, 2.0)) -> Path:
    """Every speaker of the five sessions, ``2 * per_speaker`` labelled turns each (plus turns outside
    the four classes) of ``seconds`` (a uniform range), with the corpus' quirks: each dialog led by one gender
    holds both speakers' turns, dialog names with suffixes, exc, per-evaluator sub-folders and macOS '._' files."""
    rng = np.random.default_rng(seed)
    for session in range(1, 6):
        sess = root / f"Session{session}"
        ev = sess / "dialog" / "EmoEvaluation"
        ev.mkdir(parents=True, exist_ok=True)
        for lead in "FM":
            dialog = f"Ses{session:02d}{lead}_impro0{session}a"
            lines = [HEADER]
            for speaker in "FM":
                for i in range(per_speaker + 1):
                    utt = f"{dialog}_{speaker}{i:03d}"
                    label = EMOTION_CODES[i % len(EMOTION_CODES)] if i < per_speaker else "fru"
                    length = rng.uniform(*seconds)
                    lines.append(f"[{i}.0000 - {i + length:.4f}]\t{utt}\t{label}\t[2.5000, 3.0000, 2.5000]\n")
                    lines.append("C-E1:\tNeutral;\t()\n\n")
                    wav = sess / "sentences" / "wav" / dialog / f"{utt}.wav"
                    wav.parent.mkdir(parents=True, exist_ok=True)
                    t = np.arange(int(length * 16_000)) / 16_000
                    pitch = 120 + 40 * (speaker == "F") + 30 * (i % 4)
                    x = (0.1 * np.sin(2 * np.pi * pitch * t) * (1 + np.sin(2 * np.pi * 3 * t))
                         + 0.01 * rng.standard_normal(len(t)))
                    sf.write(wav, x.astype(np.float32), 16_000)
            (ev / f"{dialog}.txt").write_text("".join(lines))
            (ev / "Categorical").mkdir(exist_ok=True)
            (ev / "Categorical" / f"{dialog}_e1_cat.txt").write_text("[0.0 - 1.0]\tnot a dialog file\tang\t[1]\n")
            (ev / f"._{dialog}.txt").write_bytes(b"\x00\x05\x16\x07Mac OS X")
    return root


def make_noisex(folder: Path, seconds: float = 4.0, seed: int = 0, stems=NOISEX_FILES) -> Path:
    """SPIB-style ``.mat`` files at 19.98 kHz: the variable named after the file, 16-bit sample values
    stored as doubles (factory1 is NOISEX's factory floor noise); all fifteen recordings unless ``stems`` names
    fewer."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for stem in stems:
        x = np.round(3000 * rng.standard_normal(int(seconds * NOISEX_RATE))).clip(-32768, 32767)
        scipy.io.savemat(folder / f"{stem}.mat", {stem: x[:, None].astype(np.float64)})
    return folder


def make_base_shaped_model(folder: Path, seed: int = 0, full_size: bool = False) -> Path:
    """wav2vec2-base's layout (group-norm CNN of 7 layers, 12 transformer layers, no stable layer
    norm, SpecAugment 0.05 in its config as the real one ships) at width 32, saved like a download;
    ``full_size``: wav2vec2-base itself (768 wide, 95 M parameters), random weights."""
    import torch
    torch.manual_seed(seed)
    if full_size:
        Wav2Vec2Model(Wav2Vec2Config(mask_time_prob=0.05)).save_pretrained(folder)
        return folder
    config = Wav2Vec2Config(hidden_size=32, num_hidden_layers=12, num_attention_heads=2, intermediate_size=64,
                            conv_dim=(16,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
                            feat_extract_norm="group", do_stable_layer_norm=False, mask_time_prob=0.05)
    Wav2Vec2Model(config).save_pretrained(folder)
    return folder
