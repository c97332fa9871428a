"""Every command's likely mistakes: one line naming the bad value, exit status 2, no traceback, and
nothing half-written."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from mlkd_lib.cli import main


def _files(tmp_path):
    speech = tmp_path / "speech.wav"
    sf.write(speech, (0.1 * np.sin(np.arange(16_000) / 10)).astype(np.float32), 16_000)
    (tmp_path / "junk.wav").write_bytes(b"RIFF but not really")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    (tmp_path / "junk.onnx").write_bytes(b"not an onnx graph")
    (tmp_path / "corpus.csv").write_text("path,emotion,speaker\nspeech.wav,ang,s1\nmissing.wav,sad,s2\n")
    return speech


CASES = [  # (arguments, what the message must name); T is the test's folder
    (["study", "--preset", "micro", "--out", "T/s", "--set", "snrs=abc"], "snrs"),
    (["study", "--preset", "micro", "--out", "T/s", "--set", "nosuchkey=1"], "nosuchkey"),
    (["study", "--preset", "micro", "--out", "T/s", "--set", "student_epochs=0"], "student_epochs"),
    (["study", "--preset", "micro", "--out", "T/s", "--jobs", "0"], "--jobs"),
    (["study", "--preset", "micro", "--out", "T/s", "--folds", "Ses09X"], "Ses09X"),
    (["study", "--preset", "micro", "--out", "T/s", "--set", "corpus=manifest", "--set", "manifest=T/corpus.csv"],
     "missing.wav"),  # refused before anything trains, the file and its line named
    (["study", "--preset", "micro", "--out", "T/s", "--set", "emotions=neu,xyz"], "emotions"),
    (["study", "--config", "T/nosetup.yaml", "--out", "T/s"], "nosetup.yaml"),
    (["ablate", "--study", "T/nostudy", "--out", "T/a", "--set", "beta=0"], "nostudy"),
    (["ablate", "--study", "T/nostudy", "--out", "T/a", "--set", "teacher_epochs=3"], "teacher_epochs"),
    (["data", "synth", "--out", "T/corpus", "--per-class", "0"], "--per-class"),
    (["data", "noise", "--out", "T/noise", "--noisex", "T/nonoisex"], "nonoisex"),
    (["data", "iemocap", "--root", "T/noiemocap", "--out", "T/m.csv"], "noiemocap"),
    (["data", "cremad", "--root", "T/nocremad", "--out", "T/m.csv"], "nocremad"),
    (["mix", "--speech", "T/missing.wav", "--noise", "T/speech.wav", "--snr", "5", "--out", "T/o.wav"], "missing.wav"),
    (["mix", "--speech", "T/speech.wav", "--noise", "T/junk.wav", "--snr", "5", "--out", "T/o.wav"], "junk.wav"),
    (["mix", "--speech", "T/speech.wav", "--noise", "T/speech.wav", "--snr", "nan", "--out", "T/o.wav"], "nan"),
    (["model-info", "--model", "T/nomodel"], "nomodel"),
    (["model-info", "--model", "tiny", "--student-layers", "5"], "5"),
    (["bench", "--n", "0"], "--n"),
    (["bench", "--model", "T/nomodel", "--no-onnx"], "nomodel"),
    (["pretrain", "--out", "T/enc", "--steps", "0"], "--steps"),
    (["pretrain", "--out", "T/enc", "--batch-size", "-2"], "--batch-size"),
    (["export", "--study", "T/nostudy", "--fold", "Ses01F", "--out", "T/m.onnx"], "nostudy"),
    (["export", "--study", "T/nostudy", "--fold", "Ses01F", "--model", "nomodel", "--out", "T/m.onnx"], "nomodel"),
    (["predict", "--model", "T/junk.pt", "T/speech.wav"], "junk.pt"),
    (["predict", "--model", "T/junk.onnx", "T/speech.wav"], "junk.onnx"),
    (["predict", "--model", "T/missing.onnx", "T/speech.wav"], "missing.onnx"),
    (["predict", "--model", "T/junk.pt", "T/speech.wav", "--threads", "-1"], "--threads"),
    (["listen", "--study", "T/nostudy"], "nostudy"),
    (["listen", "--port", "0"], "--port"),
]


@pytest.mark.parametrize("args, named", CASES, ids=[" ".join(a[:2]) + f" [{n}]" for a, n in CASES])
def test_bad_input_is_one_line_and_exit_2_and_writes_nothing(args, named, tmp_path, capsys, monkeypatch):
    _files(tmp_path)
    monkeypatch.setenv("MLKD_ROOT", str(tmp_path))  # relative paths of a study land here, if anywhere
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(SystemExit) as exit_:
        main([a.replace("T/", f"{tmp_path}/") for a in args])
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 2
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert named in err and err.startswith("mlkd"), err
    assert sorted(tmp_path.rglob("*")) == before  # no study folder, no partial output
