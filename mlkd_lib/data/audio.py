"""Reading and writing audio: mono float32 at 16 kHz, with errors that name the file.

Data as it ships — a corpus at 48 kHz, a noise collection at 44.1 kHz, NOISEX-92 at 19.98 kHz, a recording
uploaded to the explorer — is brought to 16 kHz by one resampler, ``resample``: soxr at its very high quality
setting (libsoxr, the resampler of SoX: maintained, compiled and torch-free, so that ``mlkd predict`` on an ONNX
model shares it). Measured with tones from 48, 44.1, 22.05 and 19.98 kHz: flat within 0.01 dB up to 7 kHz, −3 dB
at 7.6 kHz, more than 150 dB down from 9 kHz (tests/unit/data/test_audio.py); a minute of 48 kHz audio takes
about 30 ms on one core. torchaudio's windowed sinc (``resample_sinc``) stays only where the study *makes* audio
at another rate: the synthetic corpus (espeak-ng speaks at 22.05 kHz) and the telephone channel (8 kHz); every
figure of the demo rests on those two."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

SAMPLE_RATE = 16_000
RESAMPLER = "soxr VHQ"  # what ``resample`` is, as the pre-flight and the data step name it


class AudioError(ValueError):
    """An audio file or signal that the study cannot use (names the file or value)."""


def resample(x: np.ndarray, orig_sr: float, target_sr: int = SAMPLE_RATE) -> np.ndarray:
    """``x`` (samples, or samples × channels) at ``target_sr``: the one resampler for audio as it ships."""
    if orig_sr == target_sr:
        return np.asarray(x, dtype=np.float32)
    import soxr
    return soxr.resample(np.ascontiguousarray(x, dtype=np.float32), float(orig_sr), float(target_sr), quality="VHQ")


def resample_stream(orig_sr: float, target_sr: int = SAMPLE_RATE):
    """``resample`` for a recording read in blocks (``mlkd predict --segments``): each mono block goes through
    ``.resample_chunk(x, last=...)`` and the pieces join as if the whole had been resampled at once."""
    import soxr
    return soxr.ResampleStream(float(orig_sr), float(target_sr), 1, dtype="float32", quality="VHQ")


def resample_sinc(x: np.ndarray, orig_sr: int, target_sr: int = SAMPLE_RATE) -> np.ndarray:
    """torchaudio's windowed sinc, for audio the study makes itself (the synthetic corpus, the telephone channel):
    changing it would change the demo's every figure. torch is imported only here."""
    if orig_sr == target_sr:
        return x.astype(np.float32, copy=False)
    import torch
    import torchaudio.functional as AF
    y = AF.resample(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), int(round(orig_sr)), int(target_sr))
    return y.numpy()


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


def read_audio(path: str | Path, sample_rate: int | None = SAMPLE_RATE, resample_to: bool = False) -> np.ndarray:
    """Mono float32 samples of ``path``.

    Stereo is averaged to mono. A file whose rate differs from ``sample_rate`` is an error unless
    ``resample_to`` is set (then ``resample`` converts it): the steps read a corpus that the data step has
    brought to 16 kHz (``data/ingest.py``), so a file at another rate there is a bug, not something to mend.
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
            raise AudioError(f"{path}: sample rate {sr} Hz, expected {sample_rate} Hz (the study's data step "
                             f"converts a corpus to {sample_rate} Hz mono: read the manifest it writes)")
        x = resample(x, sr, sample_rate)
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


def readable_suffixes() -> set[str]:
    """The file suffixes soundfile reads (wav, flac, ogg, mp3, ...)."""
    return {"." + ext.lower() for ext in sf.available_formats()} | {".wav", ".flac", ".ogg", ".mp3"}


def audio_files(folder: str | Path, suffixes=None, recursive: bool = True) -> list[Path]:
    """The audio files in ``folder`` (and below it), sorted: a suffix of ``suffixes`` in any case (default: what
    soundfile reads), never a hidden entry (a ``.`` file or folder, macOS's ``._`` resource forks) nor anything in a
    ``__MACOSX`` copy that a zip made on a Mac carries. The one rule for corpora, noise collections, room impulse
    responses and ``mlkd predict``'s folders."""
    folder = Path(folder)
    wanted = {s.lower() for s in (suffixes or readable_suffixes())}
    found = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in found if p.suffix.lower() in wanted and p.is_file()
                  and not any(part.startswith(".") or part == "__MACOSX" for part in p.relative_to(folder).parts))


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
