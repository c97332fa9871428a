"""IEMOCAP parsing on a miniature corpus tree with the real corpus' traps."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import soundfile as sf

from mlkd_lib.data.recipes.iemocap import build_manifest, speaker_of

HEADER = "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n"
# (session, dialog, utt, label): exc must become hap; the male speaker of an F dialog;
# dialog names with suffixes; labels outside the four classes are dropped
TURNS = [
    (1, "Ses01F_impro01", "Ses01F_impro01_F000", "neu"),
    (1, "Ses01F_impro01", "Ses01F_impro01_M000", "exc"),
    (1, "Ses01F_impro01", "Ses01F_impro01_M001", "fru"),
    (1, "Ses01F_impro01", "Ses01F_impro01_F001", "xxx"),
    (3, "Ses03M_impro05a", "Ses03M_impro05a_F002", "ang"),
    (3, "Ses03M_impro08b", "Ses03M_impro08b_M010", "hap"),
    (5, "Ses05M_script01_1b", "Ses05M_script01_1b_F003", "sad"),
    (5, "Ses05M_script01_1b", "Ses05M_script01_1b_M004", "exc"),
]


def make_tree(root, drop_wav=()):
    by_dialog = {}
    for s, dialog, utt, label in TURNS:
        by_dialog.setdefault((s, dialog), []).append((utt, label))
    for (s, dialog), turns in by_dialog.items():
        sess = root / f"Session{s}"
        ev = sess / "dialog" / "EmoEvaluation"
        lines = [HEADER]
        for i, (utt, label) in enumerate(turns):
            lines.append(f"[{i}.0000 - {i + 1}.5000]\t{utt}\t{label}\t[2.5000, 3.0000, 2.5000]\n")
            lines.append("C-E1:\tNeutral;\t()\nA-E2:\tval 3; act 3; dom  3;\t()\n\n")
            wav = sess / "sentences" / "wav" / dialog / f"{utt}.wav"
            if utt not in drop_wav:
                wav.parent.mkdir(parents=True, exist_ok=True)
                sf.write(wav, np.zeros(16_000 + 800 * i, dtype=np.float32), 16_000)
        ev.mkdir(parents=True, exist_ok=True)
        (ev / f"{dialog}.txt").write_text("".join(lines))
        # the real corpus' extras: sub-folders with per-evaluator files, macOS resource forks
        for sub in ("Categorical", "Attribute", "Self-evaluation"):
            (ev / sub).mkdir(exist_ok=True)
            (ev / sub / f"{dialog}_e1_cat.txt").write_text(
                "".join(f"[0.0 - 1.0]\t{u}\tang\t[1, 1, 1]\n" for u, _ in turns))
        (ev / f"._{dialog}.txt").write_bytes(b"\x00\x05\x16\x07Mac OS X" + lines[1].encode())
    return root


def test_manifest_of_the_miniature_corpus(tmp_path):
    df = build_manifest(make_tree(tmp_path / "IEMOCAP_full_release"), tmp_path / "m.csv", progress=False)
    got = dict(zip(df.utt_id, df.emotion))
    assert got == {"Ses01F_impro01_F000": "neu", "Ses01F_impro01_M000": "hap", "Ses03M_impro05a_F002": "ang",
                   "Ses03M_impro08b_M010": "hap", "Ses05M_script01_1b_F003": "sad", "Ses05M_script01_1b_M004": "hap"}
    spk = dict(zip(df.utt_id, df.speaker))
    assert spk["Ses01F_impro01_M000"] == "Ses01M"  # the male speaker of a female-led dialog
    assert spk["Ses03M_impro05a_F002"] == "Ses03F"
    assert spk["Ses05M_script01_1b_F003"] == "Ses05F"
    assert set(df.gender) == {"F", "M"} and all(df.speaker.str[-1] == df.gender)
    assert (df.duration_s >= 1.0).all() and (tmp_path / "m.csv").is_file()


@pytest.mark.parametrize("utt, expected", [
    ("Ses01F_impro01_M000", ("Ses01M", 1, "M")),
    ("Ses05M_script01_1b_F003", ("Ses05F", 5, "F")),
    ("Ses03M_impro05a_M012", ("Ses03M", 3, "M")),
])
def test_speaker_comes_from_the_last_part_of_the_id(utt, expected):
    assert speaker_of(utt) == expected


def test_missing_wav_is_named_in_a_warning(tmp_path):
    root = make_tree(tmp_path / "I", drop_wav={"Ses03M_impro05a_F002"})
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        df = build_manifest(root, progress=False)
    assert "Ses03M_impro05a_F002" not in set(df.utt_id)
    assert any("Ses03M_impro05a_F002" in str(x.message) for x in w)


def test_not_an_iemocap_tree(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        build_manifest(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="Session1"):
        build_manifest(tmp_path / "empty")
