"""Data as it ships: a corpus at 48 kHz (some files stereo) or 44.1 kHz stereo is brought to 16 kHz mono once,
cached, reused, and converted again when a file changes; the survey says what will be converted before it is."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from helpers import corpora

from mlkd_lib.config import make_config
from mlkd_lib.data.audio import AudioError, read_audio, resample
from mlkd_lib.data.ingest import INDEX, estimate_seconds, ingest, survey
from mlkd_lib.data.manifest import read_manifest
from mlkd_lib.data.prepare import prepare_data, study_manifest
from mlkd_lib.data.recipes import ravdess


def ravdess_manifest(tmp_path):
    corpora.ravdess(tmp_path / "RAVDESS", actors=(1, 2), seconds=0.5, counts={1: 1, 3: 2, 5: 1})
    return ravdess.build_manifest(tmp_path / "RAVDESS", tmp_path / "ravdess.csv", progress=False)


def test_a_48_khz_corpus_is_converted_once_to_16_khz_mono(tmp_path):
    manifest = ravdess_manifest(tmp_path)
    cache = tmp_path / "cache"
    out = ingest(manifest, cache, progress=False)
    assert len(out) == len(manifest) == 8 and list(out.utt_id) == list(manifest.utt_id)
    for source, converted in zip(manifest.path, out.path):
        info = sf.info(converted)
        assert (info.samplerate, info.channels) == (16_000, 1) and converted.startswith(str(cache))
        x, rate = sf.read(source, dtype="float32", always_2d=True)
        # the very resampling of the channels' mean (16-bit storage: within a quantisation step or two)
        assert np.max(np.abs(read_audio(converted) - resample(x.mean(axis=1), rate))) < 3 / 32768
    index = json.loads((cache / INDEX).read_text())
    assert {e["from"] for e in index.values()} == {"48000 Hz mono", "48000 Hz 2 channels"}

    made = {p: os.stat(p).st_mtime_ns for p in out.path}
    again = ingest(manifest, cache, progress=False)  # a rerun converts nothing
    assert list(again.path) == list(out.path) and {p: os.stat(p).st_mtime_ns for p in again.path} == made

    changed = manifest.path.iloc[0]  # a file replaced by another recording is converted again
    sf.write(changed, np.zeros(24_000, np.float32), 48_000)
    third = ingest(manifest, cache, progress=False)
    assert os.stat(third.path.iloc[0]).st_mtime_ns != made[third.path.iloc[0]]
    assert not np.any(read_audio(third.path.iloc[0]))
    assert all(os.stat(p).st_mtime_ns == made[p] for p in third.path.iloc[1:])


def test_16_khz_mono_files_are_read_where_they_are_and_stale_copies_go(tmp_path):
    manifest = ravdess_manifest(tmp_path)
    cache = tmp_path / "cache"
    first = ingest(manifest, cache, progress=False)
    ready = tmp_path / "ready.wav"
    sf.write(ready, np.zeros(8_000, np.float32), 16_000)
    smaller = manifest.iloc[:2].assign(path=[str(ready), manifest.path.iloc[1]])
    out = ingest(smaller, cache, progress=False)
    assert out.path.iloc[0] == str(ready) and out.path.iloc[1] == first.path.iloc[1]
    assert sorted(p.name for p in cache.glob("*.wav")) == [os.path.basename(first.path.iloc[1])]


def test_the_survey_says_what_will_be_converted_from_headers_alone(tmp_path):
    manifest = ravdess_manifest(tmp_path)
    table = corpora.own_corpus(tmp_path / "own", speakers=("ann",), per_label=1, seconds=0.5)
    paths = list(manifest.path) + [str(tmp_path / "own" / p) for p in pd.read_csv(table).path]
    (tmp_path / "bad.wav").write_bytes(b"RIFF not audio")
    found = survey(paths + [str(tmp_path / "bad.wav")])
    assert found.total == 13 and found.to_convert == 12 and found.unreadable == [str(tmp_path / "bad.wav")]
    assert {k: v[0] for k, v in found.kinds.items()} == {(48_000, 1): 4, (48_000, 2): 4, (44_100, 2): 4}
    line = found.describe("ravdess", 1.5)
    assert "12 of 13 files" in line and "4 at 48000 Hz mono" in line and "4 at 44100 Hz 2 channels" in line
    assert "about 2 s" in line and "soxr" in line
    assert 0 < estimate_seconds(found) < 5


def test_the_data_step_writes_a_16_khz_manifest_of_a_48_khz_corpus(tmp_path):
    ravdess_manifest(tmp_path)
    cfg = make_config("micro", corpus="manifest", manifest=str(tmp_path / "ravdess.csv"), data_dir=str(tmp_path / "d"),
                      emotions=["neu", "hap", "ang"], conditions=[])
    prepare_data(cfg, progress=False)
    written = read_manifest(cfg.manifest_path)
    assert all(sf.info(p).samplerate == 16_000 and sf.info(p).channels == 1 for p in written.path)
    assert len(study_manifest(cfg)) == 8 and all(read_audio(p).size for p in written.path)  # the steps' reader
    listing = read_manifest(cfg.manifest_path.with_name("corpus.csv"))  # the corpus's own paths, kept
    assert all(p.startswith(str(tmp_path / "RAVDESS")) for p in listing.path)


def test_two_files_of_one_name_in_two_folders_keep_their_own_copies(tmp_path, monkeypatch):
    """An own corpus's ``ann/anger_0.wav`` and ``bob/anger_0.wav`` (48 kHz): both converted, neither over the other,
    each row pointing at a copy of its own file; a changed file converted again (same size, new content), alone;
    a rerun converts nothing."""
    from mlkd_lib.data import ingest as module
    rate, t = 48_000, np.arange(24_000) / 48_000
    sources = {}
    for speaker, (f0, amp) in {"ann": (220.0, 0.1), "bob": (330.0, 0.4)}.items():
        (tmp_path / speaker).mkdir()
        sources[speaker] = str(tmp_path / speaker / "anger_0.wav")
        sf.write(sources[speaker], (amp * np.sin(2 * np.pi * f0 * t)).astype(np.float32), rate, subtype="PCM_16")
    manifest = pd.DataFrame({"utt_id": ["ann-anger_0", "bob-anger_0"], "path": [sources["ann"], sources["bob"]]})
    made = []
    convert = module.convert
    monkeypatch.setattr(module, "convert", lambda source, *a: (made.append(source), convert(source, *a)))
    cache = tmp_path / "cache"
    out = ingest(manifest, cache, progress=False)
    assert made == [sources["ann"], sources["bob"]] and out.path.nunique() == 2
    assert sorted(p.name for p in cache.glob("*.wav")) == sorted(os.path.basename(p) for p in out.path)
    for path, (f0, amp) in zip(out.path, ((220.0, 0.1), (330.0, 0.4))):  # each its own tone, at 16 kHz
        y = read_audio(path)
        spectrum = np.abs(np.fft.rfft(y))
        assert len(y) == 8_000 and np.argmax(spectrum) * 16_000 / len(y) == pytest.approx(f0, abs=2)
        assert np.sqrt(np.mean(y[1000:-1000] ** 2)) == pytest.approx(amp / np.sqrt(2), rel=0.02)

    made.clear()
    again = ingest(manifest, cache, progress=False)
    assert made == [] and list(again.path) == list(out.path)

    stamp = os.stat(sources["bob"]).st_mtime_ns  # bob's file re-recorded: same length and size, another tone
    sf.write(sources["bob"], (0.2 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32), rate, subtype="PCM_16")
    os.utime(sources["bob"], ns=(stamp + 10**9, stamp + 10**9))
    ann_before = read_audio(out.path.iloc[0])
    third = ingest(manifest, cache, progress=False)
    assert made == [sources["bob"]] and list(third.path) == list(out.path)
    y = read_audio(third.path.iloc[1])
    assert np.argmax(np.abs(np.fft.rfft(y))) * 16_000 / len(y) == pytest.approx(440.0, abs=2)
    np.testing.assert_array_equal(read_audio(third.path.iloc[0]), ann_before)


def test_the_survey_counts_kinds_seconds_and_unreadable_files_and_says_so(tmp_path):
    from mlkd_lib.data.ingest import Survey
    paths = []
    for name, rate, channels, seconds in (("a", 48_000, 1, 1.5), ("b", 48_000, 1, 2.5), ("c", 16_000, 1, 1.0),
                                          ("d", 44_100, 2, 1.0)):
        sf.write(tmp_path / f"{name}.wav", np.full((int(rate * seconds), channels), 0.1, np.float32), rate)
        paths.append(str(tmp_path / f"{name}.wav"))
    sf.write(tmp_path / "empty.wav", np.zeros(0, np.float32), 16_000)
    found = survey(paths + [str(tmp_path / "empty.wav"), str(tmp_path / "missing.wav")])
    assert found.total == 6 and found.unreadable == [str(tmp_path / "empty.wav"), str(tmp_path / "missing.wav")]
    assert found.kinds == {(48_000, 1): [2, pytest.approx(4.0), paths[0]],
                           (16_000, 1): [1, pytest.approx(1.0), paths[2]],
                           (44_100, 2): [1, pytest.approx(1.0), paths[3]]}
    assert found.to_convert == 3 and set(found.converted_kinds()) == {(48_000, 1), (44_100, 2)}
    assert found.describe("own", 12.4) == ("own: 3 of 6 files will be converted to 16 kHz mono (soxr VHQ): 2 at 48000 "
                                           "Hz mono, 1 at 44100 Hz 2 channels, 5 s of audio; about 12 s, once")
    for seconds, length in ((599.0, "599 s"), (600.0, "10 min"), (900.0, "15 min"), (7199.0, "120 min"),
                            (7200.0, "2.0 h"), (7381.0, "2.1 h"), (9000.0, "2.5 h")):
        s = Survey({(8_000, 1): [1, seconds, "x"]}, total=1)
        assert s.describe("x") == (f"x: 1 of 1 files will be converted to 16 kHz mono (soxr VHQ): 1 at 8000 Hz mono, "
                                   f"{length} of audio")
    assert Survey({(16_000, 1): [4, 9.0, "x"]}, total=4).describe("x") == "x: all 4 files are 16 kHz mono already"
    by_count = Survey({(22_050, 1): [1, 500.0, "x"], (8_000, 1): [3, 1.0, "y"], (16_000, 1): [9, 1.0, "z"]}, total=13)
    assert by_count.describe("x").split(": ", 2)[2].startswith("3 at 8000 Hz mono, 1 at 22050 Hz mono, 501 s")


def test_the_estimate_scales_one_timed_conversion_a_kind_by_its_audio(monkeypatch):
    from mlkd_lib.data import ingest as module
    clock = iter([10.0, 12.0, 20.0, 20.5])  # two conversions timed: 2 s, then 0.5 s
    monkeypatch.setattr(module.time, "perf_counter", lambda: next(clock))
    monkeypatch.setattr(module, "read_mono", lambda path: np.zeros(16_000 * (4 if path == "a" else 1)))
    found = module.Survey({(48_000, 1): [3, 40.0, "a"], (16_000, 1): [5, 99.0, "x"], (8_000, 2): [1, 6.0, "b"]})
    assert module.estimate_seconds(found) == pytest.approx(2.0 * 40.0 / 4 + 0.5 * 6.0 / 1)


def test_copies_keep_16_bit_where_nothing_overshoots_and_are_named_from_stem_and_path(tmp_path):
    import zlib

    from mlkd_lib.data.ingest import _cached_name
    t = np.arange(48_000) / 48_000
    for name, x, subtype in (("quiet", 0.5 * np.sin(2 * np.pi * 200 * t), "PCM_16"),
                             ("full", np.sign(np.sin(2 * np.pi * 200 * t)) * 0.999, "PCM_16"),  # overshoots resampled
                             ("float", 0.5 * np.sin(2 * np.pi * 200 * t), "FLOAT")):
        sf.write(tmp_path / f"{name}.wav", x.astype(np.float32), 48_000, subtype=subtype)
    out = ingest(pd.DataFrame({"path": [str(tmp_path / f"{n}.wav") for n in ("quiet", "full", "float")]}),
                 tmp_path / "a" / "b" / "cache", progress=False)  # a cache folder two levels new
    assert [sf.info(p).subtype for p in out.path] == ["PCM_16", "FLOAT", "FLOAT"]
    source = "/data/Ann Lee/Ängry Take 1.wav"
    assert _cached_name(source) == f"_ngry_Take_1.{zlib.crc32(source.encode()):08x}.wav"
    long = "/d/" + "x" * 100 + ".wav"
    assert _cached_name(long) == "x" * 80 + f".{zlib.crc32(long.encode()):08x}.wav"


def test_a_copy_removed_by_hand_is_made_again_and_ready_files_are_reused(tmp_path):
    manifest = ravdess_manifest(tmp_path)
    ready = tmp_path / "ready.wav"
    sf.write(ready, np.full(8_000, 0.1, np.float32), 16_000)
    both = pd.concat([manifest.iloc[:2], pd.DataFrame({"utt_id": ["r"], "path": [str(ready)]})], ignore_index=True)
    cache = tmp_path / "cache"
    first = ingest(both, cache, progress=False)
    os.remove(first.path.iloc[0])
    again = ingest(both, cache, progress=False)  # the index names a copy that is gone: made again; ready read as is
    assert os.path.isfile(again.path.iloc[0]) and again.path.iloc[2] == str(ready)
    os.remove(again.path.iloc[1])  # a copy gone that no row needs any more: nothing to remove, no error
    assert len(ingest(both.iloc[[0, 2]], cache, progress=False)) == 2
    with pytest.raises(FileNotFoundError, match=r"^.*missing\.wav: missing or not readable audio \(listed in the "
                                                r"corpus's manifest\)$"):
        ingest(pd.DataFrame({"path": [str(tmp_path / "missing.wav")]}), cache, progress=False)


def test_a_corpus_already_at_16_khz_gets_its_index_in_a_new_folder_and_a_nan_file_is_named(tmp_path):
    ready = tmp_path / "ready.wav"
    sf.write(ready, np.full(8_000, 0.1, np.float32), 16_000)
    cache = tmp_path / "new" / "deeper" / "cache"
    out = ingest(pd.DataFrame({"path": [str(ready)]}), cache, progress=False)
    assert out.path.tolist() == [str(ready)] and json.loads((cache / INDEX).read_text())[str(ready)]["file"] is None
    bad = tmp_path / "nan.wav"
    sf.write(bad, np.full(4_800, np.nan, np.float32), 48_000, subtype="FLOAT")
    with pytest.raises(AudioError, match=f"^{bad}: audio holds NaN or inf samples$"):
        ingest(pd.DataFrame({"path": [str(bad)]}), cache, progress=False)
