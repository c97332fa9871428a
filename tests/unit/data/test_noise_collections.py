"""Any noise collection makes the bank: a flat folder (NOISEX-92, any audio), a folder of folders (MUSAN,
DEMAND) or a CSV; several files of a type split train/test by file, one file is cut inside; mixing draws a
segment inside one file, and a type that is one recording draws as a lone recording always has."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io
import soundfile as sf

from mlkd_lib.data.audio import SAMPLE_RATE, speech_like
from mlkd_lib.data.mixing import mix_at_snr, noise_segment, rms_level_db, speech_level_db
from mlkd_lib.data.noise.bank import load_noise_bank, split_noise, write_noise_bank
from mlkd_lib.data.noise.collection import NOISEX_RATE, collection_types, noise_problems

FILE = 100_000  # file j of a type holds the values j*FILE + 1, 2, 3, ...: a sample says which file and where


def tagged(j: int, n: int) -> np.ndarray:
    return (j * FILE + np.arange(1, n + 1)).astype(np.float32)


def which_file(segment: np.ndarray) -> set[int]:
    return set((np.asarray(segment) // FILE).astype(int).tolist())


def noise(rng, seconds: float, rate: int, channels: int = 1) -> np.ndarray:
    x = 0.1 * rng.standard_normal((int(seconds * rate), channels))
    return x[:, 0] if channels == 1 else x


@pytest.fixture
def musan(tmp_path, rng):
    """MUSAN's noise/ shape: two subfolders of files at several rates, one stereo, and text files beside."""
    root = tmp_path / "musan" / "noise"
    for kind, files in (("free-sound", [(16_000, 1), (22_050, 2), (44_100, 1)]),
                        ("sound-bible", [(8_000, 1), (48_000, 2)])):
        for i, (rate, channels) in enumerate(files):
            path = root / kind / f"noise-{kind}-{i:04d}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, noise(rng, 1.0 + 0.5 * i, rate, channels), rate)
        (root / kind / "ANNOTATIONS").write_text("noise-... filename, url\n")
        (root / kind / "LICENSE").write_text("CC\n")
    (root / "README").write_text("MUSAN noise\n")
    return root


@pytest.fixture
def demand(tmp_path, rng):
    """DEMAND's shape: a folder per environment, 16 channels each (short, at 16 kHz here)."""
    root = tmp_path / "DEMAND"
    for kind in ("DKITCHEN", "NFIELD"):
        (root / kind).mkdir(parents=True)
        for ch in range(1, 17):
            sf.write(root / kind / f"ch{ch:02d}.wav", tagged(ch, 4000) / 2e6, 16_000, subtype="FLOAT")
    return root


def test_musan_types_are_subfolders_read_at_16k_mono_and_text_files_are_ignored(musan, tmp_path):
    found = collection_types(musan)
    assert list(found) == ["free-sound", "sound-bible"]
    assert [p.name for p in found["sound-bible"]] == ["noise-sound-bible-0000.wav", "noise-sound-bible-0001.wav"]
    written = write_noise_bank(tmp_path / "bank", musan)
    assert written == {"free-sound": tmp_path / "bank" / "free-sound", "sound-bible": tmp_path / "bank" / "sound-bible"}
    assert sorted(p.name for p in (tmp_path / "bank" / "free-sound").iterdir()) == ["000.wav", "001.wav", "002.wav"]
    bank = load_noise_bank(tmp_path / "bank", ["free-sound", "sound-bible"])
    assert [len(x) for x in bank["free-sound"]] == [16_000, 24_000, 32_000]  # 1, 1.5, 2 s at 16 kHz
    assert [len(x) for x in bank["sound-bible"]] == [16_000, 24_000]
    assert all(x.ndim == 1 and x.dtype == np.float32 for x in bank["free-sound"] + bank["sound-bible"])
    assert {sf.info(p).samplerate for p in (tmp_path / "bank").rglob("*.wav")} == {SAMPLE_RATE}


def test_demand_channels_split_by_file_and_no_test_file_trains(demand, tmp_path):
    write_noise_bank(tmp_path / "bank", demand, types=["DKITCHEN"])
    assert not (tmp_path / "bank" / "NFIELD").exists()  # only the types asked for
    bank = load_noise_bank(tmp_path / "bank")
    assert list(bank) == ["DKITCHEN"] and len(bank["DKITCHEN"]) == 16
    assert [which_file(np.rint(x * 2e6)) for x in bank["DKITCHEN"]] == [{ch} for ch in range(1, 17)]  # sorted order
    train, test = split_noise(bank, 2 / 3)
    assert len(train["DKITCHEN"]) == 11 and len(test["DKITCHEN"]) == 5  # round(2/3 * 16) files train
    trained = {f for x in train["DKITCHEN"] for f in which_file(np.rint(x * 2e6))}
    tested = {f for x in test["DKITCHEN"] for f in which_file(np.rint(x * 2e6))}
    assert trained == set(range(1, 12)) and tested == set(range(12, 17))
    assert all(len(x) == 4000 for x in train["DKITCHEN"] + test["DKITCHEN"])  # files are never cut


@pytest.mark.parametrize("n, fraction, counts", [(2, 0.9, (1, 1)), (2, 0.1, (1, 1)), (3, 2 / 3, (2, 1)),
                                                 (10, 0.5, (5, 5)), (4, 0.99, (3, 1))])
def test_a_split_by_file_keeps_at_least_one_file_on_each_side(n, fraction, counts):
    files = [tagged(j, 100) for j in range(n)]  # short files: by file, no length is needed
    train, test = split_noise({"t": files}, fraction)
    assert (len(train["t"]), len(test["t"])) == counts
    assert all(a is b for a, b in zip(train["t"] + test["t"], files, strict=True))  # in order, none cut
    same_train, same_test = split_noise({"t": files}, 1.0)
    assert same_train["t"] is files and same_test["t"] is files


def test_a_flat_folder_of_any_audio_is_one_type_per_file_cut_inside_as_before(tmp_path, rng):
    flat = tmp_path / "flat"
    flat.mkdir()
    sf.write(flat / "cafe.wav", noise(rng, 3.0, 44_100, channels=2), 44_100)
    sf.write(flat / "street.flac", noise(rng, 3.0, 8_000), 8_000)
    (flat / "notes.txt").write_text("not audio")
    write_noise_bank(tmp_path / "bank", flat)
    assert sorted(p.name for p in (tmp_path / "bank").iterdir()) == ["cafe.wav", "street.wav"]
    bank = load_noise_bank(tmp_path / "bank")
    assert all(isinstance(x, np.ndarray) and x.ndim == 1 and len(x) == 48_000 for x in bank.values())
    train, test = split_noise(bank, 2 / 3)
    for k, x in bank.items():  # one recording: its first 2/3 train, the rest test
        np.testing.assert_array_equal(train[k], x[:32_000])
        np.testing.assert_array_equal(test[k], x[32_000:])


def test_a_noisex_folder_with_spib_mat_files_keeps_its_names(tmp_path, rng):
    noisex = tmp_path / "NOISEX-92"
    noisex.mkdir()
    n = 2 * NOISEX_RATE
    for stem in ("babble", "factory1", "factory2"):
        values = np.round(3000 * rng.standard_normal((n, 1))).clip(-32768, 32767)  # 16-bit values as doubles
        scipy.io.savemat(noisex / f"{stem}.mat", {stem: values.astype(np.float64)})
    assert sorted(collection_types(noisex)) == ["babble", "factory1", "factory2"]
    assert [p.name for p in collection_types(noisex, ["factory"])["factory"]] == ["factory1.mat"]
    write_noise_bank(tmp_path / "bank", noisex, types=["babble", "factory"])
    bank = load_noise_bank(tmp_path / "bank", ["babble", "factory"])
    assert all(abs(len(x) - 2 * SAMPLE_RATE) <= 1 and 0.01 < np.max(np.abs(x)) < 1.0 for x in bank.values())


def test_a_csv_lists_paths_relative_to_its_folder(tmp_path, rng):
    for name in ("b.wav", "a.wav", "c.wav"):
        (tmp_path / "clips").mkdir(exist_ok=True)
        sf.write(tmp_path / "clips" / name, noise(rng, 1.0, 22_050), 22_050)
    (tmp_path / "lists").mkdir()
    table = tmp_path / "lists" / "noise.csv"
    table.write_text("path,type,note\n../clips/b.wav,hum,x\n../clips/a.wav,hum,\n"
                     f"{tmp_path / 'clips' / 'c.wav'},hiss,absolute\n")
    found = collection_types(table)
    assert {k: [p.name for p in v] for k, v in found.items()} == {"hiss": ["c.wav"], "hum": ["a.wav", "b.wav"]}
    write_noise_bank(tmp_path / "bank", table)
    bank = load_noise_bank(tmp_path / "bank")
    assert isinstance(bank["hiss"], np.ndarray) and len(bank["hiss"]) == 16_000
    assert isinstance(bank["hum"], list) and [len(x) for x in bank["hum"]] == [16_000, 16_000]


def test_a_segment_of_a_several_file_type_stays_inside_one_file_weighted_by_length():
    files = [tagged(0, 1000), tagged(1, 3000)]
    picked = []
    for seed in range(2000):
        segment = noise_segment(files, 400, np.random.default_rng(seed))
        assert len(segment) == 400 and len(which_file(segment)) == 1
        picked.append(which_file(segment).pop())
    assert np.mean(picked) == pytest.approx(0.75, abs=0.04)  # the 3000-sample file, 3/4 of the samples
    for seed in range(50):  # longer than either file: looped inside one
        segment = noise_segment(files, 5000, np.random.default_rng(seed))
        [j] = which_file(segment)
        assert set(np.diff(segment)) <= {1.0, 1.0 - len(files[j])}  # continues cyclically within file j


@pytest.mark.parametrize("n", [1000, 16000, 25000])
@pytest.mark.parametrize("as_list", [False, True])
def test_a_one_recording_type_draws_as_a_lone_recording_always_has(n, as_list):
    """The rule a lone recording has always been drawn by, worked here by index arithmetic: one draw of the
    start, in [0, len - n] when the recording is long enough, else in [0, len) with the recording looped from
    there; a list of one draws no file first (the generator is one draw further on, no more)."""
    ramp = np.arange(1, 16_001, dtype=np.float32)
    for seed in range(5):
        rng, ref = np.random.default_rng(seed), np.random.default_rng(seed)
        segment = noise_segment([ramp] if as_list else ramp, n, rng)
        if n <= len(ramp):
            expected = ramp[int(ref.integers(0, len(ramp) - n + 1)) + np.arange(n)]
        else:
            expected = ramp[(int(ref.integers(0, len(ramp))) + np.arange(n)) % len(ramp)]
        np.testing.assert_array_equal(segment, expected)
        assert int(rng.integers(1 << 30)) == int(ref.integers(1 << 30))


def test_a_one_recording_mixture_is_unchanged_and_a_several_file_mixture_hits_its_snr(rng):
    speech = speech_like(np.random.default_rng(1234))
    ramp = np.arange(1, 16_001, dtype=np.float32) / 16_000
    a, b = np.random.default_rng(7), np.random.default_rng(7)
    assert np.array_equal(mix_at_snr(speech, ramp, 5.0, a), mix_at_snr(speech, [ramp], 5.0, b))
    ref = np.random.default_rng(7)
    start = int(ref.integers(0, len(ramp)))  # speech is longer than the ramp: looped from one drawn start
    assert int(a.integers(1 << 30)) == int(b.integers(1 << 30)) == int(ref.integers(1 << 30))  # that draw alone
    residual = mix_at_snr(speech, ramp, 5.0, np.random.default_rng(7)).astype(np.float64) - speech
    expected = np.resize(np.roll(ramp, -start), len(speech)).astype(np.float64)
    np.testing.assert_allclose(residual, (residual @ expected / (expected @ expected)) * expected, atol=1e-6)
    files = [noise(rng, 0.5, 16_000).astype(np.float32), noise(rng, 4.0, 16_000).astype(np.float32)]
    noisy = mix_at_snr(speech, files, 3.0, np.random.default_rng(0))
    assert speech_level_db(speech) - rms_level_db(noisy.astype(np.float64) - speech) == pytest.approx(3.0, abs=0.1)


def test_an_unknown_type_is_an_error_that_lists_the_types_there(musan, tmp_path):
    with pytest.raises(ValueError, match=r"'car'.*its types: free-sound, sound-bible"):
        write_noise_bank(tmp_path / "bank", musan, types=["free-sound", "car"])
    with pytest.raises(ValueError, match="babble, f16, factory, hfchannel, volvo"):
        write_noise_bank(tmp_path / "bank", None, types=["car"])
    write_noise_bank(tmp_path / "bank", musan, types=["sound-bible"])
    with pytest.raises(FileNotFoundError, match=r"car.*sound-bible"):
        load_noise_bank(tmp_path / "bank", ["car"])
    with pytest.raises(FileNotFoundError, match="not found"):
        write_noise_bank(tmp_path / "bank", tmp_path / "no-such-collection")


def test_a_rewritten_bank_keeps_no_stale_form_and_never_overwrites_its_collection(demand, tmp_path):
    bank = tmp_path / "bank"
    write_noise_bank(bank, demand, types=["NFIELD"])
    table = tmp_path / "one.csv"
    table.write_text(f"path,type\n{demand / 'DKITCHEN' / 'ch01.wav'},NFIELD\n")
    write_noise_bank(bank, table)  # NFIELD is now one recording: its old folder goes
    assert sorted(p.name for p in bank.iterdir()) == ["NFIELD.wav"]
    assert isinstance(load_noise_bank(bank)["NFIELD"], np.ndarray)
    with pytest.raises(ValueError, match="overwrite"):
        write_noise_bank(demand, demand, types=["NFIELD"])
    assert len(list((demand / "NFIELD").iterdir())) == 16


def test_noise_problems_reports_every_problem_at_once(musan, tmp_path):
    assert noise_problems(str(musan), ["free-sound", "sound-bible"]) == []
    assert noise_problems("", ["babble", "volvo"]) == []
    assert "babble, f16" in noise_problems("", ["babble", "car"])[0]
    nowhere = tmp_path / "nowhere"
    assert noise_problems(str(nowhere), ["babble"]) == [f"noise collection not found: {nowhere}"]
    (musan / "empty-type").mkdir()
    (musan / "empty-type" / "README").write_text("no audio here")
    (musan / "sound-bible" / "noise-sound-bible-0001.wav").write_bytes(b"RIFF....not a wav")
    problems = noise_problems(str(musan), ["free-sound", "sound-bible", "empty-type", "car", "clean"])
    assert len(problems) == 3, problems
    assert any("'empty-type' has no audio files" in p for p in problems)
    assert any("'car'" in p and "'clean'" in p and "free-sound, sound-bible" in p for p in problems)
    assert any("unreadable" in p and "noise-sound-bible-0001.wav" in p for p in problems)

    no_columns = tmp_path / "cols.csv"
    no_columns.write_text("file,kind\na.wav,x\n")
    assert noise_problems(str(no_columns), ["x"]) == [f"noise list {no_columns}: lacks the column(s) path, type "
                                                      "(it has file, kind; wanted path,type)"]
    sf.write(tmp_path / "ok.wav", np.zeros(160) + 0.1, 16_000)
    table = tmp_path / "list.csv"
    table.write_text("path,type\nok.wav,hum\ngone.wav,hum\n,hiss\nnotes.txt,buzz\n")
    (tmp_path / "notes.txt").write_text("x")
    problems = noise_problems(str(table), ["hum", "buzz", "car"])
    assert len(problems) == 4, problems
    assert any("line(s) 4" in p for p in problems)  # a row without a path
    assert any("'hum'" in p and "gone.wav" in p for p in problems)
    assert any("'buzz'" in p and "notes.txt (not" in p for p in problems)
    assert any("'car'" in p and "buzz, hum" in p for p in problems)


def test_a_type_named_twice_in_a_flat_folder_is_a_problem(tmp_path, rng):
    flat = tmp_path / "flat"
    flat.mkdir()
    sf.write(flat / "babble.wav", noise(rng, 1.0, 16_000), 16_000)
    scipy.io.savemat(flat / "babble.mat", {"babble": np.ones((100, 1))})
    sf.write(flat / "volvo.wav", noise(rng, 1.0, 16_000), 16_000)
    assert noise_problems(str(flat), ["volvo"]) == []  # only the types asked for matter
    [problem] = noise_problems(str(flat), ["babble", "volvo"])
    assert "babble.mat and babble.wav" in problem
    sf.write(flat / "clean.wav", noise(rng, 1.0, 16_000), 16_000)  # the clean condition's name
    [problem] = noise_problems(str(flat), ["clean"])
    assert "'clean' cannot name a noise type" in problem
