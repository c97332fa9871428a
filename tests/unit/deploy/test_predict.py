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
from mlkd_lib.data.audio import AudioError, read_audio
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
    monkeypatch.setattr(predict, "load_classifier",
                        lambda m, threads=0, raw=False: asked.append(threads) or load(m, threads, raw))
    main(["predict", "--model", str(model), str(path), "--threads", "1", "--vad-aggressiveness", "3", "--json"])
    (item,) = json.loads(capsys.readouterr().out)
    assert asked == [1] and predict.load_classifier(model, 1).session.get_session_options().intra_op_num_threads == 1
    x = read_audio(path)
    assert item["speech_s"] == pytest.approx(speech_seconds(x, 3)) and speech_seconds(x, 3) != speech_seconds(x, 0)
    from helpers.corpora import voice
    noise = 0.02 * np.random.default_rng(0).standard_normal(8_000)
    talk = np.concatenate([voice(1.3, 16_000, 140.0), noise, voice(0.9, 16_000, 220.0, seed=1)]).astype(np.float32)
    sf.write(tmp_path / "talk.wav", talk, 16_000, subtype="FLOAT")
    (default,) = predict.predict_files(predict.load_classifier(model), [tmp_path / "talk.wav"])  # 2 unless asked
    assert default.speech_s == pytest.approx(speech_seconds(talk, 2)) != speech_seconds(talk, 3)
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
    last_frame = {a: np.flatnonzero(vad_decisions(x[:int(3.5 * 16_000)], a)).max() for a in (0, 2, 3)}
    assert last_frame[0] > last_frame[2]
    png = tmp_path / "timeline.png"
    main(["predict", "--model", str(model), str(path), "--segments", "--min-pause", "0.6", "--min-turn", "0.6",
          "--padding", "0.1", "--max-seconds", "1.5", "--vad-aggressiveness", "0", "--plot", str(png), "--json"])
    segments = json.loads(capsys.readouterr().out)
    assert len(segments) == 2 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (a, m), (m2, b) = [(s["start_s"], s["end_s"]) for s in segments]
    assert a == pytest.approx(0.51 - 0.1) and b == pytest.approx((last_frame[0] + 1) * 0.03 + 0.1)
    assert m == m2 and m - a == pytest.approx(b - m, abs=2e-3) and 2.91 + 0.1 <= b <= 2.91 + HANGOVER_S + 0.1
    assert round(m, 3) == m and {s["path"] for s in segments} == {str(path)}  # times to the millisecond
    for s in segments:
        emotion, p = expected(x[int(round(s["start_s"] * 16_000)):int(round(s["end_s"] * 16_000))])
        assert s["emotion"] == emotion and [s[f"p_{e}"] for e in LABELS] == pytest.approx(p, abs=1e-3)
    # the defaults: three turns (gap kept, click kept), padded 0.05 s, none longer than the model's 8 s
    main(["predict", "--model", str(model), str(path), "--segments", "--csv"])
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    starts = [float(r["start_s"]) for r in rows]
    assert starts == pytest.approx([0.46, 1.96, 3.91])
    main(["predict", "--model", str(model), str(path), "--segments", "--vad-aggressiveness", "3", "--min-turn", "0.6",
          "--min-pause", "0.6", "--padding", "0", "--json"])
    (one,) = json.loads(capsys.readouterr().out)  # aggressiveness 3: its own, shorter hangover
    assert one["end_s"] == pytest.approx((last_frame[3] + 1) * 0.03)


def test_speech_activity_read_in_blocks_is_the_vad_of_the_whole_recording(tmp_path, monkeypatch):
    """Blocks of 0.37 s (not a whole number of 30 ms frames: the rest carried into the next block), at 16 kHz and
    at 48 kHz (resampled as a stream, which joins as one resampling of the whole): the decisions of the whole."""
    import soxr
    from helpers.corpora import voice

    from mlkd_lib.deploy import segments
    monkeypatch.setattr(segments, "BLOCK_S", 0.37)
    for rate in (16_000, 48_000):
        x = np.concatenate([voice(1.3, rate, 140.0), np.zeros(rate // 3, np.float32), voice(0.9, rate, 220.0, seed=1)])
        path = tmp_path / f"talk_{rate}.wav"
        sf.write(path, x, rate, subtype="FLOAT")
        whole = x if rate == 16_000 else soxr.resample(x, rate, 16_000, quality="VHQ")
        for aggressiveness in (1, 3):
            decisions, duration = segments.speech_activity(path, aggressiveness, progress=False)
            assert duration == pytest.approx(len(x) / rate) and decisions.dtype == bool
            assert decisions.tolist() == vad_decisions(whole[: len(whole) // 480 * 480], aggressiveness).tolist()
    assert segments.speech_activity(path)[0].tolist() == segments.speech_activity(path, 2, progress=False)[0].tolist()
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, np.float32), 16_000)
    decisions, duration = segments.speech_activity(empty, 2, progress=False)
    assert decisions.tolist() == [] and decisions.dtype == bool and duration == 0.0


def test_a_span_is_read_from_the_file_alone_at_16_khz(tmp_path):
    from mlkd_lib.data.audio import resample
    from mlkd_lib.deploy.segments import _open, read_span
    x = np.random.default_rng(0).standard_normal((44_100, 2)).astype(np.float32) * 0.1
    sf.write(tmp_path / "s.wav", x, 44_100, subtype="FLOAT")
    got = read_span(tmp_path / "s.wav", 0.25, 0.75)
    np.testing.assert_allclose(got, resample(x[11_025:33_075].mean(axis=1), 44_100), atol=1e-6)
    with pytest.raises(FileNotFoundError, match=r"^audio file not found: .*missing\.wav$"):
        _open(tmp_path / "missing.wav")
    (tmp_path / "bad.wav").write_bytes(b"RIFF junk")
    with pytest.raises(AudioError, match=r"^.*bad\.wav: not a readable audio file \("):
        _open(tmp_path / "bad.wav")


def test_segments_as_text_csv_and_json():
    from mlkd_lib.deploy.segments import Segment, format_segments
    segs = [Segment("a.wav", 0.5, 1.25, "hap", {"neu": 0.1, "hap": 0.61234, "ang": 0.2, "sad": 0.08766}, 0.61234),
            Segment("a.wav", 2.0, 3.5, "", {"neu": 0.4, "hap": 0.2, "ang": 0.2, "sad": 0.2}, 0.4)]  # uncertain
    assert format_segments(segs, LABELS, "csv") == ("path,start_s,end_s,emotion,p_neu,p_hap,p_ang,p_sad,confidence\n"
                                                    "a.wav,0.5,1.25,hap,0.1,0.6123,0.2,0.0877,0.6123\n"
                                                    "a.wav,2.0,3.5,,0.4,0.2,0.2,0.2,0.4")
    assert json.loads(format_segments(segs, LABELS, "json"))[0] == {
        "path": "a.wav", "start_s": 0.5, "end_s": 1.25, "emotion": "hap", "p_neu": 0.1, "p_hap": 0.6123,
        "p_ang": 0.2, "p_sad": 0.0877, "confidence": 0.6123}
    assert format_segments(segs, LABELS).splitlines() == [
        "   start      end  emotion      neu    hap    ang    sad",  # the emotion column fits "uncertain"
        "    0.50     1.25  hap        0.100  0.612  0.200  0.088",
        "    2.00     3.50  uncertain  0.400  0.200  0.200  0.200"]


def test_softmax_row_by_row_and_stable():
    p = predict.softmax(np.array([[1000.0, 1001.0, 1000.0], [0.0, 0.0, np.log(2.0)]]))
    e = np.exp(1.0)
    np.testing.assert_allclose(p, [[1 / (2 + e), e / (2 + e), 1 / (2 + e)], [0.25, 0.25, 0.5]], rtol=1e-12)


def test_an_onnx_model_is_refused_without_its_sidecar_or_labels_and_read_at_the_sidecars_rate(model, tmp_path):
    import shutil
    with pytest.raises(FileNotFoundError, match=r"^ONNX model not found: .*none\.onnx$"):
        predict.load_classifier(tmp_path / "none.onnx")
    bare = tmp_path / "bare.onnx"
    shutil.copy(model, bare)
    with pytest.raises(ValueError, match=r"bare\.json: not found; this sidecar, written by `mlkd export` beside "
                                         r"bare\.onnx, names the model's classes in logit order"):
        predict.load_classifier(bare)
    bare.with_suffix(".json").write_text(json.dumps({"sample_rate": 8_000}))
    with pytest.raises(ValueError, match=r"bare\.json: no labels in it; this sidecar"):
        predict.load_classifier(bare)
    bare.with_suffix(".json").write_text(json.dumps({"labels": LABELS, "sample_rate": 8_000}))
    eight = predict.load_classifier(bare)
    assert (eight.sample_rate, eight.max_seconds, eight.labels) == (8_000, None, tuple(LABELS))
    assert predict.load_classifier(model).max_seconds == 8.0 and predict.load_classifier(model).sample_rate == 16_000
    (p,) = predict.predict_files(eight, [bursts(tmp_path / "a.wav", [(0.1, 1.1)], 1.5, rate=16_000)])
    assert p.seconds == pytest.approx(1.5)  # read at the model's 8 kHz: 12 000 samples
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    junk.with_suffix(".json").write_text(json.dumps({"labels": LABELS}))
    with pytest.raises(ValueError, match=r"junk\.onnx: not a loadable ONNX model \("):
        predict.load_classifier(junk)
    with pytest.raises(ValueError, match=r"m\.txt: expected an exported \.onnx model or a study checkpoint \(\.pt\)$"):
        predict.load_classifier(tmp_path / "m.txt")
    session = predict.ort_session(model, threads=1).get_session_options()
    assert (session.intra_op_num_threads, session.inter_op_num_threads) == (1, 1)


def test_a_checkpoints_study_gives_its_longest_input(tmp_path):
    ckpt = tmp_path / "study" / "folds" / "S1" / "student_sup" / "best.pt"
    ckpt.parent.mkdir(parents=True)
    assert predict.study_max_seconds(ckpt) is None  # no study around it
    (tmp_path / "study" / "config.json").write_text(json.dumps({"max_seconds": 4.5}))
    assert predict.study_max_seconds(ckpt) == 4.5


def test_folders_are_searched_and_missing_files_kept_for_their_error(model, tmp_path):
    (tmp_path / "in" / "deep").mkdir(parents=True)
    a = bursts(tmp_path / "in" / "a.wav", [(0.1, 0.9)], 1.0)
    b = bursts(tmp_path / "in" / "deep" / "b.flac", [(0.1, 0.9)], 1.0)
    (tmp_path / "in" / "notes.txt").write_text("no audio")
    missing = tmp_path / "missing.wav"
    assert predict.expand_paths([tmp_path / "in", missing]) == [a, b, missing]
    preds = predict.predict_files(predict.load_classifier(model), [missing, tmp_path / "in" / "notes.txt"])
    assert [p.path for p in preds] == [str(missing), str(tmp_path / "in" / "notes.txt")]
    assert preds[0].error == f"audio file not found: {missing}" and preds[0].emotion is None
    assert preds[1].error.startswith(f"{tmp_path / 'in' / 'notes.txt'}: not a readable audio file")


def test_predictions_as_text_csv_and_json():
    preds = [predict.Prediction("a.wav", "hap", {"neu": 0.1, "hap": 0.61234, "ang": 0.2, "sad": 0.08766}, 2.0, 1.5,
                                confidence=0.61234),
             predict.Prediction("quiet.wav", "", {}, 3.0, 0.12),
             predict.Prediction("bad.wav", error="bad.wav: not a readable audio file (x)")]
    assert predict.format_predictions(preds, LABELS, "csv").splitlines() == [
        "path,emotion,p_neu,p_hap,p_ang,p_sad,confidence,seconds,speech_s,error",
        "a.wav,hap,0.1000,0.6123,0.2000,0.0877,0.6123,2.00,1.50,", "quiet.wav,,,,,,,3.00,0.12,",
        "bad.wav,,,,,,,,,bad.wav: not a readable audio file (x)"]
    assert json.loads(predict.format_predictions(preds, LABELS, "json")) == [
        {"path": "a.wav", "emotion": "hap", "probabilities": {"neu": 0.1, "hap": 0.61234, "ang": 0.2, "sad": 0.08766},
         "seconds": 2.0, "speech_s": 1.5, "confidence": 0.61234},
        {"path": "quiet.wav", "emotion": "", "seconds": 3.0, "speech_s": 0.12},
        {"path": "bad.wav", "error": "bad.wav: not a readable audio file (x)"}]
    assert predict.format_predictions(preds, LABELS).splitlines() == [
        "a.wav      hap  neu 0.100  hap 0.612  ang 0.200  sad 0.088",
        "quiet.wav  no speech (0.12 s of 3.00 s heard as speech: no emotion)",
        "bad.wav    ERROR bad.wav: not a readable audio file (x)"]
    csv_text = predict.format_predictions(preds, LABELS, "csv")
    assert "\r" not in csv_text and not csv_text.endswith("\n")
    short = predict.format_predictions([predict.Prediction("a", "hap", dict(zip(LABELS, (0.1, 0.7, 0.1, 0.1))))],
                                       LABELS)
    assert short == "a     hap  neu 0.100  hap 0.700  ang 0.100  sad 0.100"  # paths padded to 4 at least
    with pytest.raises(FileNotFoundError):  # a checkpoint, whatever the case of its suffix
        predict.load_classifier("/nowhere/model.PTH")
    with pytest.raises(ValueError, match=r"^output format must be text, json or csv, got 'xml'$"):
        predict.format_predictions(preds, LABELS, "xml")


def test_segment_times_to_the_millisecond_and_no_frame_from_a_frames_worth_less_a_sample(model, tmp_path):
    """A padding of 12.5 ms puts each turn's ends between milliseconds (0.51 − 0.0125 = 0.4975): they are given to
    the millisecond, no finer. A recording of 479 samples (a 30 ms frame less one) gives no VAD decision, one of
    959 gives one: nothing is added before the first block."""
    from mlkd_lib.data.vad import TurnSettings
    from mlkd_lib.deploy.segments import segment_file, speech_activity
    path = bursts(tmp_path / "meeting.wav", RECORDING[:2], 3.5)
    segments, _ = segment_file(predict.load_classifier(model), path, TurnSettings(padding_s=0.0125), progress=False)
    assert len(segments) == 2 and segments[0].start_s == pytest.approx(0.4975, abs=6e-4)
    assert all(round(t, 3) == t for s in segments for t in (s.start_s, s.end_s))
    assert all(abs(t * 1000 - round(t * 1000)) < 1e-6 for s in segments for t in (s.start_s, s.end_s))
    for n, frames in ((479, 0), (959, 1)):
        sf.write(tmp_path / "short.wav", np.full(n, 0.3, np.float32), 16_000)
        assert len(speech_activity(tmp_path / "short.wav", 2, progress=False)[0]) == frames


def test_segments_as_json_keep_the_csvs_column_order():
    from mlkd_lib.deploy.segments import Segment, format_segments
    seg = Segment("a.wav", 0.5, 1.25, "hap", {"neu": 0.1, "hap": 0.6, "ang": 0.2, "sad": 0.1}, 0.6)
    assert list(json.loads(format_segments([seg], LABELS, "json"))[0]) == [
        "path", "start_s", "end_s", "emotion", "p_neu", "p_hap", "p_ang", "p_sad", "confidence"]


def test_an_onnx_models_probabilities_are_scaled_by_its_sidecars_temperature_unless_raw(model, tmp_path):
    """softmax(z / T) with T from the sidecar's ``temperature_scaling`` (applied unless it says not, or ``raw``); an
    older sidecar without one, or one without a temperature: T = 1."""
    import shutil

    from mlkd_lib.deploy.predict import OnnxClassifier
    path = tmp_path / "scaled.onnx"
    shutil.copy(model, path)
    wave = np.linspace(-0.2, 0.6, 16_000, dtype=np.float32)
    z = np.array([0.6, 0.2, 0.2, -0.2])  # max, −min, mean, −mean
    cases = [({"temperature": 2.0, "applied": True}, False, 2.0), ({"temperature": 3.0}, False, 3.0),
             ({"temperature": 2.0, "applied": False}, False, 1.0), ({"temperature": 2.0}, True, 1.0),
             ({"applied": True}, False, 1.0), (None, False, 1.0)]
    for scaling, raw, t in cases:
        path.with_suffix(".json").write_text(json.dumps(
            {"labels": LABELS} | ({"temperature_scaling": scaling} if scaling else {})))
        loaded = predict.load_classifier(path, raw=raw)
        assert loaded.temperature == t and (raw or OnnxClassifier(path).temperature == t)
        want = np.exp(z / t) / np.exp(z / t).sum()
        np.testing.assert_allclose(loaded.probabilities(wave), want, rtol=1e-5)


def test_an_answer_at_exactly_the_confidence_asked_is_given():
    p = np.array([0.125, 0.5, 0.25, 0.125])  # exact in binary: the tie is a real one
    assert predict.answer(p, LABELS, 0.5) == ("hap", 0.5)  # at least min_confidence: answered
    assert predict.answer(p, LABELS, 0.5 + 1e-12) == ("", 0.5)
    assert predict.answer(p, LABELS, None) == ("hap", 0.5) and predict.answer(p, LABELS, 0.0) == ("hap", 0.5)
