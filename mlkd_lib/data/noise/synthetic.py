"""Synthetic noises for the offline demo: five with the spectral and temporal character of their NOISEX-92
namesakes (the types the students train on) and two test-only ones (music, passing traffic), each from its own
seed stream, so a subset sounds the same."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.signal import butter, lfilter, sosfilt

from ...names import NOISE_TYPES
from ..audio import SAMPLE_RATE


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

