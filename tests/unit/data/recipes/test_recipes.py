"""CREMA-D, RAVDESS, EmoDB and MSP-Podcast recipes on miniature trees with the real names and quirks."""

from __future__ import annotations

import inspect
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mlkd_lib.data.manifest import MANIFEST_COLUMNS, read_manifest
from mlkd_lib.data.recipes import cremad, emodb, msppodcast, ravdess

CODES = {"neu", "hap", "ang", "sad", "fea", "dis", "sur", "cal", "bor", "con"}


def clip(path: Path, seconds: float = 0.1, rate: int = 16_000, channels: int = 1) -> Path:
    """A short noise clip (``seconds=0``: an empty one, 0 frames)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    x = 0.1 * np.random.default_rng(len(path.name)).standard_normal((round(seconds * rate), channels))
    sf.write(path, x.astype(np.float32), rate)
    return path


def build(recipe, root, **options):
    """The manifest and the messages of the warnings it gave."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        df = recipe.build_manifest(root, progress=False, **options)
    return df, [str(w.message) for w in caught]


def check_contract(df, corpus, split=False):
    assert list(df.columns) == MANIFEST_COLUMNS + (["split"] if split else [])
    assert list(df.utt_id) == sorted(df.utt_id) and df.utt_id.is_unique
    assert all(Path(p).is_absolute() and Path(p).is_file() for p in df.path)
    assert set(df.emotion) <= CODES and set(df.corpus) == {corpus} and set(df.gender) <= {"F", "M", ""}
    assert (df.duration_s > 0).all()


# ---------------------------------------------------------------- CREMA-D

CREMAD = {  # file -> seconds; 1076_MTI_SAD_XX.wav is empty in the real corpus too
    "1001_DFA_ANG_XX.wav": 0.2, "1001_DFA_HAP_HI.wav": 0.1, "1001_IEO_NEU_XX.wav": 0.1, "1001_ITS_SAD_LO.wav": 0.1,
    "1002_DFA_DIS_XX.wav": 0.1, "1002_TIE_FEA_MD.wav": 0.1, "1002_DFA_ANG_XX.wav": 0.1,
    "1076_MTI_SAD_XX.wav": 0, "1076_MTI_NEU_XX.wav": 0.15, "1091_WSI_HAP_XX.wav": 0.1,
    "1001_DFA_ANG_XX (copy).wav": 0.1,  # not the corpus's naming: warned
}
DEMOGRAPHICS = "ActorID,Age,Sex,Race,Ethnicity\n1001,51,Male,Caucasian,Not Hispanic\n" \
               "1002,21,Female,Caucasian,Not Hispanic\n1076,25,Female,African American,Not Hispanic\n"


def cremad_tree(root: Path, demographics: bool = True) -> Path:
    for name, seconds in CREMAD.items():
        clip(root / "AudioWAV" / name, seconds)
    (root / "AudioWAV" / "1001_DFA_ANG_XX.flv").write_bytes(b"FLV\x01 not audio")
    (root / "AudioWAV" / "._1001_DFA_HAP_HI.wav").write_bytes(b"\x00\x05\x16\x07Mac OS X")
    if demographics:
        (root / "VideoDemographics.csv").write_text(DEMOGRAPHICS)
    return root


def test_cremad(tmp_path):
    root = cremad_tree(tmp_path / "CREMA-D")
    df, said = build(cremad, root)
    check_contract(df, "cremad")
    # file by file, from CREMA-D's published naming (ActorID_Sentence_Emotion_Level; ANG anger, DIS disgust, FEA
    # fear, HAP happy, NEU neutral, SAD sad): a swap of two codes cannot hide in a count
    assert dict(zip(df.utt_id, df.emotion)) == {
        "1001_DFA_ANG_XX": "ang", "1001_DFA_HAP_HI": "hap", "1001_IEO_NEU_XX": "neu", "1001_ITS_SAD_LO": "sad",
        "1002_DFA_ANG_XX": "ang", "1002_DFA_DIS_XX": "dis", "1002_TIE_FEA_MD": "fea", "1076_MTI_NEU_XX": "neu",
        "1091_WSI_HAP_XX": "hap"}
    assert Counter(df.speaker) == {"1001": 4, "1002": 3, "1076": 1, "1091": 1}
    assert dict(zip(df.speaker, df.gender)) == {"1001": "M", "1002": "F", "1076": "F", "1091": ""}
    assert set(df.session) == {""}
    assert df.set_index("utt_id").loc["1001_DFA_ANG_XX", "duration_s"] == 0.2
    assert df.set_index("utt_id").loc["1076_MTI_NEU_XX", "duration_s"] == 0.15
    assert len(said) == 2 and not any(".flv" in s or "._" in s for s in said)
    assert any("1076_MTI_SAD_XX.wav (0 frames)" in s for s in said)
    assert any("1001_DFA_ANG_XX (copy).wav" in s for s in said)
    assert df.attrs["left_out"] == {"wavs not named ACTOR_SENTENCE_EMOTION_LEVEL": 1,
                                    "empty (0 frames) or unreadable audio files": 1}


def test_cremad_without_demographics_and_written(tmp_path):
    root = cremad_tree(tmp_path / "CREMA-D", demographics=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        df = cremad.build_manifest(root, tmp_path / "out" / "cremad.csv", progress=False)
    assert set(df.gender) == {""} and len(df) == 9
    back = read_manifest(tmp_path / "out" / "cremad.csv")
    assert list(back.utt_id) == list(df.utt_id) and list(back.path) == list(df.path)
    assert list(back.duration_s) == list(df.duration_s) and set(back.session) == {""}
    (tmp_path / "d.csv").write_text(DEMOGRAPHICS)  # the demographics kept apart from the audio
    named, _ = build(cremad, root, demographics=tmp_path / "d.csv")
    assert dict(zip(named.speaker, named.gender)) == {"1001": "M", "1002": "F", "1076": "F", "1091": ""}
    with pytest.raises(FileNotFoundError, match="missing.csv"):
        cremad.build_manifest(root, progress=False, demographics=tmp_path / "missing.csv")


# ---------------------------------------------------------------- RAVDESS

def ravdess_tree(root: Path) -> Path:
    speech = root / "Audio_Speech_Actors_01-24"
    for emotion in range(1, 9):  # actor 01 (male) says every class once
        clip(speech / "Actor_01" / f"03-01-{emotion:02d}-01-01-01-01.wav", 0.2, 48_000, channels=2)
    for name in ("03-01-05-02-01-01-02", "03-01-05-02-02-02-02", "03-01-01-01-02-01-02"):
        clip(speech / "Actor_02" / f"{name}.wav", 0.1, 48_000)
    clip(speech / "Actor_02" / "03-01-04-01-01-01-02.wav", 0)  # empty
    song = root / "Audio_Song_Actors_01-24"  # the song zip unpacked beside the speech one
    clip(song / "Actor_01" / "03-02-03-01-01-01-01.wav", 0.1, 48_000, channels=2)
    clip(song / "Actor_02" / "03-02-04-02-02-01-02.wav", 0.1, 48_000, channels=2)
    (speech / "Actor_01" / "01-01-03-01-01-01-01.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42")
    clip(root / "__MACOSX" / "Actor_01" / "03-01-03-01-01-01-01.wav", 0.1, 48_000)
    return root


def test_ravdess_speech_only(tmp_path):
    df, said = build(ravdess, ravdess_tree(tmp_path / "RAVDESS"))
    check_contract(df, "ravdess")
    assert Counter(df.speaker) == {"01": 8, "02": 3}
    assert dict(zip(df.speaker, df.gender)) == {"01": "M", "02": "F"}
    one = df[df.speaker == "01"].sort_values("utt_id")
    assert list(one.emotion) == ["neu", "cal", "hap", "sad", "ang", "fea", "dis", "sur"]
    assert Counter(df[df.speaker == "02"].emotion) == {"ang": 2, "neu": 1}
    assert set(df.duration_s) == {0.2, 0.1}
    assert len(said) == 1 and "03-01-04-01-01-01-02.wav (0 frames)" in said[0] and "__MACOSX" not in said[0]
    assert df.attrs["left_out"] == {"empty (0 frames) or unreadable audio files": 1,
                                    "song files (include_song=True adds them)": 2}


def test_ravdess_with_song(tmp_path):
    df, _ = build(ravdess, ravdess_tree(tmp_path / "RAVDESS"), include_song=True)
    assert len(df) == 13 and Counter(df.speaker) == {"01": 9, "02": 4}
    sung = df[df.utt_id.str.startswith("03-02-")]
    assert list(sung.emotion) == ["hap", "sad"] and list(sung.gender) == ["M", "F"]


# ---------------------------------------------------------------- EmoDB

EMODB = ["03a01Fa", "03a01Wa", "03b10Nc", "08a02Lb", "09b03Ec", "10a04Ad", "13b10Ta", "16a05Na", "16a05Nb"]


def emodb_tree(root: Path) -> Path:
    for i, stem in enumerate(EMODB):
        clip(root / "wav" / f"{stem}.wav", 0.1 + 0.05 * (i % 2))
    (root / "wav" / "11a01Wa.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk")  # damaged header
    (root / "silb").mkdir()
    (root / "silb" / "03a01Fa.silb").write_text("0.1 x\n")
    return root


def test_emodb(tmp_path):
    df, said = build(emodb, emodb_tree(tmp_path / "emodb"))
    check_contract(df, "emodb")
    # file by file, from EmoDB's published naming (speaker, text, emotion letter, version; W Ärger → anger,
    # L Langeweile → boredom, E Ekel → disgust, A Angst → fear, F Freude → happiness, T Trauer → sadness, N neutral)
    assert dict(zip(df.utt_id, df.emotion)) == {
        "03a01Fa": "hap", "03a01Wa": "ang", "03b10Nc": "neu", "08a02Lb": "bor", "09b03Ec": "dis", "10a04Ad": "fea",
        "13b10Ta": "sad", "16a05Na": "neu", "16a05Nb": "neu"}
    assert Counter(df.speaker) == {"03": 3, "08": 1, "09": 1, "10": 1, "13": 1, "16": 2}
    assert dict(zip(df.speaker, df.gender)) == {"03": "M", "08": "F", "09": "F", "10": "M", "13": "F", "16": "F"}
    assert sorted(set(df.duration_s)) == [0.1, 0.15]
    assert len(said) == 1 and "11a01Wa.wav (not readable audio)" in said[0]


# ---------------------------------------------------------------- MSP-Podcast

MSP = [  # FileName, EmoClass, SpkrID, Gender, Split_Set, has audio
    ("MSP-PODCAST_0001_0008.wav", "N", "127", "Female", "Train", True),
    ("MSP-PODCAST_0001_0012.wav", "A", "127", "Female", "Train", True),
    ("MSP-PODCAST_0002_0001.wav", "H", "Unknown", "Unknown", "Development", True),
    ("MSP-PODCAST_0002_0003.wav", "S", "Unknown", "Unknown", "Test1", True),
    ("MSP-PODCAST_0003_0001.wav", "X", "88", "Male", "Train", True),
    ("MSP-PODCAST_0003_0002.wav", "O", "88", "Male", "Train", True),
    ("MSP-PODCAST_0004_0001.wav", "U", "310", "Male", "Test2", True),
    ("MSP-PODCAST_0004_0002.wav", "C", "310", "Male", "Train", True),
    ("MSP-PODCAST_0004_0003.wav", "D", "310", "Male", "Test1", False),
    ("MSP-PODCAST_0005_0001.wav", "F", "88", "Male", "Development", True),
    ("MSP-PODCAST_0005_0002.wav", "D", "88", "Male", "Test1", True),
]


def msp_tree(root: Path) -> Path:
    lines = ["FileName,EmoClass,EmoAct,EmoVal,EmoDom,SpkrID,Gender,Split_Set"]
    for name, emo, spk, gender, split, has_audio in MSP:
        lines.append(f"{name},{emo},4.2,3.8,4.0,{spk},{gender},{split}")
        if has_audio:
            clip(root / "Audios" / name, 0.1)
    clip(root / "Audios" / "MSP-PODCAST_0009_0001.wav", 0.1)  # unlabelled: not listed
    (root / "Labels").mkdir(parents=True)
    (root / "Labels" / "labels_consensus.csv").write_text("\n".join(lines) + "\n")
    return root


def test_msppodcast(tmp_path):
    df, said = build(msppodcast, msp_tree(tmp_path / "MSP-Podcast"))
    check_contract(df, "msppodcast", split=True)
    # file by file, every one of MSP-Podcast's eight classes (A angry, S sad, H happy, U surprise, F fear,
    # D disgust, C contempt, N neutral; O other and X no agreement left out)
    assert dict(zip(df.utt_id, df.emotion)) == {
        "MSP-PODCAST_0001_0008": "neu", "MSP-PODCAST_0001_0012": "ang", "MSP-PODCAST_0002_0001": "hap",
        "MSP-PODCAST_0002_0003": "sad", "MSP-PODCAST_0004_0001": "sur", "MSP-PODCAST_0004_0002": "con",
        "MSP-PODCAST_0005_0001": "fea", "MSP-PODCAST_0005_0002": "dis"}
    assert Counter(df.speaker) == {"127": 2, "310": 2, "88": 2, "unknown-MSP-PODCAST_0002_0001": 1,
                                   "unknown-MSP-PODCAST_0002_0003": 1}
    by_utt = df.set_index("utt_id")
    assert by_utt.loc["MSP-PODCAST_0002_0001", "gender"] == "" and by_utt.loc["MSP-PODCAST_0001_0008", "gender"] == "F"
    assert Counter(df.gender) == {"F": 2, "M": 4, "": 2}
    assert Counter(df.split) == {"train": 3, "development": 2, "test1": 2, "test2": 1}
    assert len(said) == 1 and "1 labelled files with no audio" in said[0] and "MSP-PODCAST_0004_0003.wav" in said[0]
    assert df.attrs["left_out"] == {"labelled files with no audio in Audios/": 1, "class O (other)": 1,
                                    "class X (no agreement)": 1}


def test_msppodcast_labels_without_a_column(tmp_path):
    root = msp_tree(tmp_path / "M")
    (root / "Labels" / "labels_consensus.csv").write_text("FileName,EmoClass\nMSP-PODCAST_0001_0008.wav,N\n")
    with pytest.raises(ValueError, match=r"labels_consensus\.csv: no column SpkrID"):
        msppodcast.build_manifest(root, progress=False)


# ---------------------------------------------------------------- all four

RECIPES = {cremad: ("AudioWAV", "AudioWAV"), ravdess: ("Actor_01", "Actor_01"), emodb: ("wav", "wav"),
           msppodcast: ("Audios", "Labels/labels_consensus.csv")}


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda r: r.__name__.rsplit(".", 1)[-1])
def test_the_recipe_form(recipe):
    assert recipe.__doc__.strip().count("\n") == 0
    assert set(recipe.LABELS.values()) <= CODES and len(set(recipe.LABELS.values())) == len(recipe.LABELS)
    assert list(inspect.signature(recipe.build_manifest).parameters)[:3] == ["root", "out", "progress"]


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda r: r.__name__.rsplit(".", 1)[-1])
def test_not_the_corpus(recipe, tmp_path):
    folder, missing = RECIPES[recipe]
    with pytest.raises(FileNotFoundError, match="nowhere"):
        recipe.build_manifest(tmp_path / "nowhere", progress=False)
    (tmp_path / "other" / "stuff").mkdir(parents=True)
    clip(tmp_path / "other" / "stuff" / "a.wav")
    with pytest.raises(FileNotFoundError, match=f"{tmp_path / 'other'} is not a .*{missing}"):
        recipe.build_manifest(tmp_path / "other", progress=False)


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda r: r.__name__.rsplit(".", 1)[-1])
def test_no_usable_utterance(recipe, tmp_path):
    root = tmp_path / "empty"
    (root / RECIPES[recipe][0]).mkdir(parents=True)
    if recipe is msppodcast:
        (root / "Labels").mkdir()
        (root / "Labels" / "labels_consensus.csv").write_text(
            "FileName,EmoClass,EmoAct,EmoVal,EmoDom,SpkrID,Gender,Split_Set\nMSP-PODCAST_0001_0001.wav,X,1,1,1,1,"
            "Male,Train\n")
    with pytest.raises(ValueError, match=f"{root}: no usable"):
        recipe.build_manifest(root, progress=False)
