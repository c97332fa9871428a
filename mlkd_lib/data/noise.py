"""The noise bank: a study's noise types as mono 16 kHz wavs, made from any noise collection.

A collection is a folder or a CSV. In a folder each audio file directly inside is a type named by its
stem (NOISEX-92: 19.98 kHz ``.wav`` or SPIB ``.mat``; its ``factory1`` serves as type ``factory``) and each
subfolder a type whose audio files are found recursively below it (MUSAN's ``noise/free-sound/``, DEMAND's
``DKITCHEN/ch01.wav``); a CSV has columns ``path,type`` (paths relative to its folder). Files at any rate
are resampled to 16 kHz, stereo averaged. Without a collection, five synthetic noises with the spectral and
temporal character of their NOISEX namesakes serve the offline demo.

A type is one recording (an array) or several (a list of arrays, in the sorted order of their source
paths); the bank keeps them apart on disk: ``<bank>/<type>.wav`` or ``<bank>/<type>/000.wav, 001.wav, ...``.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import scipy.io
import soundfile as sf
from scipy.signal import butter, lfilter, sosfilt

from ..names import CLEAN, NOISE_TYPES
from .audio import SAMPLE_RATE, AudioError, check_signal, read_audio, resample, to_mono, write_audio

NOISEX_RATE = 19_980
# NOISEX file stems that serve as each type (factory1 is the NOISEX factory floor noise)
NOISEX_STEMS = {"babble": "babble", "f16": "f16", "factory": "factory1", "hfchannel": "hfchannel",
                "volvo": "volvo"}
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mat")  # .mat: SPIB's NOISEX-92 layout only
LISTED = 5  # files named in one problem; the rest are counted


def recordings(noise: np.ndarray | Sequence[np.ndarray]) -> list[np.ndarray]:
    """A type's recordings as a list, whether the bank holds one array or several."""
    return list(noise) if isinstance(noise, (list, tuple)) else [noise]


def read_noise_file(path: Path) -> np.ndarray:
    """A collection's file as 16 kHz mono float32: audio at any rate, or a SPIB ``.mat`` (NOISEX-92)
    whose variable is named after the file (``babble.mat`` holds ``babble``) at 19.98 kHz."""
    path = Path(path)
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


# ---------------------------------------------------------------- collections

def _few(items: list[str]) -> str:
    more = len(items) - LISTED
    return ", ".join(items[:LISTED]) + (f" and {more} more" if more > 0 else "")


def _is_audio(path: Path) -> bool:
    return path.suffix.lower() in AUDIO_SUFFIXES and not path.name.startswith(".") and path.is_file()


def _scan_folder(folder: Path) -> tuple[dict[str, list[Path]], dict[str, list[str]], list[str]]:
    """Types by name: a file directly in ``folder`` (its stem), a subfolder (its audio files, recursively).
    Text files (MUSAN's README, ANNOTATIONS) and hidden entries are not audio and are skipped."""
    found: dict[str, list[Path]] = {}
    entry: dict[str, str] = {}
    clashes: dict[str, list[str]] = {}
    for p in sorted(folder.iterdir()):
        if p.name.startswith("."):
            continue
        if p.is_dir():
            kind = p.name
            files = sorted(f for f in p.rglob("*") if _is_audio(f)
                           and not any(part.startswith(".") for part in f.relative_to(p).parts))
        elif _is_audio(p):
            kind, files = p.stem, [p]
        else:
            continue
        if kind in found:
            clashes.setdefault(kind, []).append(f"{folder}: {entry[kind]} and {p.name} both hold noise type "
                                                f"{kind!r}: keep one")
            continue
        found[kind], entry[kind] = files, p.name
    problems = [] if any(found.values()) else [
        f"noise collection {folder} holds no audio files ({' '.join(AUDIO_SUFFIXES)}), directly or in subfolders"]
    return dict(sorted(found.items())), clashes, problems


def _scan_csv(path: Path) -> tuple[dict[str, list[Path]], dict[str, list[str]], list[str]]:
    """Types by the ``type`` column; ``path`` relative to the CSV's folder (or absolute)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            rows, columns = list(reader), [c.strip() for c in reader.fieldnames or []]
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        return {}, {}, [f"noise list {path}: not a readable CSV ({err})"]
    lacking = [c for c in ("path", "type") if c not in columns]
    if lacking:
        return {}, {}, [f"noise list {path}: lacks the column(s) {', '.join(lacking)} (it has "
                        f"{', '.join(columns) or 'none'}; wanted path,type)"]
    found: dict[str, set[Path]] = {}
    missing: dict[str, list[str]] = {}
    blank = []
    for line, row in enumerate(rows, start=2):  # the header is line 1
        row = {(k or "").strip(): (v or "").strip() for k, v in row.items() if isinstance(v, str)}
        rel, kind = row.get("path", ""), row.get("type", "")
        if not rel or not kind:
            blank.append(str(line))
            continue
        file = Path(rel).expanduser()
        file = file if file.is_absolute() else path.parent / file
        found.setdefault(kind, set())
        if not file.is_file():
            missing.setdefault(kind, []).append(rel)
        elif file.suffix.lower() not in AUDIO_SUFFIXES:
            missing.setdefault(kind, []).append(f"{rel} (not {'/'.join(AUDIO_SUFFIXES)})")
        else:
            found[kind].add(file)
    problems = [f"noise list {path}: line(s) {_few(blank)} lack a path or a type"] if blank else []
    if not rows:
        problems.append(f"noise list {path}: lists no files")
    per_type = {k: [f"noise list {path}: type {k!r} names missing or non-audio files: {_few(v)}"]
                for k, v in missing.items()}
    return {k: sorted(v) for k, v in sorted(found.items())}, per_type, problems


def _named(found: dict, name: str) -> str | None:
    """The type called ``name``, or the one type that differs from it only in case (``BABBLE.MAT``)."""
    same = [k for k in found if k.lower() == name.lower()]
    return name if name in found else same[0] if len(same) == 1 else None


def _collection(source: str | Path, types: Sequence[str] | None) -> tuple[dict[str, list[Path]], list[str]]:
    """The requested types' files (all types for None) and every problem found by names alone."""
    source = Path(source).expanduser()
    if source.is_dir():
        found, per_type, problems = _scan_folder(source)
    elif source.is_file() and source.suffix.lower() == ".csv":
        found, per_type, problems = _scan_csv(source)
    elif source.exists():
        return {}, [f"noise collection {source}: neither a folder nor a .csv list (path,type)"]
    else:
        return {}, [f"noise collection not found: {source}"]
    chosen, unknown = {}, []
    for t in (list(found) if types is None else types):
        # NOISEX's factory floor noise is the file factory1: it serves as type 'factory' unless one is so named
        key = _named(found, t) or (_named(found, NOISEX_STEMS[t]) if t in NOISEX_STEMS and source.is_dir() else None)
        if key is None:
            unknown.append(t)
            continue
        chosen[t] = found[key]
        problems += per_type.get(key, [])
        if t == CLEAN or "/" in t or "\\" in t or t.startswith("."):
            problems.append(f"noise collection {source}: {t!r} cannot name a noise type (it is the clean "
                            "condition's name or not a file name): rename it")
        elif not found[key] and key not in per_type:
            problems.append(f"noise collection {source}: type {key!r} has no audio files "
                            f"({' '.join(AUDIO_SUFFIXES)})")
    if unknown and (found or not problems):  # an unreadable or empty collection is its own problem
        wanted = [f"{t!r} ({NOISEX_STEMS.get(t, t)}.wav or .mat/.flac/.ogg, or a folder {t}/)" if source.is_dir()
                  else repr(t) for t in unknown]
        problems.append(f"noise collection {source} has no noise type {', '.join(wanted)}; "
                        f"its types: {', '.join(found) or 'none'}")
    return chosen, problems


def collection_type_names(source: str | Path, trained: Sequence[str]) -> list[str] | None:
    """The types of ``source`` that none of ``trained`` names (nor serves: NOISEX's factory1 serves as factory),
    in the collection's order; for the synthetic noises (``source`` empty), the test-only ones. None when the
    collection cannot be read (its own problem)."""
    if not source:
        return [t for t in UNSEEN_TYPES if t not in trained]
    source = Path(source).expanduser()
    if source.is_dir():
        found = _scan_folder(source)[0]
    elif source.is_file() and source.suffix.lower() == ".csv":
        found = _scan_csv(source)[0]
    else:
        return None
    serving = {_named(found, t) or (_named(found, NOISEX_STEMS[t]) if t in NOISEX_STEMS and source.is_dir() else None)
               for t in trained}
    return [t for t, files in found.items() if t not in serving and t not in trained and files]


def collection_types(source: str | Path, types: Sequence[str] | None = None) -> dict[str, list[Path]]:
    """The files of each of ``types`` (all the collection's types for None), by names alone: every problem
    at once in one error (FileNotFoundError when the collection itself is not there)."""
    chosen, problems = _collection(source, types)
    if problems:
        error = FileNotFoundError if not Path(source).expanduser().exists() else ValueError
        raise error("; ".join(problems))
    return chosen


def _header_problems(files: list[Path]) -> list[str]:
    """Files whose header does not read as audio with samples (nothing is decoded or resampled)."""
    bad = []
    for p in files:
        try:
            if p.suffix.lower() == ".mat":
                ok = bool(scipy.io.whosmat(str(p)))
            else:
                ok = sf.info(str(p)).frames > 0
        except Exception:  # soundfile and scipy raise several kinds for a bad file
            ok = False
        if not ok:
            bad.append(str(p))
    return [f"unreadable or empty noise files: {_few(bad)}"] if bad else []


def noise_problems(source: str, types: Sequence[str]) -> list[str]:
    """Everything that would stop the bank of ``types`` being made from ``source``, all at once, from file
    names and headers alone (fast: nothing is decoded). An empty ``source`` means the synthetic noises."""
    if not source:
        unknown = [t for t in types if t not in GENERATORS]
        return [f"no synthetic noise for noise_types {', '.join(map(repr, unknown))} (the synthetic ones: "
                f"{', '.join(GENERATORS)}); set noise_dir to a noise collection that has them"] if unknown else []
    chosen, problems = _collection(source, types)
    return problems + _header_problems([p for files in chosen.values() for p in files])


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


def _pluck(f: float, length: int, decay_s: float, harmonics: int = 8) -> np.ndarray:
    """One plucked or struck note: a harmonic series (1/k^1.5 amplitudes, none above Nyquist) under a 5 ms
    attack and an exponential decay."""
    t = np.arange(length) / SAMPLE_RATE
    ks = [k for k in range(1, harmonics + 1) if k * f < 0.45 * SAMPLE_RATE]
    tone = sum(np.sin(2 * np.pi * k * f * t) / k ** 1.5 for k in ks)
    return tone * np.minimum(t / 0.005, 1.0) * np.exp(-t / decay_s)


def _music(n: int, rng: np.random.Generator) -> np.ndarray:
    """Music (a test-only type, unseen in training): a chord each bar, a bass note each beat and a melody in
    eighths, all harmonic notes of one major key, over drums (kick, snare, hi-hat) at a steady tempo. Its
    energy sits in stable pitches and their harmonics, with broadband drum hits on the beat."""
    beat = int(SAMPLE_RATE * 60 / rng.uniform(90, 140))
    eighth = beat // 2
    root = 45 + int(rng.integers(0, 12))  # MIDI note of the key's tonic in the bass octave (A2 and up)
    scale = np.array([0, 2, 4, 5, 7, 9, 11, 12, 14, 16, 17, 19, 21, 23])

    def hz(midi: float) -> float:
        return 440.0 * 2 ** ((midi - 69) / 12)

    out = np.zeros(n + 4 * beat)  # notes may ring past the end: cut below
    hiss = _band(rng.standard_normal(n + 4 * beat), 6000, None)
    snare_noise = _band(rng.standard_normal(n + 4 * beat), 1000, 5000, order=2)
    for bar in range(0, n, 4 * beat):
        degree = int(rng.choice([0, 3, 4, 5]))  # I, IV, V, vi
        for step in (0, 2, 4):  # the chord's triad, an octave above the bass
            out[bar:bar + 4 * beat] += 0.3 * _pluck(hz(root + 12 + scale[degree + step]), 4 * beat, 1.2, 12)
        for b in range(4):
            at = bar + b * beat
            bass = root + scale[degree] + (7 if b % 2 else 0)  # the chord's root, then its fifth
            out[at:at + beat] += 0.5 * _pluck(hz(bass), beat, 0.3, 5)
            length = min(int(0.15 * SAMPLE_RATE), beat)
            tk = np.arange(length) / SAMPLE_RATE
            if b % 2 == 0:  # kick on beats 1 and 3: a sine falling from 120 to 45 Hz
                f = 45 + 75 * np.exp(-tk / 0.03)
                out[at:at + length] += 0.4 * np.sin(2 * np.pi * np.cumsum(f) / SAMPLE_RATE) * np.exp(-tk / 0.08)
            else:  # snare on beats 2 and 4: a band of noise over a short 180 Hz tone
                out[at:at + length] += (0.3 * snare_noise[at:at + length] + 0.3 * np.sin(2 * np.pi * 180 * tk)) \
                    * np.exp(-tk / 0.05)
        for e in range(8):
            at = bar + e * eighth
            hat = min(int(0.03 * SAMPLE_RATE), eighth)
            out[at:at + hat] += 0.1 * hiss[at:at + hat] * np.exp(-np.arange(hat) / (0.008 * SAMPLE_RATE))
            if rng.random() < 0.7:  # the melody rests now and then
                midi = root + 24 + scale[int(rng.integers(0, 8))]
                out[at:at + eighth] += 0.3 * _pluck(hz(midi), eighth, 0.15, 10)
    return out[:n]


def _traffic(n: int, rng: np.random.Generator, c: float = 343.0) -> np.ndarray:
    """Street traffic (a test-only type, unseen in training): vehicles pass one after another (about one
    every 3 s), each swelling in and out as it nears and leaves (pressure ~ 1/distance) while its engine
    tone falls through its pitch (Doppler: f·c/(c + v_radial)), over the steady low rumble of the road."""
    t = np.arange(n) / SAMPLE_RATE
    out = 0.6 * _band(np.cumsum(rng.standard_normal(n)) * 0.02, 20, 300, order=2)  # distant road: brown rumble
    tyres = _band(rng.standard_normal(n), 300, 1500, order=2)  # tyre/road roar, shared and offset per vehicle
    arrivals = [-6.0]  # vehicles heard from 6 s before the start until 6 s after the end
    while arrivals[-1] < n / SAMPLE_RATE + 6.0:
        arrivals.append(arrivals[-1] + rng.exponential(3.0))
    for t0 in arrivals[1:]:
        speed, closest = rng.uniform(8, 25), rng.uniform(3, 15)  # m/s, m
        f0 = rng.uniform(30, 80)  # engine firing rate, Hz
        window = slice(max(int((t0 - 8) * SAMPLE_RATE), 0), min(int((t0 + 8) * SAMPLE_RATE), n))
        if window.start >= window.stop:
            continue
        dt = t[window] - t0
        dist = np.sqrt((speed * dt) ** 2 + closest ** 2)
        f = f0 * c / (c + speed ** 2 * dt / dist)  # the radial speed is v²·dt/dist, negative while it nears
        phase = 2 * np.pi * np.cumsum(f) / SAMPLE_RATE + rng.uniform(0, 2 * np.pi)
        engine = sum(np.sin(k * phase) / k for k in range(1, 7))
        shift = int(rng.integers(0, n))
        roar = np.roll(tyres, shift)[window]
        out[window] += (closest / dist) * (0.4 * engine + rng.uniform(1.0, 2.0) * roar)
    return out


GENERATORS = {"babble": _babble, "f16": _f16, "factory": _factory, "hfchannel": _hfchannel, "volvo": _volvo,
              "music": _music, "traffic": _traffic}
# test-only types: in GENERATORS (so a bank can be made of them) but never in names.NOISE_TYPES, the training
# default; each draws from its own seed stream, apart from the five's (0-4, their place in NOISE_TYPES)
UNSEEN_TYPES = ("music", "traffic")
UNSEEN_STREAMS = {"music": 100, "traffic": 101}


def synthetic_bank(seconds: float = 30.0, seed: int = 0, types: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """The synthetic noises of ``types`` (all five for None); each type's own seed, so a subset sounds the same."""
    kinds = list(types) if types is not None else list(NOISE_TYPES)
    unknown = [k for k in kinds if k not in GENERATORS]
    if unknown:
        raise ValueError(f"no synthetic noise for the types {', '.join(map(repr, unknown))} (the synthetic ones: "
                         f"{', '.join(GENERATORS)}); give a noise collection that has them")
    n = int(seconds * SAMPLE_RATE)
    bank = {}
    for kind in kinds:
        stream = NOISE_TYPES.index(kind) if kind in NOISE_TYPES else UNSEEN_STREAMS[kind]
        x = GENERATORS[kind](n, np.random.default_rng([seed, stream]))
        bank[kind] = (0.25 * x / np.sqrt(np.mean(x ** 2))).astype(np.float32)  # -12 dBFS RMS
        bank[kind] = np.clip(bank[kind], -1, 1)  # generated, not speech: safe to bound
    return bank


def _clear_type(out: Path, kind: str) -> None:
    """Remove an earlier bank's copy of ``kind`` (either form), and nothing that the bank did not write."""
    (out / f"{kind}.wav").unlink(missing_ok=True)
    folder = out / kind
    if folder.is_dir():
        for p in folder.glob("*.wav"):
            if p.stem.isdigit():
                p.unlink()
        if not any(folder.iterdir()):
            folder.rmdir()


def write_noise_bank(out_dir: str | Path, source: str | Path | None = None, seed: int = 0, seconds: float = 30.0,
                     types: Sequence[str] | None = None) -> dict[str, Path]:
    """Write the bank of ``types`` (all for None) from the collection ``source``, or from the synthetic
    noises (``seed``, ``seconds``) without one. Returns each type's file (one recording) or folder (several).
    A type is read and written one file at a time, so a large collection never sits in memory whole."""
    out = Path(out_dir)
    if not source:
        written = {}
        for kind, x in synthetic_bank(seconds, seed, types).items():
            _clear_type(out, kind)
            written[kind] = write_audio(out / f"{kind}.wav", x, subtype="FLOAT")
        return written
    files = collection_types(source, types)
    inside = [p for ps in files.values() for p in ps if p.resolve().is_relative_to(out.resolve())]
    if inside:
        raise ValueError(f"noise bank {out} would overwrite the files of its own collection "
                         f"({_few([str(p) for p in inside])}): write the bank elsewhere")
    written = {}
    for kind, paths in files.items():
        _clear_type(out, kind)
        if len(paths) == 1:
            written[kind] = write_audio(out / f"{kind}.wav", read_noise_file(paths[0]), subtype="FLOAT")
            continue
        width = max(3, len(str(len(paths) - 1)))
        for i, p in enumerate(paths):
            write_audio(out / kind / f"{i:0{width}d}.wav", read_noise_file(p), subtype="FLOAT")
        written[kind] = out / kind
    return written


def split_noise(bank: dict, train_fraction: float) -> tuple[dict, dict]:
    """Each type split in two so that no test segment was heard in training. A type with several recordings
    splits by file: the first ``round(train_fraction * n)`` of its sorted files train (at least one, and one
    is left for the test), the rest test; a file is never cut, since its parts would sound alike. A type with
    one recording is cut inside it: its first ``train_fraction`` for training (the students' training and
    validation noise), the rest for the test conditions. ``train_fraction`` 1: no split, both draw from all."""
    if not 0.0 < train_fraction <= 1.0:
        raise ValueError(f"noise train_fraction must lie in (0, 1], got {train_fraction}")
    if train_fraction == 1.0:
        return dict(bank), dict(bank)
    train, test, short = {}, {}, []
    for k, noise in bank.items():
        xs = recordings(noise)
        if len(xs) > 1:
            cut = min(max(int(round(train_fraction * len(xs))), 1), len(xs) - 1)
            train[k], test[k] = xs[:cut], xs[cut:]
            continue
        x = xs[0]
        cut = int(round(train_fraction * len(x)))
        if min(cut, len(x) - cut) < SAMPLE_RATE:
            short.append(k)
        train[k], test[k] = x[:cut], x[cut:]
    if short:
        raise ValueError(f"noise recordings {short} are too short to cut at {train_fraction:g}: "
                         f"each part needs at least a second")
    return train, test


def load_noise_bank(bank_dir: str | Path, types: Sequence[str] | None = None) -> dict[str, np.ndarray | list]:
    """Read a bank folder: ``<type>.wav`` is a type's one recording, the wavs of a folder ``<type>/`` (sorted
    by name) its several. Any folder of 16 kHz wavs serves (noise type = file stem)."""
    bank_dir = Path(bank_dir)
    if not bank_dir.is_dir():
        raise FileNotFoundError(f"noise bank folder not found: {bank_dir} (make one with `mlkd data noise`)")
    files = {p.stem: [p] for p in sorted(bank_dir.glob("*.wav"))}
    both = []
    for folder in sorted(p for p in bank_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        wavs = sorted(folder.glob("*.wav"))
        if wavs and folder.name in files:
            both.append(folder.name)
        elif wavs:
            files[folder.name] = wavs
    wanted = list(types) if types else sorted(files)
    lacking = [t for t in wanted if t not in files]
    if lacking or not wanted:
        raise FileNotFoundError(f"{bank_dir}: no wav for noise types {lacking or 'any'} "
                                f"(found {sorted(files) or 'none'})")
    clash = [t for t in wanted if t in both]
    if clash:
        raise ValueError(f"{bank_dir}: noise types {clash} are both a <type>.wav and a <type>/ folder: remove one")
    return {t: read_audio(files[t][0]) if len(files[t]) == 1 else [read_audio(p) for p in files[t]] for t in wanted}
