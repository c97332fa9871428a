"""Reading and writing audio: mono float32 at 16 kHz, with errors that name the file.

torch is imported only when torchaudio resamples, so that ``mlkd predict`` on an ONNX
model (which passes ``resample_scipy``) runs without it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

SAMPLE_RATE = 16_000


class AudioError(ValueError):
    """An audio file or signal that the study cannot use (names the file or value)."""


# Two resamplers, on purpose. The study's own (``resample``, torchaudio's windowed sinc) made every
# generated corpus and NOISEX bank, so changing it would change every result; deployment
# (``resample_scipy``, scipy's polyphase filter) keeps `mlkd predict` on an ONNX model free of torch.
# They agree within a stated tolerance (tests/unit/data/test_audio.py).


def resample(x: np.ndarray, orig_sr: int, target_sr: int = SAMPLE_RATE) -> np.ndarray:
    """The study's resampler (torchaudio, imported only when a rate differs)."""
    if orig_sr == target_sr:
        return x.astype(np.float32, copy=False)
    import torch
    import torchaudio.functional as AF
    # torchaudio wants integer rates; NOISEX's 19.98 kHz is passed as 19980 Hz
    y = AF.resample(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)),
                    int(round(orig_sr)), int(target_sr))
    return y.numpy()


def resample_scipy(x: np.ndarray, orig_sr: int, target_sr: int = SAMPLE_RATE) -> np.ndarray:
    """Deployment's resampler: scipy's polyphase filter by the exact rational ratio of the two rates."""
    from fractions import Fraction

    from scipy.signal import resample_poly
    ratio = Fraction(int(round(target_sr)), int(round(orig_sr)))
    return resample_poly(x, ratio.numerator, ratio.denominator).astype(np.float32)


def to_mono(x: np.ndarray, where: str) -> np.ndarray:
    """Average the channels of a (samples, channels) array; documented conversion for stereo."""
    if x.ndim == 1:
        return x
    if x.ndim == 2:
        return x.mean(axis=1)
    raise AudioError(f"{where}: expected mono or (samples, channels) audio, got shape {x.shape}")


def check_signal(x: np.ndarray, where: str) -> np.ndarray:
    if x.size == 0:
        raise AudioError(f"{where}: empty audio (0 samples)")
    if not np.all(np.isfinite(x)):
        raise AudioError(f"{where}: audio holds NaN or inf samples")
    return x


def read_audio(path: str | Path, sample_rate: int | None = SAMPLE_RATE, resample_to: bool = False,
               resampler=resample) -> np.ndarray:
    """Mono float32 samples of ``path``.

    Stereo is averaged to mono. A file whose rate differs from ``sample_rate`` is an
    error unless ``resample_to`` is set (then ``resampler(x, sr, sample_rate)`` converts it;
    torchaudio by default).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"audio file not found: {path}")
    try:
        x, sr = sf.read(str(path), dtype="float32", always_2d=False)
    except (RuntimeError, sf.LibsndfileError) as err:
        raise AudioError(f"{path}: not a readable audio file ({err})") from err
    x = check_signal(to_mono(x, str(path)), str(path))
    if sample_rate is not None and sr != sample_rate:
        if not resample_to:
            raise AudioError(f"{path}: sample rate {sr} Hz, expected {sample_rate} Hz "
                             f"(resample it to {sample_rate} Hz first, e.g. sox in.wav -r {sample_rate} out.wav)")
        x = resampler(x, sr, sample_rate)
    return x.astype(np.float32, copy=False)


def write_audio(path: str | Path, x: np.ndarray, sample_rate: int = SAMPLE_RATE,
                subtype: str = "PCM_16") -> Path:
    """Write mono audio. PCM_16 for generated corpora; FLOAT for mixtures, so that
    nothing is clipped (a mixture may exceed full scale: speech is never rescaled)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    x = check_signal(np.asarray(x, dtype=np.float32), str(path))
    if subtype.startswith("PCM") and np.max(np.abs(x)) > 1.0:
        raise AudioError(f"{path}: peak {np.max(np.abs(x)):.2f} exceeds full scale; "
                         f"write it as FLOAT so that nothing is clipped")
    sf.write(str(path), x, sample_rate, subtype=subtype)
    return path


def duration_s(path: str | Path) -> float:
    try:
        info = sf.info(str(path))
    except (RuntimeError, sf.LibsndfileError) as err:
        raise AudioError(f"{path}: not a readable audio file ({err})") from err
    return info.frames / info.samplerate


def speech_like(rng: np.random.Generator, seconds: float = 1.5, pause_s: float = 0.4,
                sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """A speech-like test signal for where no corpus is at hand (benchmarks, tests): harmonics of a
    gliding pitch switched on and off at syllable rate over a faint noise floor, with ``pause_s`` of
    silence at both ends (so a VAD has pauses to find)."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    f0 = 140 + 30 * np.sin(2 * np.pi * 0.7 * t)
    voiced = sum(np.sin(2 * np.pi * k * np.cumsum(f0) / sample_rate) / k for k in range(1, 6))
    env = np.clip(np.sin(2 * np.pi * 4 * t), 0, None) ** 0.5
    x = 0.2 * voiced * env + 0.002 * rng.standard_normal(len(t))
    pause = np.zeros(int(pause_s * sample_rate))
    return np.concatenate([pause, x, pause]).astype(np.float32)
