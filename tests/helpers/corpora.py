"""Corpora and noise collections as their publishers ship them, in miniature: the real folder layouts and file names,
sample rates, channel counts and typical lengths, and each one's quirks. Each builder takes its file list from a
table written here from the corpus's published naming rule (never from the recipe under test) and returns, per
file, what a correct manifest says of it. Every voice has its own pitch and every emotion moves it, so that a study
on these trees has something to learn.

Sizes: the real corpora hold hundreds to thousands of files; these hold tens, of the real lengths (RAVDESS about
3.5 s, CREMA-D 2.5 s, EmoDB 2.8 s), unless a unit test asks for short clips (it reads headers only)."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import soundfile as sf

EMOTION_PITCH = {"neu": 1.0, "cal": 0.92, "hap": 1.22, "sad": 0.84, "ang": 1.32, "fea": 1.42, "dis": 0.95,
                 "sur": 1.36, "bor": 0.9, "con": 1.05}
EMOTION_RATE = {"neu": 4.0, "cal": 3.2, "hap": 5.0, "sad": 2.8, "ang": 5.6, "fea": 6.2, "dis": 3.6, "sur": 5.4,
                "bor": 3.0, "con": 3.8}  # syllables a second


def voice(seconds: float, rate: int, f0: float, syllables: float = 4.0, channels: int = 1, seed: int = 0):
    """Speech-like audio at ``rate``: harmonics of a gliding pitch ``f0`` switched on and off ``syllables`` times a
    second, 100 ms of near silence at both ends; a second channel, where asked, a slightly different microphone."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    pitch = f0 * (1 + 0.08 * np.sin(2 * np.pi * 0.6 * t + rng.uniform(0, 6)))
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    tone = sum(np.sin(k * phase) / k for k in range(1, 8) if k * f0 < 0.45 * rate)
    envelope = np.clip(np.sin(2 * np.pi * syllables * t / 2), 0, None) ** 0.6
    edge = (t > 0.1) & (t < seconds - 0.1)
    x = 0.25 * tone * envelope * edge + 0.001 * rng.standard_normal(t.size)
    if channels == 1:
        return x.astype(np.float32)
    return np.stack([x, *(0.9 * x + 0.002 * rng.standard_normal(t.size) for _ in range(channels - 1))], 1).astype(
        np.float32)


def write(path: Path, seconds: float, rate: int = 16_000, channels: int = 1, f0: float = 140.0, emotion: str = "neu",
          seed: int = 0) -> Path:
    """A speech-like 16-bit file (``seconds=0``: one with no samples, as real corpora carry a few)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    x = voice(seconds, rate, f0 * EMOTION_PITCH[emotion], EMOTION_RATE[emotion], channels, seed) if seconds else \
        np.zeros((0, channels), np.float32)
    sf.write(str(path), x, rate, subtype="PCM_16")
    return path


# ---------------------------------------------------------------- RAVDESS (48 kHz, 24 actors, odd male)

RAVDESS_EMOTIONS = {1: "neu", 2: "cal", 3: "hap", 4: "sad", 5: "ang", 6: "fea", 7: "dis", 8: "sur"}  # published codes


def ravdess(root: Path, actors=range(1, 7), seconds: float = 3.5, counts: dict | None = None,
            stereo_actor: int | None = 2) -> dict[str, dict]:
    """``Audio_Speech_Actors_01-24/Actor_NN/03-01-EE-II-SS-RR-NN.wav`` at 48 kHz (modality 03 audio only, vocal
    channel 01 speech): emotion EE has ``counts[EE]`` files per actor (default EE: 1 to 8, so no two classes have
    the same count), over (intensity, statement, repetition), neutral never strong (intensity 02). The files of
    ``stereo_actor`` are stereo, as some copies are. Also the song zip's folder, a video file and a __MACOSX
    copy, none of which is speech audio. Returns {utt_id: row} of what the manifest must say."""
    counts = counts or {e: e for e in RAVDESS_EMOTIONS}
    speech, expected = root / "Audio_Speech_Actors_01-24", {}
    for actor in actors:
        for e, n in counts.items():
            combos = [(i, s, r) for i in (1, 2) for s in (1, 2) for r in (1, 2) if not (e == 1 and i == 2)][:n]
            for i, s, r in combos:
                stem = f"03-01-{e:02d}-{i:02d}-{s:02d}-{r:02d}-{actor:02d}"
                emotion = RAVDESS_EMOTIONS[e]
                write(speech / f"Actor_{actor:02d}" / f"{stem}.wav", seconds, 48_000, 2 if actor == stereo_actor else 1,
                      120.0 if actor % 2 else 210.0, emotion, seed=zlib.crc32(stem.encode()))
                expected[stem] = dict(emotion=emotion, speaker=f"{actor:02d}", gender="M" if actor % 2 else "F")
    first = f"Actor_{min(actors):02d}"
    write(root / "Audio_Song_Actors_01-24" / first / f"03-02-03-01-01-01-{min(actors):02d}.wav", 0.2, 48_000, 1)
    (speech / first / f"01-01-03-01-01-01-{min(actors):02d}.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42")
    write(root / "__MACOSX" / first / f"03-01-03-01-01-01-{min(actors):02d}.wav", 0.1, 48_000)
    return expected


# ---------------------------------------------------------------- CREMA-D (16 kHz, actors 1001-1091)

CREMAD_EMOTIONS = {"ANG": "ang", "DIS": "dis", "FEA": "fea", "HAP": "hap", "NEU": "neu", "SAD": "sad"}
CREMAD_SENTENCES = ("IEO", "TIE", "IOM", "IWW", "TAI", "MTI", "IWL", "ITH", "DFA", "ITS", "TSI", "WSI")


def cremad(root: Path, actors=range(1001, 1011), seconds: float = 2.5, counts: dict | None = None,
           demographics: bool = True) -> dict[str, dict]:
    """``AudioWAV/{actor}_{sentence}_{EMO}_{level}.wav`` at 16 kHz mono with ``VideoDemographics.csv`` (actors
    alternate Male / Female there): emotion EMO has ``counts[EMO]`` sentences per actor (default 1 to 6 in the order
    above), levels LO MD HI XX (NEU: XX), a Flash video and a Mac resource fork beside the audio."""
    counts = counts or {c: n for n, c in enumerate(CREMAD_EMOTIONS, start=1)}
    expected = {}
    for k, actor in enumerate(actors):
        for emo, n in counts.items():
            for j, sentence in enumerate(CREMAD_SENTENCES[:n]):
                level = "XX" if emo == "NEU" else ("LO", "MD", "HI", "XX")[j % 4]
                stem = f"{actor}_{sentence}_{emo}_{level}"
                write(root / "AudioWAV" / f"{stem}.wav", seconds, 16_000, 1, 125.0 if k % 2 == 0 else 205.0,
                      CREMAD_EMOTIONS[emo], seed=zlib.crc32(stem.encode()))
                expected[stem] = dict(emotion=CREMAD_EMOTIONS[emo], speaker=str(actor),
                                      gender=("M" if k % 2 == 0 else "F") if demographics else "")
    (root / "AudioWAV" / f"{min(actors)}_DFA_ANG_XX.flv").write_bytes(b"FLV\x01 not audio")
    (root / "AudioWAV" / f"._{min(actors)}_DFA_ANG_XX.wav").write_bytes(b"\x00\x05\x16\x07Mac OS X")
    if demographics:
        rows = [f"{a},{30 + k},{'Male' if k % 2 == 0 else 'Female'},Caucasian,Not Hispanic"
                for k, a in enumerate(actors)]
        (root / "VideoDemographics.csv").write_text("ActorID,Age,Sex,Race,Ethnicity\n" + "\n".join(rows) + "\n")
    return expected


# ---------------------------------------------------------------- EmoDB (16 kHz, ten German speakers)

EMODB_EMOTIONS = {"W": "ang", "L": "bor", "E": "dis", "A": "fea", "F": "hap", "T": "sad", "N": "neu"}  # German
EMODB_SPEAKERS = {"03": "M", "08": "F", "09": "F", "10": "M", "11": "M", "12": "M", "13": "F", "14": "F", "15": "M",
                  "16": "F"}
EMODB_TEXTS = ("a01", "a02", "a04", "a05", "a07", "b01", "b02", "b03", "b09", "b10")


def emodb(root: Path, speakers=("03", "08", "09", "10"), seconds: float = 2.8, counts: dict | None = None
          ) -> dict[str, dict]:
    """``wav/{speaker}{text}{E}{version}.wav`` at 16 kHz mono: emotion E (German initial) has ``counts[E]`` texts
    per speaker (default 1 to 7 in the order above); a ``silb/`` folder of syllable labels beside ``wav/``."""
    counts = counts or {c: n for n, c in enumerate(EMODB_EMOTIONS, start=1)}
    expected = {}
    for speaker in speakers:
        for letter, n in counts.items():
            for j, text in enumerate(EMODB_TEXTS[:n]):
                stem = f"{speaker}{text}{letter}{'abcd'[j % 4]}"
                emotion = EMODB_EMOTIONS[letter]
                write(root / "wav" / f"{stem}.wav", seconds, 16_000, 1, 118.0 if EMODB_SPEAKERS[speaker] == "M"
                      else 200.0, emotion, seed=zlib.crc32(stem.encode()))
                expected[stem] = dict(emotion=emotion, speaker=speaker, gender=EMODB_SPEAKERS[speaker])
    (root / "silb").mkdir(parents=True, exist_ok=True)
    (root / "silb" / f"{speakers[0]}a01Wa.silb").write_text("0.1 x\n")
    return expected


# ---------------------------------------------------------------- MSP-Podcast (16 kHz, consensus labels, splits)

MSP_CLASSES = {"A": "ang", "S": "sad", "H": "hap", "U": "sur", "F": "fea", "D": "dis", "C": "con", "N": "neu"}


def msppodcast(root: Path, seconds: float = 0.1) -> dict[str, dict]:
    """``Audios/MSP-PODCAST_{podcast}_{segment}.wav`` and ``Labels/labels_consensus.csv``: class k of the eight has k
    files (so no two share a count), speakers 127 (female), 310 and 88 (male) and Unknown (one speaker each), every
    split; plus classes O and X (no single class), a labelled file without audio and audio without a label."""
    head = "FileName,EmoClass,EmoAct,EmoVal,EmoDom,SpkrID,Gender,Split_Set"
    speakers = (("127", "Female", "F"), ("310", "Male", "M"), ("88", "Male", "M"), ("Unknown", "Unknown", ""))
    splits = ("Train", "Development", "Test1", "Test2")
    lines, expected, n = [head], {}, 0
    for k, (code, emotion) in enumerate(MSP_CLASSES.items(), start=1):
        for _ in range(k):
            n += 1
            stem = f"MSP-PODCAST_{n // 10 + 1:04d}_{n % 10 + 1:04d}"
            spk, sex, gender = speakers[n % 4]
            split = splits[n % 4]
            lines.append(f"{stem}.wav,{code},4.2,3.8,4.0,{spk},{sex},{split}")
            write(root / "Audios" / f"{stem}.wav", seconds, 16_000, 1, 150.0, emotion, seed=n)
            expected[stem] = dict(emotion=emotion, speaker=f"unknown-{stem}" if spk == "Unknown" else spk,
                                  gender=gender, split=split.lower())
    lines += ["MSP-PODCAST_0099_0001.wav,O,4,4,4,88,Male,Train", "MSP-PODCAST_0099_0002.wav,X,4,4,4,88,Male,Train",
              "MSP-PODCAST_0099_0003.wav,N,4,4,4,88,Male,Train"]  # the last has no audio
    for stem in ("MSP-PODCAST_0099_0001", "MSP-PODCAST_0099_0002", "MSP-PODCAST_0099_0009"):  # 0009: no label
        write(root / "Audios" / f"{stem}.wav", seconds)
    (root / "Labels").mkdir(parents=True, exist_ok=True)
    (root / "Labels" / "labels_consensus.csv").write_text("\n".join(lines) + "\n")
    return expected


# ---------------------------------------------------------------- a corpus of your own: 44.1 kHz stereo, a table

OWN_LABELS = {"anger": "ang", "happiness": "hap", "neutral": "neu", "sadness": "sad"}


def own_corpus(folder: Path, speakers=("ann", "bob", "cem", "dee"), per_label: int = 3, seconds: float = 2.0
               ) -> Path:
    """``recordings/{speaker}/{label}_{n}.wav`` at 44.1 kHz stereo and ``my_corpus.csv`` beside them (path, emotion,
    speaker: the labels as words, for ``label_map`` to merge into codes); returns the table."""
    rows = ["path,emotion,speaker"]
    for k, speaker in enumerate(speakers):
        for label, code in OWN_LABELS.items():
            for n in range(per_label):
                rel = Path("recordings") / speaker / f"{label}_{n}.wav"
                write(folder / rel, seconds, 44_100, 2, 130.0 + 40 * k, code, seed=zlib.crc32(str(rel).encode()))
                rows.append(f"{rel},{label},{speaker}")
    table = folder / "my_corpus.csv"
    table.write_text("\n".join(rows) + "\n")
    return table


# ---------------------------------------------------------------- noise collections

def musan(root: Path, seconds: float = 6.0) -> Path:
    """``musan/noise/{free-sound,sound-bible}/noise-*-NNNN.wav`` (16 kHz mono, three files a type, one of them
    22.05 kHz stereo as a few copies are), the README and ANNOTATIONS beside them, and ``music/`` which is no
    noise. Returns the noise folder."""
    rng = np.random.default_rng(1)
    noise = root / "musan" / "noise"
    for kind in ("free-sound", "sound-bible"):
        for i in range(3):
            rate, channels = (22_050, 2) if i == 2 else (16_000, 1)
            path = noise / kind / f"noise-{kind}-{i:04d}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(str(path), (0.1 * rng.standard_normal((int(seconds * rate), channels))).astype(np.float32), rate,
                     subtype="PCM_16")
        (noise / kind / "ANNOTATIONS").write_text("noise-x-0000 some noise\n")
    (noise / "README").write_text("MUSAN noise\n")
    write(root / "musan" / "music" / "fma" / "music-fma-0000.wav", 1.0)
    return noise


DEMAND_ENVIRONMENTS = ("DKITCHEN", "DLIVING", "NPARK", "OOFFICE", "PCAFETER", "STRAFFIC")


def demand(root: Path, seconds: float = 8.0, channels: int = 4) -> Path:
    """``DEMAND/{ENV}/ch01.wav … chNN.wav`` at 48 kHz, one microphone a file (the real one has 16, five minutes
    each): the channels of an environment are one scene heard at once. Returns the DEMAND folder."""
    rng = np.random.default_rng(2)
    for env in DEMAND_ENVIRONMENTS:
        scene = rng.standard_normal(int(seconds * 48_000))
        for ch in range(1, channels + 1):
            x = 0.05 * (scene + 0.2 * rng.standard_normal(scene.size))
            path = root / "DEMAND" / env / f"ch{ch:02d}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(str(path), x.astype(np.float32), 48_000, subtype="PCM_16")
    return root / "DEMAND"


def tiny_wavlm(folder: Path) -> Path:
    """A WavLM as `save_pretrained` leaves it: wavlm-base-plus's twelve layers, narrow enough to train in seconds
    (random weights)."""
    from transformers import WavLMConfig, WavLMModel
    config = WavLMConfig(hidden_size=16, num_hidden_layers=12, num_attention_heads=2, intermediate_size=32,
                         conv_dim=(8,) * 7, conv_stride=(5, 2, 2, 2, 2, 2, 2), conv_kernel=(10, 3, 3, 3, 3, 2, 2),
                         num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, feat_extract_norm="layer",
                         num_buckets=32, max_bucket_distance=80, mask_time_prob=0.0)
    WavLMModel(config).save_pretrained(folder)
    return folder
