"""Reverberation: speech heard in a room, simulated (a seeded shoebox room, pyroomacoustics' image sources) or
measured (a room impulse response, RIR, drawn from a folder of RIR wavs, the form real collections come in).

Severity: the room's RT60 in seconds (0.3 a furnished office, 0.6 a classroom, 0.9 a bare hall). Each call
draws a room from ``rng``: its length, width and height in ``ROOM_M``, talker and microphone at least
``WALL_GAP_M`` from the walls, ``HEIGHT_M`` above the floor and ``MIN_DISTANCE_M`` apart. Its wall absorption
comes from pyroomacoustics' inverse Sabine formula; but the image-source decay of a shoebox departs from
Sabine's diffuse-field law (measured: up to 70 % longer in a flat room, 15 % shorter in a near-cube), so a short
probe room first measures the decay its absorption gives and the absorption is asked again for the RT60 that
corrects it: the RIR's RT60 by Schroeder's backward integration then lands within 12 % of the severity by T20
(measured over 60 rooms; T30, which reaches into the slower late decay of the room's axial modes, up to 20 % over).
The image sources stop where the decay is ``TAIL_DB`` down: the inaudible rest would cost more than the room.

The output: the speech convolved with the RIR, moved so that the direct path lands at sample 0 (reverberation
adds no pure delay, so labels and frames stay aligned), its ITU-T P.56 active level set back to the input's
(reverberation alone is scored, not a level change), cut to the input's length (the tail past the end is
dropped, as a recording would stop). It is not clipped and may exceed full scale. pyroomacoustics high-passes
every RIR at 10 Hz with a zero-phase filter: its sub-audible undershoot, about 2 % of the direct path, comes
before it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import fftconvolve

from ...paths import cache_dir
from ..audio import SAMPLE_RATE, AudioError, audio_files, check_signal, resample, write_audio
from ..mixing import speech_level_db
from .base import speech

FAMILY = "reverb"
RANK = 2
SEVERITIES = (0.3, 0.6, 0.9)
UNIT = "RT60 s"
WORSE = "higher"
ROOMS = True  # its test audio draws from the study's bank of room impulse responses

# RT60s the rooms serve: below, the larger rooms' walls cannot absorb enough (the RT60 misses by 20 % or more);
# above, a room takes over 7 s to simulate (0.9 s: under 1 s)
RT60_RANGE_S = (0.25, 1.5)
ROOM_M = ((4.0, 10.0), (3.0, 8.0), (2.5, 4.0))  # length, width, height: offices, living rooms, classrooms
WALL_GAP_M = 0.5
HEIGHT_M = (1.0, 2.0)  # the talker's mouth and the microphone
MIN_DISTANCE_M = 1.0
TAIL_DB = 45.0  # the simulated decay ends this far down
PROBE_DB = 30.0  # the probe room's decay, enough for a T20 fit
T20_DB = (-5.0, -25.0)
RIR_SUFFIXES = (".wav", ".flac")


def rt60_s(rir: np.ndarray, sample_rate: int = SAMPLE_RATE, fit_db: tuple[float, float] = T20_DB) -> float:
    """RT60 of an impulse response by Schroeder's backward integration: the line fitted to the energy decay
    curve between ``fit_db`` (T20 by default) extrapolated to 60 dB."""
    h = np.asarray(rir, dtype=np.float64)
    energy = np.cumsum(h[::-1] ** 2)[::-1]
    if energy.size == 0 or energy[0] <= 0:
        raise AudioError("impulse response is empty or silent: it has no RT60")
    with np.errstate(divide="ignore"):
        edc = 10 * np.log10(energy / energy[0])
    hi, lo = fit_db
    if edc[-1] > lo:
        raise AudioError(f"impulse response decays only {-edc[-1]:.0f} dB, not the {-lo:.0f} dB an RT60 fit needs")
    start, stop = int(np.argmax(edc <= hi)), int(np.argmax(edc <= lo))
    slope = np.polyfit(np.arange(start, stop + 1) / sample_rate, edc[start:stop + 1], 1)[0]
    return float(-60.0 / slope)


def _pra():
    """pyroomacoustics, imported when a room is first simulated (measured RIRs do without it)."""
    try:
        import pyroomacoustics
    except ImportError as err:
        raise ImportError("the reverb family simulates rooms with pyroomacoustics: pip install pyroomacoustics") \
            from err
    return pyroomacoustics


def _shoebox_rir(dims: np.ndarray, source: np.ndarray, mic: np.ndarray, rt60: float, seconds: float) -> np.ndarray:
    """The RIR of a shoebox whose absorption is inverse Sabine's for ``rt60``, with every image source that
    arrives within ``seconds`` (the order bound: the most reflections a path of that length can make)."""
    pra = _pra()
    try:
        absorption, _ = pra.inverse_sabine(rt60, dims)
    except ValueError:
        raise ValueError(f"RT60 {rt60:.2f} s is too short for a {' x '.join(f'{d:.1f}' for d in dims)} m room "
                         f"(its walls would absorb more than all the sound)") from None
    order = math.ceil(pra.constants.get("c") * seconds * math.sqrt(sum(1 / d ** 2 for d in dims)))
    room = pra.ShoeBox(dims, fs=SAMPLE_RATE, materials=pra.Material(absorption), max_order=order)
    room.add_source(source)
    room.add_microphone(mic)
    room.compute_rir()
    return np.asarray(room.rir[0][0], dtype=np.float64)


def simulate_rir(rt60: float, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """A seeded shoebox room's RIR whose RT60 is ``rt60`` seconds, and the sample where its direct path arrives
    (pyroomacoustics' fractional delay filters put it half their length after the travel time)."""
    lo, hi = RT60_RANGE_S
    if not lo <= rt60 <= hi:
        raise ValueError(f"{FAMILY} severity (RT60) must lie in [{lo}, {hi}] s, got {rt60!r}")
    pra = _pra()
    dims = np.array([rng.uniform(a, b) for a, b in ROOM_M])
    low = np.array([WALL_GAP_M, WALL_GAP_M, HEIGHT_M[0]])
    high = np.array([dims[0] - WALL_GAP_M, dims[1] - WALL_GAP_M, HEIGHT_M[1]])
    mic = rng.uniform(low, high)
    source = rng.uniform(low, high)
    while np.linalg.norm(source - mic) < MIN_DISTANCE_M:  # the smallest room has room for that: few redraws
        source = rng.uniform(low, high)
    probe = _shoebox_rir(dims, source, mic, rt60, rt60 * PROBE_DB / 60)
    asked = rt60 * rt60 / rt60_s(probe)  # ask for what the image sources will stretch or shrink to rt60
    rir = _shoebox_rir(dims, source, mic, asked, max(rt60, asked) * TAIL_DB / 60)
    travel = np.linalg.norm(source - mic) / pra.constants.get("c") * SAMPLE_RATE
    return rir, int(round(travel)) + pra.constants.get("frac_delay_length") // 2


def _match_level(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``y`` scaled to ``x``'s P.56 active level (plain RMS where P.56 finds no speech; silence stays silence)."""
    for level in ("p56", "rms"):
        try:
            return y * 10 ** ((speech_level_db(x, level) - speech_level_db(y, level)) / 20)
        except AudioError:
            continue
    return y


def apply_rir(x: np.ndarray, rir: np.ndarray, direct: int | None = None) -> np.ndarray:
    """``x`` convolved with ``rir``, its direct path (sample ``direct``; the RIR's peak when None, as for a measured
    RIR) at sample 0, at ``x``'s active level, cut to ``x``'s length."""
    x = speech(x, FAMILY)
    h = np.asarray(rir, dtype=np.float64)
    if h.ndim != 1 or not h.size or not np.all(np.isfinite(h)) or not np.any(h):
        raise AudioError(f"{FAMILY}: an RIR must be a finite, non-silent 1-D array, got shape {h.shape}")
    direct = int(np.argmax(np.abs(h))) if direct is None else int(direct)
    if not 0 <= direct < h.size:
        raise ValueError(f"{FAMILY}: direct path at sample {direct} lies outside the RIR's {h.size} samples")
    y = fftconvolve(x, h)[direct:direct + x.size]
    return _match_level(y, x).astype(np.float32)


def apply(x: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    """``x`` in a room drawn from ``rng`` whose RT60 is ``severity`` seconds."""
    speech(x, FAMILY)  # a bad input is named before a room is simulated
    rir, direct = simulate_rir(float(severity), rng)
    return apply_rir(x, rir, direct)


def rir_files(folder: str | Path) -> list[Path]:
    """The RIR files in ``folder`` and below it (wav or flac; ``audio.audio_files``), sorted."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"RIR folder not found: {folder}")
    files = audio_files(folder, RIR_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"RIR folder {folder} holds no {'/'.join(RIR_SUFFIXES)} files")
    return files


def load_rirs(folder: str | Path) -> list[np.ndarray]:
    """Every RIR in ``folder`` as 16 kHz mono float32, in ``rir_files`` order. A multichannel RIR gives its first
    channel: averaging an array's microphones would blur the direct path over their different delays."""
    rirs = []
    for path in rir_files(folder):
        try:
            h, sr = sf.read(str(path), dtype="float32", always_2d=True)
        except (RuntimeError, sf.LibsndfileError) as err:
            raise AudioError(f"{path}: not a readable audio file ({err})") from err
        h = check_signal(h[:, 0], str(path))
        if not np.any(h):
            raise AudioError(f"{path}: the RIR is silent (all zeros)")
        rirs.append(resample(h, sr, SAMPLE_RATE))
    return rirs


def apply_drawn(x: np.ndarray, rirs: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """``x`` in a room whose RIR is drawn from ``rirs`` (``load_rirs``) by ``rng``; its direct path is its peak."""
    if not rirs:
        raise ValueError(f"{FAMILY}: no RIRs to draw from")
    return apply_rir(x, rirs[int(rng.integers(len(rirs)))])


def audio(clean: np.ndarray, condition, rng: np.random.Generator, noise_bank: dict, rirs: dict | None,
          level: str) -> np.ndarray:
    """A test utterance in one of the study's rooms of its RT60 (the bank of ``write_rir_bank``), drawn by ``rng``."""
    if not rirs or condition.severity not in rirs:
        raise ValueError(f"no room impulse responses for RT60 {condition.severity} s (the RIR bank holds "
                         f"{sorted(rirs or {})}): run the study's data step")
    return apply_drawn(clean, rirs[condition.severity], rng)


# ---------------------------------------------------------------- the study's rooms

ROOM_MODEL = 1  # raise it when simulate_rir changes what it returns for a seed: cached rooms are then made anew


def room_path(rt60: float, seed: int, index: int) -> Path | None:
    """Where the cache keeps room ``index`` of RT60 ``rt60`` for ``seed`` (None: no cache)."""
    cache = cache_dir()
    if cache is None:
        return None
    key = json.dumps([ROOM_MODEL, _pra().__version__, SAMPLE_RATE, rt60, seed, index])
    return cache / "rooms" / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.npy"


def _cached_room(path: Path) -> np.ndarray | None:
    try:
        return np.load(path)
    except (OSError, ValueError, EOFError):  # not made yet, or unreadable: made again
        return None


def simulated_room(rt60: float, seed: int, index: int, wait: bool = True) -> np.ndarray | None:
    """Room ``index`` of RT60 ``rt60`` for ``seed``: a pure function of those (and of pyroomacoustics), kept in
    ``paths.cache_dir()/rooms`` — a room takes about a second of a core to simulate, a bank of 24 half a minute,
    and every setup with one seed hears the same rooms. One process simulates a room while another wanting it
    waits for it (``wait=False``: None at once); written atomically; an unreadable entry is simulated again."""
    rng = np.random.default_rng([seed, int(round(rt60 * 1000)), index])
    path = room_path(rt60, seed, index)
    if path is None:  # no cache: simulated each time
        return simulate_rir(rt60, rng)[0]
    room = _cached_room(path)
    if room is not None:
        return room
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = open(path.with_suffix(".lock"), "a")
    except OSError:  # a cache that cannot be written: simulated each time
        return simulate_rir(rt60, rng)[0]
    import fcntl
    with lock:  # closing it releases the lock
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            return None  # another process is simulating it
        except OSError:  # a file system that cannot lock: simulated here, whoever else does
            pass
        room = _cached_room(path)  # made while this process waited
        if room is None:
            room = simulate_rir(rt60, rng)[0]
            try:
                with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as f:
                    np.save(f, room)
                os.replace(f.name, path)
            except OSError:
                pass
    return room


def simulated_rooms(rt60s, rooms: int, seed: int) -> dict[float, list[np.ndarray]]:
    """Rooms ``0 … rooms-1`` of each RT60. A room another process is simulating (a setup's data step started beside
    this one) is taken from the cache after the others: two data steps share the bank's work, not each do it all."""
    made = {(float(t), i): simulated_room(float(t), seed, i, wait=False) for t in rt60s for i in range(rooms)}
    made.update({(t, i): simulated_room(t, seed, i) for (t, i), room in made.items() if room is None})
    return {float(t): [made[(float(t), i)] for i in range(rooms)] for t in rt60s}


def write_rir_bank(out_dir: str | Path, rt60s, rooms: int, seed: int, rir_dir: str = "") -> dict[float, int]:
    """The RIRs reverberation draws from, as ``<out_dir>/rt60-<s>/NN.wav``: ``rooms`` simulated shoebox rooms per
    RT60 (seeded), or the real RIRs of ``rir_dir``, each filed under the RT60 of ``rt60s`` nearest its measured
    one. Returns the count per RT60."""
    out_dir = Path(out_dir)
    if rir_dir:
        bank: dict[float, list] = {float(t): [] for t in rt60s}
        for rir in load_rirs(rir_dir):
            measured = rt60_s(rir)
            bank[min(bank, key=lambda t: abs(t - measured))].append(rir)
        bank = {t: v for t, v in bank.items() if v}
        if not bank:
            raise ValueError(f"{rir_dir}: no usable room impulse response")
    else:
        bank = simulated_rooms(rt60s, rooms, seed)
    for t, rirs in bank.items():
        for i, rir in enumerate(rirs):
            peak = float(np.max(np.abs(rir))) or 1.0
            write_audio(out_dir / f"rt60-{t:g}" / f"{i:02d}.wav", rir / peak, subtype="FLOAT")
    return {t: len(v) for t, v in bank.items()}


def load_rir_bank(bank_dir: str | Path) -> dict[float, list[np.ndarray]]:
    """{RT60: [RIR, ...]} from ``write_rir_bank``'s folder (empty when there is none)."""
    from ..audio import read_audio
    bank_dir = Path(bank_dir)
    if not bank_dir.is_dir():
        return {}
    return {float(d.name.split("-", 1)[1]): [read_audio(f) for f in sorted(d.glob("*.wav"))]
            for d in sorted(bank_dir.glob("rt60-*")) if d.is_dir()}
