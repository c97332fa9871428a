"""Data as it ships, brought to 16 kHz mono once.

Corpora come at their publishers' rates and channel counts (RAVDESS and DEMAND at 48 kHz, SAVEE at 44.1 kHz,
TESS at 24.4 kHz, some files stereo). The data step converts every file of a corpus that is not 16 kHz mono with
the one resampler (``audio.resample``; stereo averaged) into a cache beside the study's manifest, and the manifest
the steps read points there: no step resamples again. The cache's ``index.json`` records, per source file, the
size and modification time it was made from, so a rerun converts nothing and a changed file is converted again.
Before anything runs, ``survey`` reads the files' headers alone and says what will be converted, from which
rates, and about how long it takes (``estimate_seconds`` times one real conversion per kind of file).
"""

from __future__ import annotations

import json
import os
import re
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
from tqdm.auto import tqdm

from .audio import RESAMPLER, SAMPLE_RATE, check_signal, resample, to_mono, write_audio

INDEX = "index.json"


@dataclass(frozen=True)
class AudioFormat:
    """A file's header: its rate, channels and length (nothing decoded)."""
    rate: int
    channels: int
    frames: int
    subtype: str = ""

    @property
    def converted(self) -> bool:
        """Whether the study needs it converted: not 16 kHz, or not mono."""
        return self.rate != SAMPLE_RATE or self.channels != 1

    @property
    def seconds(self) -> float:
        return self.frames / self.rate if self.rate else 0.0

    def describe(self) -> str:
        return f"{self.rate} Hz {'mono' if self.channels == 1 else f'{self.channels} channels'}"


def audio_format(path: str | Path) -> AudioFormat | None:
    """The header of ``path``; None when it is missing or not readable audio."""
    try:
        info = sf.info(str(path))
    except (RuntimeError, sf.LibsndfileError, OSError):
        return None
    return AudioFormat(int(info.samplerate), int(info.channels), int(info.frames), info.subtype)


@dataclass
class Survey:
    """What bringing a set of files to 16 kHz mono takes, from their headers: per kind of file (rate, channels)
    its count, seconds of audio and one example; and the files that could not be read."""
    kinds: dict[tuple[int, int], list] = field(default_factory=dict)  # (rate, channels) -> [files, seconds, example]
    unreadable: list[str] = field(default_factory=list)
    total: int = 0

    @property
    def to_convert(self) -> int:
        return sum(n for (rate, channels), (n, _, _) in self.kinds.items()
                   if AudioFormat(rate, channels, 0).converted)

    def converted_kinds(self) -> dict[tuple[int, int], list]:
        return {k: v for k, v in self.kinds.items() if AudioFormat(k[0], k[1], 0).converted}

    def describe(self, what: str, seconds: float | None = None) -> str:
        """'ravdess: 1440 of 1440 files will be converted to 16 kHz mono (soxr VHQ): 1430 at 48000 Hz mono, 10 at
        48000 Hz 2 channels, 1.5 h of audio; about 9 s, once'."""
        kinds = sorted(self.converted_kinds().items(), key=lambda kv: -kv[1][0])
        if not kinds:
            return f"{what}: all {self.total} files are 16 kHz mono already"
        audio_s = sum(s for _, s, _ in dict(kinds).values())
        parts = ", ".join(f"{n} at {AudioFormat(*kind, 0).describe()}" for kind, (n, _, _) in kinds)
        took = f"; about {seconds:.0f} s, once" if seconds is not None else ""
        length = f"{audio_s:.0f} s" if audio_s < 600 else f"{audio_s / 60:.0f} min" if audio_s < 7200 else \
            f"{audio_s / 3600:.1f} h"
        return (f"{what}: {self.to_convert} of {self.total} files will be converted to {SAMPLE_RATE // 1000} kHz mono "
                f"({RESAMPLER}): {parts}, {length} of audio{took}")


def survey(paths, progress: bool = False) -> Survey:
    """Every file's header, grouped by (rate, channels)."""
    out = Survey()
    for path in tqdm(list(paths), desc="read headers", disable=not progress, leave=False):
        out.total += 1
        fmt = audio_format(path)
        if fmt is None or fmt.frames == 0:
            out.unreadable.append(str(path))
            continue
        kind = out.kinds.setdefault((fmt.rate, fmt.channels), [0, 0.0, str(path)])
        kind[0] += 1
        kind[1] += fmt.seconds
    return out


def read_mono(path: str | Path) -> np.ndarray:
    """A file at any rate and channel count as mono float32 at 16 kHz (channels averaged, then ``resample``)."""
    x, rate = sf.read(str(path), dtype="float32", always_2d=False)
    return resample(check_signal(to_mono(x, str(path)), str(path)), rate)


def estimate_seconds(found: Survey) -> float:
    """Seconds the conversion will take here: one real conversion of each kind's example, scaled by its audio."""
    total = 0.0
    for _, seconds, example in found.converted_kinds().values():
        t0 = time.perf_counter()
        y = read_mono(example)
        spent = time.perf_counter() - t0
        total += spent * seconds / max(len(y) / SAMPLE_RATE, 1e-3)
    return total


def _cached_name(source: str) -> str:
    """A readable, collision-free name: the file's stem and a hash of its whole path."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(source).stem)[:80]
    return f"{stem}.{zlib.crc32(source.encode()):08x}.wav"


def _stat(path: str) -> list[int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def convert(source: str, target: Path, fmt: AudioFormat) -> None:
    """``source`` at 16 kHz mono into ``target``: 16-bit where the source is 16-bit and nothing exceeds full
    scale (a resampled peak may overshoot it), float otherwise, so nothing is clipped."""
    y = read_mono(source)
    subtype = "PCM_16" if fmt.subtype == "PCM_16" and np.max(np.abs(y)) <= 1.0 else "FLOAT"
    tmp = target.with_name(f".{target.name}.tmp.wav")
    write_audio(tmp, y, subtype=subtype)
    os.replace(tmp, target)


def ingest(manifest: pd.DataFrame, cache_dir: str | Path, progress: bool = True) -> pd.DataFrame:
    """``manifest`` with the path of every file that is not 16 kHz mono replaced by its converted copy in
    ``cache_dir``. What the index says was made from a file of the same size and modification time is reused;
    a file that changed is looked at again; copies no row needs any more are removed."""
    cache_dir = Path(cache_dir)
    index_path = cache_dir / INDEX
    old = json.loads(index_path.read_text()) if index_path.is_file() else {}
    index, todo = {}, []
    for source in manifest["path"]:
        stamp, entry = _stat(source), old.get(source)
        made = entry is not None and (entry["file"] is None or (cache_dir / entry["file"]).is_file())
        if made and entry["stamp"] == stamp:
            index[source] = entry
        else:
            todo.append(source)
    for source in tqdm(todo, desc=f"to {SAMPLE_RATE // 1000} kHz mono", disable=not progress or not todo, unit="file"):
        fmt = audio_format(source)
        if fmt is None:
            raise FileNotFoundError(f"{source}: missing or not readable audio (listed in the corpus's manifest)")
        entry = {"stamp": _stat(source), "file": None, "from": fmt.describe()}
        if fmt.converted:
            cache_dir.mkdir(parents=True, exist_ok=True)
            entry["file"] = _cached_name(source)
            convert(source, cache_dir / entry["file"], fmt)
        index[source] = entry
    paths = [source if index[source]["file"] is None else str(cache_dir / index[source]["file"])
             for source in manifest["path"]]
    if index != old:
        kept = {e["file"] for e in index.values() if e["file"]}
        for stale in [e["file"] for e in old.values() if e["file"] and e["file"] not in kept]:
            (cache_dir / stale).unlink(missing_ok=True)
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = index_path.with_name(f".{INDEX}.tmp")
        tmp.write_text(json.dumps(index, indent=1))
        os.replace(tmp, index_path)
    return manifest.assign(path=paths)
