"""The model in its users' hands, from a real (micro) study: the Hugging Face folder gives what `mlkd
predict` gives, and `mlkd predict --segments` finds each utterance of a long recording."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from mlkd_lib.names import EMOTIONS

pytestmark = pytest.mark.slow


def _mlkd(*args) -> str:
    run = subprocess.run([sys.executable, "-m", "mlkd_lib", *map(str, args)], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    return run.stdout


def test_the_hf_folder_in_a_pipeline_agrees_with_mlkd_predict(micro_study, tmp_path, monkeypatch):
    """The study's temperature-scaled probabilities, three ways: `mlkd predict` on the checkpoint and on the ONNX
    export, and the Hugging Face pipeline, within 1e-4 of each other; the temperature is the checkpoint's. The ONNX
    export and `--min-confidence` as docs/calibration.md shows them, run as written (the study and the recordings
    where it names them)."""
    import shutil

    import torch
    from helpers.docs import block, finished, of, run_block
    from transformers import pipeline

    from mlkd_lib.config import load_config
    from mlkd_lib.data.manifest import read_manifest
    from mlkd_lib.deploy.predict import load_classifier, predict_files
    study, _, _ = micro_study
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    ckpt = study / "folds/Ses01F/student_sup/best.pt"
    test = read_manifest(load_config(study / "config.json").manifest_path).query("speaker == 'Ses01F'")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "demo").symlink_to(study, target_is_directory=True)
    (tmp_path / "my_recordings").mkdir()
    for path in test.path.iloc[:4]:
        shutil.copy(path, tmp_path / "my_recordings")
    ran = finished(run_block(block("docs/calibration.md", "## Calibrated answers for users"), tmp_path, {}))
    rows = pd.read_csv(io.StringIO(of(ran, "--min-confidence 0.6").out), keep_default_na=False)
    assert len(rows) == 4 and ((rows.emotion == "") == (rows.confidence < 0.6)).all()
    _mlkd("export", "--study", study, "--fold", "Ses01F", "--model", "student_sup", "--format", "hf",
          "--out", tmp_path / "hf")
    fitted = torch.load(ckpt, weights_only=True)["temperature_scaling"]
    assert json.loads((tmp_path / "student.json").read_text())["temperature_scaling"] == {**fitted, "applied": True}
    assert json.loads((tmp_path / "hf" / "config.json").read_text())["temperature_scaling"]["temperature"] == \
        fitted["temperature"]
    wav = test.path.iloc[0]
    ours = json.loads(_mlkd("predict", "--model", ckpt, wav, "--json"))[0]["probabilities"]
    onnx, raw = (predict_files(load_classifier(path, raw=raw), [wav])[0].probabilities
                 for path, raw in ((tmp_path / "student.onnx", False), (ckpt, True)))
    x, rate = sf.read(wav, dtype="float32")
    theirs = {r["label"]: r["score"] for r in pipeline("audio-classification", model=str(tmp_path / "hf"))(
        {"raw": x, "sampling_rate": rate}, top_k=4)}
    assert set(theirs) == set(ours) == set(onnx)
    for label, p in ours.items():
        assert theirs[label] == pytest.approx(p, abs=1e-4) and onnx[label] == pytest.approx(p, abs=1e-4)
    z = np.log([raw[e] for e in ours])  # the model's own probabilities, rescaled by the test: softmax(ln p / T)
    scaled = np.exp(z / fitted["temperature"]) / np.exp(z / fitted["temperature"]).sum()
    np.testing.assert_allclose([ours[e] for e in ours], scaled, atol=1e-6)


def test_segments_of_a_long_recording_are_its_utterances(micro_study, tmp_path):
    """A dozen utterances with pauses and faint noise, three of them run together into one turn longer
    than max_seconds: each found as its own segment, boundaries within 0.25 s, no segment longer than
    max_seconds, and each segment given the probabilities of the utterance alone (within 0.03; the same
    label where the utterance alone is not a near tie, as a one-epoch micro student often is)."""
    from mlkd_lib.config import load_config
    from mlkd_lib.data.manifest import read_manifest
    study, _, _ = micro_study
    _mlkd("export", "--study", study, "--fold", "Ses01F", "--model", "student_sup", "--out", tmp_path / "s.onnx")
    test = read_manifest(load_config(study / "config.json").manifest_path).query("speaker == 'Ses01F'")
    utts = [sf.read(p, dtype="float32")[0] for p in test.path.iloc[:12]]
    rng = np.random.default_rng(0)
    pieces, truth, t, alone = [], [], 0.0, []
    for i, u in enumerate(utts):
        pause = 0.0 if i in (6, 7) else 1.0  # utterances 5, 6 and 7 run together: one long turn
        pieces += [np.zeros(int(pause * 16_000), np.float32), u]
        t += pause
        truth.append((t, t + len(u) / 16_000))
        t += len(u) / 16_000
    pieces.append(np.zeros(16_000, np.float32))
    x = np.concatenate(pieces)
    x = x + 1e-4 * rng.standard_normal(len(x)).astype(np.float32)  # faint noise in the pauses
    sf.write(tmp_path / "long.wav", x, 16_000)
    max_s = 2.5
    out = _mlkd("predict", "--model", tmp_path / "s.onnx", "--segments", tmp_path / "long.wav", "--csv",
                "--max-seconds", max_s, "--plot", tmp_path / "timeline.png")
    segs = pd.read_csv(io.StringIO(out))
    assert list(segs.columns[:4]) == ["path", "start_s", "end_s", "emotion"]
    assert (segs.end_s - segs.start_s <= max_s + 1e-6).all() and (tmp_path / "timeline.png").is_file()
    long_turn = (truth[5][0], truth[7][1])
    single = [(a, b) for i, (a, b) in enumerate(truth) if i not in (5, 6, 7)]
    in_long = segs[(segs.start_s >= long_turn[0] - 0.25) & (segs.end_s <= long_turn[1] + 0.25)]
    assert long_turn[1] - long_turn[0] > max_s  # the run-together utterances: longer than the model takes
    assert len(in_long) >= int(np.ceil((long_turn[1] - long_turn[0]) / max_s))  # cut into windows, all kept
    assert abs(in_long.start_s.min() - long_turn[0]) < 0.25 and abs(in_long.end_s.max() - long_turn[1]) < 0.25
    gaps = in_long.start_s.to_numpy()[1:] - in_long.end_s.to_numpy()[:-1]
    assert (gaps < 0.6).all()  # nothing of the long turn is lost between its windows
    others = segs.drop(in_long.index)
    assert len(others) == len(single)  # every other utterance is one segment of its own
    alone = pd.read_csv(io.StringIO(_mlkd("predict", "--model", tmp_path / "s.onnx", "--csv",
                                          *test.path.iloc[:12])))
    for (a, b), (_, seg), i in zip(single, others.iterrows(), [i for i in range(12) if i not in (5, 6, 7)]):
        assert abs(seg.start_s - a) < 0.25 and abs(seg.end_s - b) < 0.25
        probs = np.array([seg[f"p_{e}"] for e in EMOTIONS]), alone.loc[i, [f"p_{e}"for e in EMOTIONS]].to_numpy(float)
        np.testing.assert_allclose(*probs, atol=0.03)  # a little padding around it changes little
        top = np.sort(probs[1])
        if top[-1] - top[-2] > 0.06:  # the micro model is weak: where the utterance alone is a near tie, skip
            assert seg.emotion == alone.emotion.iloc[i]
