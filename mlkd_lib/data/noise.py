"""The noise bank: one mono 16 kHz wav per noise type (NOISEX-92 names).

From NOISEX-92 (19.98 kHz ``.wav`` or SPIB ``.mat`` files) resampled to 16 kHz, or
generated: five synthetic noises with the spectral and temporal character of
their NOISEX namesakes, for the offline demo.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import scipy.io
from scipy.signal import butter, lfilter, sosfilt

from ..names import NOISE_TYPES  # noqa: F401  (the noise bank is named by them)
from .audio import SAMPLE_RATE, AudioError, check_signal, read_audio, resample, to_mono, write_audio

NOISEX_RATE = 19_980
# NOISEX file stems that serve as each type (factory1 is the NOISEX factory floor noise)
NOISEX_STEMS = {"babble": "babble", "f16": "f16", "factory": "factory1", "hfchannel": "hfchannel",
                "volvo": "volvo"}


def read_noisex_file(path: Path) -> np.ndarray:
    """A NOISEX-92 file as 16 kHz mono float32: ``.wav`` at any rate, or a SPIB ``.mat``
    whose variable is named after the file (``babble.mat`` holds ``babble``) at 19.98 kHz."""
    if path.suffix.lower() == ".mat":
        try:
            mat = scipy.io.loadmat(str(path))
        except Exception as err:  # scipy raises several kinds for a bad file
            raise AudioError(f"{path}: not a readable .mat file ({err})") from err
        arrays = {k: v for k, v in mat.items() if not k.startswith("__")}
        x = arrays.get(path.stem, next(iter(arrays.values()), None))
        if x is None:
            raise AudioError(f"{path}: holds no variable")
        x = to_mono(np.asarray(x, dtype=np.float64).squeeze(), str(path))
        # SPIB stores 16-bit sample values as doubles
        x = x / 32768.0 if np.max(np.abs(x)) > 1.0 else x
        return resample(check_signal(x.astype(np.float32), str(path)), NOISEX_RATE)
    return read_audio(path, SAMPLE_RATE, resample_to=True)


def noisex_bank(noisex_dir: Path) -> dict[str, np.ndarray]:
    noisex_dir = Path(noisex_dir)
    if not noisex_dir.is_dir():
        raise FileNotFoundError(f"NOISEX-92 folder not found: {noisex_dir}")
    files = {p.stem.lower(): p for p in sorted(noisex_dir.iterdir())
             if p.suffix.lower() in (".wav", ".mat")}
    bank, lacking = {}, []
    for kind, stem in NOISEX_STEMS.items():
        path = files.get(stem) or files.get(kind)
        if path is None:
            lacking.append(f"{kind} ({stem}.wav or {stem}.mat)")
        else:
            bank[kind] = read_noisex_file(path)
    if lacking:
        raise FileNotFoundError(f"{noisex_dir}: missing NOISEX-92 files for " + ", ".join(lacking))
    used = {p.stem.lower() for p in files.values()} & (set(NOISEX_STEMS.values()) | set(NOISEX_STEMS))
    ignored = sorted(set(files) - used)
    if ignored:
        warnings.warn(f"{noisex_dir}: ignored NOISEX files not used by the study: {', '.join(ignored)}",
                      stacklevel=2)
    return bank


# ---------------------------------------------------------------- synthetic noises

def _band(x: np.ndarray, lo: float | None, hi: float | None, order: int = 4) -> np.ndarray:
    nyq = SAMPLE_RATE / 2
    if lo and hi:
        sos = butter(order, [lo / nyq, hi / nyq], btype="band", output="sos")
    elif lo:
        sos = butter(order, lo / nyq, btype="high", output="sos")
    else:
        sos = butter(order, hi / nyq, btype="low", output="sos")
    return sosfilt(sos, x)


def _babble(n: int, rng: np.random.Generator, talkers: int = 12) -> np.ndarray:
    """Many overlapped synthetic talkers: glottal pulse trains with wandering pitch
    through moving formant resonators, switched on and off at syllable rate."""
    t = np.arange(n) / SAMPLE_RATE
    out = np.zeros(n)
    for _ in range(talkers):
        f0 = rng.uniform(90, 250) * (1 + 0.15 * np.sin(2 * np.pi * rng.uniform(0.5, 3) * t + rng.uniform(0, 6)))
        phase = np.cumsum(f0) / SAMPLE_RATE
        pulses = (np.diff(np.floor(phase), prepend=0) > 0).astype(float)
        voice = np.zeros(n)
        seg = SAMPLE_RATE // 10  # formants change every 100 ms, like syllables
        for start in range(0, n, seg):
            sl = slice(start, min(start + seg, n))
            y = pulses[sl]
            for f in (rng.uniform(300, 900), rng.uniform(900, 2500)):
                r = 0.97
                a = [1, -2 * r * np.cos(2 * np.pi * f / SAMPLE_RATE), r * r]
                y = lfilter([1 - r], a, y)
            voice[sl] = y
        syllables = (rng.random(n // seg + 1) < 0.7).repeat(seg)[:n]
        out += voice * _band(syllables.astype(float), None, 20, order=2)
    return out


def _f16(n: int, rng: np.random.Generator) -> np.ndarray:
    """Cockpit: loud broadband engine/air noise with a mid-frequency hump and tones."""
    t = np.arange(n) / SAMPLE_RATE
    broad = _band(rng.standard_normal(n), 100, 6000, order=2)
    hump = 0.6 * _band(rng.standard_normal(n), 2000, 4000)
    tones = sum(a * np.sin(2 * np.pi * f * t + rng.uniform(0, 6)) for f, a in ((2700, 0.15), (4800, 0.08), (700, 0.1)))
    return broad + hump + tones


def _factory(n: int, rng: np.random.Generator) -> np.ndarray:
    """Factory floor: machinery hum with harmonics, broadband rumble, random impacts."""
    t = np.arange(n) / SAMPLE_RATE
    hum = sum(np.sin(2 * np.pi * 50 * k * t + rng.uniform(0, 6)) / k for k in range(1, 8))
    rumble = _band(rng.standard_normal(n), 50, 3000, order=2)
    impacts = np.zeros(n)
    for at in rng.integers(0, n, size=max(1, int(3 * n / SAMPLE_RATE))):  # ~3 impacts a second
        length = min(int(0.08 * SAMPLE_RATE), n - at)
        decay = np.exp(-np.arange(length) / (0.01 * SAMPLE_RATE))
        impacts[at:at + length] += rng.uniform(2, 6) * decay * _band(rng.standard_normal(length), 500, 6000, 2)
    return 0.5 * hum + rumble + impacts


def _hfchannel(n: int, rng: np.random.Generator) -> np.ndarray:
    """HF radio channel: band-limited hiss (300–3400 Hz) with slow fading and a carrier whistle."""
    t = np.arange(n) / SAMPLE_RATE
    hiss = _band(rng.standard_normal(n), 300, 3400, order=6)
    fading = 1 + 0.4 * np.sin(2 * np.pi * 0.3 * t + rng.uniform(0, 6))
    return hiss * fading + 0.05 * np.sin(2 * np.pi * 1000 * t)


def _volvo(n: int, rng: np.random.Generator) -> np.ndarray:
    """Car cabin (Volvo 340 at 120 km/h): strong low-frequency rumble, little above 500 Hz."""
    t = np.arange(n) / SAMPLE_RATE
    rumble = _band(rng.standard_normal(n), None, 200, order=4)
    engine = 0.3 * np.sin(2 * np.pi * 35 * t) + 0.15 * np.sin(2 * np.pi * 70 * t)
    return 4 * rumble + engine + 0.05 * _band(rng.standard_normal(n), None, 1500, order=2)


GENERATORS = {"babble": _babble, "f16": _f16, "factory": _factory, "hfchannel": _hfchannel, "volvo": _volvo}


def synthetic_bank(seconds: float = 30.0, seed: int = 0) -> dict[str, np.ndarray]:
    n = int(seconds * SAMPLE_RATE)
    bank = {}
    for i, kind in enumerate(NOISE_TYPES):
        x = GENERATORS[kind](n, np.random.default_rng([seed, i]))
        bank[kind] = (0.25 * x / np.sqrt(np.mean(x ** 2))).astype(np.float32)  # -12 dBFS RMS
        bank[kind] = np.clip(bank[kind], -1, 1)  # generated, not speech: safe to bound
    return bank


def write_noise_bank(out_dir: str | Path, noisex: str | Path | None = None, seed: int = 0,
                     seconds: float = 30.0) -> dict[str, Path]:
    bank = noisex_bank(Path(noisex)) if noisex else synthetic_bank(seconds, seed)
    return {kind: write_audio(Path(out_dir) / f"{kind}.wav", x, subtype="FLOAT")
            for kind, x in bank.items()}


def split_noise(bank: dict[str, np.ndarray], train_fraction: float) -> tuple[dict, dict]:
    """Each recording cut in two: its first ``train_fraction`` for training (the students' training
    and validation noise), the rest for the test conditions, so that no test segment was heard in
    training. ``train_fraction`` 1: no cut, both draw from the whole recording."""
    if not 0.0 < train_fraction <= 1.0:
        raise ValueError(f"noise train_fraction must lie in (0, 1], got {train_fraction}")
    if train_fraction == 1.0:
        return dict(bank), dict(bank)
    cut = {k: int(round(train_fraction * len(x))) for k, x in bank.items()}
    short = [k for k, x in bank.items() if min(cut[k], len(x) - cut[k]) < SAMPLE_RATE]
    if short:
        raise ValueError(f"noise recordings {short} are too short to cut at {train_fraction:g}: "
                         f"each part needs at least a second")
    return {k: x[: cut[k]] for k, x in bank.items()}, {k: x[cut[k]:] for k, x in bank.items()}


def load_noise_bank(bank_dir: str | Path, types: tuple[str, ...] | list[str] | None = None) -> dict[str, np.ndarray]:
    """Read a bank folder: any folder of 16 kHz wavs serves (noise type = file stem)."""
    bank_dir = Path(bank_dir)
    if not bank_dir.is_dir():
        raise FileNotFoundError(f"noise bank folder not found: {bank_dir} (make one with `mlkd data noise`)")
    files = {p.stem: p for p in sorted(bank_dir.glob("*.wav"))}
    wanted = list(types) if types else sorted(files)
    lacking = [t for t in wanted if t not in files]
    if lacking or not wanted:
        raise FileNotFoundError(f"{bank_dir}: no wav for noise types {lacking or 'any'} "
                                f"(found {sorted(files) or 'none'})")
    return {t: read_audio(files[t]) for t in wanted}
