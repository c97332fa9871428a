"""`mlkd predict` with every flag away from its default, on a tiny hand-built ONNX classifier (no torch, no
training): its logits are (max x, max −x, mean x, −mean x), so every expected class and probability is worked here
with numpy. The "no speech" rule at a ``--min-speech`` of 1 s, with speech just above and just below it: the
recordings are white-noise bursts in digital silence, which WebRTC VAD hears from the burst's first frame to a few
frames (its hangover, under 0.2 s) after its last."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
import soundfile as sf
from onnx import TensorProto, helper, save_model

from mlkd_lib.cli import main
from mlkd_lib.data.audio import read_audio
from mlkd_lib.data.vad import speech_seconds, vad_decisions
from mlkd_lib.deploy import predict

LABELS = ["neu", "hap", "ang", "sad"]
HANGOVER_S = 0.2  # the most WebRTC VAD goes on hearing speech after a burst ends (0.12 s here at aggressiveness 2)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """``tiny.onnx`` (waveform in, the four logits out) and its sidecar: labels, 16 kHz, trained on 8 s at most."""
    x = helper.make_tensor_value_info("waveform", TensorProto.FLOAT, ["batch", "samples"])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 4])
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [1])
    nodes = [helper.make_node("Neg", ["waveform"], ["neg"]),
             helper.make_node("ReduceMax", ["waveform", "axes"], ["max"], keepdims=1),
             helper.make_node("ReduceMax", ["neg", "axes"], ["max_neg"], keepdims=1),
             helper.make_node("ReduceMean", ["waveform", "axes"], ["mean"], keepdims=1),
             helper.make_node("Neg", ["mean"], ["neg_mean"]),
             helper.make_node("Concat", ["max", "max_neg", "mean", "neg_mean"], ["logits"], axis=1)]
    graph = helper.make_graph(nodes, "tiny", [x], [y], initializer=[axes])
    path = tmp_path_factory.mktemp("model") / "tiny.onnx"
    save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), path)
    path.with_suffix(".json").write_text(json.dumps({"labels": LABELS, "sample_rate": 16_000, "max_seconds": 8.0}))
    return path


def expected(x: np.ndarray) -> tuple[str, np.ndarray]:
    z = np.array([x.max(), -x.min(), x.mean(), -x.mean()], dtype=np.float64)
    p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    return LABELS[int(p.argmax())], p


def bursts(path, spans, total_s, rate=16_000, seed=0):
    """White noise (0.3 rms) at ``spans`` (s) in digital silence: 16-bit, at ``rate``."""
    x = np.zeros(int(round(total_s * rate)), np.float32)
    rng = np.random.default_rng(seed)
    for a, b in spans:
        start, end = int(round(a * rate)), int(round(b * rate))
        x[start:end] = 0.3 * rng.standard_normal(end - start)
    sf.write(path, np.clip(x, -1, 1), rate, subtype="PCM_16")
    return path


def test_no_speech_below_a_non_default_min_speech_and_an_emotion_just_above(model, tmp_path, capsys):
    """--min-speech 1: 0.75 s of speech (with the VAD's hangover at most 0.95 s) gets no emotion, 1.05 s does; at the
    default 0.3 s both would have one. At 44.1 kHz, as a recording may come."""
    below = bursts(tmp_path / "below.wav", [(0.51, 1.26)], 2.0, rate=44_100)
    above = bursts(tmp_path / "above.wav", [(0.51, 1.56)], 2.0, rate=44_100, seed=1)
    main(["predict", "--model", str(model), str(below), str(above), "--min-speech", "1.0", "--csv"])
    out = capsys.readouterr()
    rows = {r["path"]: r for r in csv.DictReader(io.StringIO(out.out))}
    low, high = rows[str(below)], rows[str(above)]
    assert 0.75 <= float(low["speech_s"]) < 0.75 + HANGOVER_S and low["emotion"] == "" and low["p_neu"] == ""
    assert float(high["speech_s"]) >= 1.05 and float(low["seconds"]) == 2.0
    emotion, p = expected(read_audio(above, 16_000, resample_to=True))
    assert high["emotion"] == emotion and [float(high[f"p_{e}"]) for e in LABELS] == pytest.approx(p, abs=1e-4)
    assert f"1 of 2 files hold less than 1 s of speech (no emotion given): {below}" in out.err
    main(["predict", "--model", str(model), str(below), str(above), "--csv"])  # the default 0.3 s: both classified
    assert all(r["emotion"] for r in csv.DictReader(io.StringIO(capsys.readouterr().out)))


def test_the_rule_is_at_least_min_speech(model, tmp_path, monkeypatch):
    """Exactly ``min_speech_s`` of speech is enough; a frame less is not (the VAD's count given, as measured)."""
    path = bursts(tmp_path / "a.wav", [(0.3, 1.2)], 1.5)
    monkeypatch.setattr(predict, "speech_seconds", lambda x, aggressiveness: 0.9)
    classifier = predict.load_classifier(model)
    assert predict.predict_files(classifier, [path], min_speech_s=0.9)[0].emotion != ""
    assert predict.predict_files(classifier, [path], min_speech_s=0.93)[0].no_speech
    short = tmp_path / "short.wav"  # speech enough, but shorter than the encoder's receptive field
    sf.write(short, np.full(399, 0.3, np.float32), 16_000)
    assert predict.predict_files(classifier, [short], min_speech_s=0.0)[0].no_speech
    sf.write(short, np.full(400, 0.3, np.float32), 16_000)
    assert predict.predict_files(classifier, [short], min_speech_s=0.0)[0].emotion == "neu"


def test_threads_aggressiveness_and_json_reach_the_model_and_the_vad(model, tmp_path, capsys, monkeypatch):
    path = bursts(tmp_path / "a.wav", [(0.51, 1.26)], 2.0)
    asked = []
    load = predict.load_classifier
    monkeypatch.setattr(predict, "load_classifier", lambda m, threads=0: asked.append(threads) or load(m, threads))
    main(["predict", "--model", str(model), str(path), "--threads", "1", "--vad-aggressiveness", "0", "--json"])
    (item,) = json.loads(capsys.readouterr().out)
    assert asked == [1] and predict.load_classifier(model, 1).session.get_session_options().intra_op_num_threads == 1
    x = read_audio(path)
    assert item["speech_s"] == pytest.approx(speech_seconds(x, 0)) and speech_seconds(x, 0) != speech_seconds(x, 2)
    assert item["emotion"] == expected(x)[0] and item["seconds"] == 2.0
    assert list(item["probabilities"].values()) == pytest.approx(expected(x)[1])


# a recording of three bursts: 0.9 s, a 0.6 s gap (the VAD hears about 0.48 s of it), 0.9 s, then a 0.3 s click
RECORDING = [(0.51, 1.41), (2.01, 2.91), (3.96, 4.26)]


def test_segments_with_every_turn_setting_changed(model, tmp_path, capsys):
    """--min-pause 0.6 bridges the gap, --min-turn 0.6 drops the click, --padding 0.1 widens the turn, which
    --max-seconds 1.5 cuts into two equal windows; --plot draws it; --vad-aggressiveness 0 hears the second burst
    end later than the default 2 (a longer hangover): the turn ends 0.1 s after the VAD's last speech frame."""
    path = bursts(tmp_path / "meeting.wav", RECORDING, 5.01)
    x = read_audio(path)
    last_frame = {a: np.flatnonzero(vad_decisions(x[:int(3.5 * 16_000)], a)).max() for a in (0, 2)}
    assert last_frame[0] > last_frame[2]
    png = tmp_path / "timeline.png"
    main(["predict", "--model", str(model), str(path), "--segments", "--min-pause", "0.6", "--min-turn", "0.6",
          "--padding", "0.1", "--max-seconds", "1.5", "--vad-aggressiveness", "0", "--plot", str(png), "--json"])
    segments = json.loads(capsys.readouterr().out)
    assert len(segments) == 2 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (a, m), (m2, b) = [(s["start_s"], s["end_s"]) for s in segments]
    assert a == pytest.approx(0.51 - 0.1) and b == pytest.approx((last_frame[0] + 1) * 0.03 + 0.1)
    assert m == m2 and m - a == pytest.approx(b - m, abs=2e-3) and 2.91 + 0.1 <= b <= 2.91 + HANGOVER_S + 0.1
    for s in segments:
        emotion, p = expected(x[int(round(s["start_s"] * 16_000)):int(round(s["end_s"] * 16_000))])
        assert s["emotion"] == emotion and [s[f"p_{e}"] for e in LABELS] == pytest.approx(p, abs=1e-3)
    # the defaults: three turns (gap kept, click kept), padded 0.05 s, none longer than the model's 8 s
    main(["predict", "--model", str(model), str(path), "--segments", "--csv"])
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    starts = [float(r["start_s"]) for r in rows]
    assert starts == pytest.approx([0.46, 1.96, 3.91])
