"""Deploying the student: ONNX export equals PyTorch, int8 keeps the predictions, `mlkd predict`
handles real folders (bad files included) without importing torch, the bench and Table 3 rows."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from helpers.corpora import voice
from transformers import Wav2Vec2Config

from mlkd_lib.data.audio import read_audio
from mlkd_lib.data.conditions.families import Condition, heard
from mlkd_lib.deploy.export import export_model, export_onnx, quantize_int8
from mlkd_lib.deploy.predict import ort_session
from mlkd_lib.layout import StudyLayout
from mlkd_lib.method.checkpoint import save_best
from mlkd_lib.method.models import EMOTIONS, MICRO, EmotionClassifier, build_student, build_teacher

LENGTHS = (400, 5_001, 16_000, 37_777)  # the CNN's minimum, and lengths off its strides


@pytest.fixture
def one_thread():
    """Fixed threads: int8 kernels and the probe fit then give the same numbers on every run."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.mark.parametrize("norm", ["layer", "group"])  # the demo's encoder / wav2vec2-base's
def test_onnx_logits_equal_torch_on_different_lengths(tmp_path, norm):
    torch.manual_seed(0)
    model = EmotionClassifier(Wav2Vec2Config(**dict(MICRO, feat_extract_norm=norm))).eval()
    path = tmp_path / "m.onnx"
    export_onnx(model, path)
    sess, rng = ort_session(path), np.random.default_rng(1)
    for n in LENGTHS:
        x = (0.3 * rng.standard_normal(n) + 0.05).astype(np.float32)  # an offset: normalisation is in the graph
        with torch.no_grad():
            ref = model(torch.from_numpy(x)[None]).logits.numpy()
        got = sess.run(None, {"waveform": x[None]})[0]
        assert got.shape == (1, len(EMOTIONS))
        np.testing.assert_allclose(got, ref, atol=1e-4, rtol=0)
    # a batch of equal-length utterances gives each one's own logits
    xs = (0.1 * rng.standard_normal((2, 9_000))).astype(np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(xs)).logits.numpy()
    np.testing.assert_allclose(sess.run(None, {"waveform": xs})[0], ref, atol=1e-4, rtol=0)


@pytest.fixture(scope="module")
def probe_student(micro_data):
    """A student with the demo's architecture (tiny, 2 layers, random encoder) whose head is fitted to
    the micro corpus' emotions: a classifier with varied, trained decisions, in seconds."""
    cfg, manifest, bank = micro_data
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    student = build_student(build_teacher("tiny"), 2).eval()
    waves = [read_audio(p) for p in manifest.path]
    with torch.no_grad():
        feats = torch.stack([student.encoder(torch.from_numpy((w - w.mean()) / np.sqrt(w.var() + 1e-7))[None])
                             .last_hidden_state.mean(1)[0] for w in waves])
    labels = torch.tensor([EMOTIONS.index(e) for e in manifest.emotion])
    opt = torch.optim.LBFGS(student.head.parameters(), max_iter=200)

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(student.head(feats), labels) + 0.1 * student.head.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    torch.set_num_threads(old)
    return student, manifest, bank, waves


def test_int8_predictions_agree_with_fp32(tmp_path, probe_student, one_thread):
    student, manifest, bank, waves = probe_student
    fp32, int8 = tmp_path / "s.onnx", tmp_path / "s_int8.onnx"
    export_onnx(student, fp32)
    cal = manifest.index[manifest.session >= 4][::2]  # calibration: clean and noisy training-like speech
    babble = Condition("babble", 5.0)
    calibration = [waves[i] for i in cal] + [heard(waves[i], manifest.utt_id[i], babble, bank, None, 0) for i in cal]
    quantize_int8(fp32, int8, "conv+matmul", calibration)
    tests = list(waves) + [heard(w, u, Condition("factory", snr), bank, None, 0)
                           for snr in (0.0, 10.0) for w, u in zip(waves, manifest.utt_id)]
    a, b = ort_session(fp32, 1), ort_session(int8, 1)
    pa = np.array([a.run(None, {"waveform": x[None]})[0][0].argmax() for x in tests])
    pb = np.array([b.run(None, {"waveform": x[None]})[0][0].argmax() for x in tests])
    counts = np.bincount(pa, minlength=4) / len(pa)
    assert (counts >= 0.1).sum() >= 3, f"the probe's predictions are not varied enough to test: {counts}"
    assert (pa == pb).mean() >= 0.95, f"int8 agrees with fp32 on {(pa == pb).mean():.1%} of {len(pa)} utterances"


@pytest.mark.parametrize("family", ["hubert", "wavlm"])
def test_a_student_of_another_family_exports_with_its_labels_and_matches_torch(tmp_path, family):
    from transformers import HubertConfig, WavLMConfig

    from mlkd_lib.deploy.predict import OnnxClassifier
    small = dict(MICRO, feat_extract_norm="group", mask_time_prob=0.05)
    config = HubertConfig(**small) if family == "hubert" else WavLMConfig(**small, num_buckets=32,
                                                                         max_bucket_distance=64)
    labels = ("ang", "neu", "sad", "hap", "fea", "dis")
    torch.manual_seed(0)
    teacher = EmotionClassifier(config, labels)
    with torch.no_grad():
        teacher.head.weight.normal_(0, 2.0)
    student = build_student(teacher, 2).eval()
    meta = export_model(student, tmp_path / "s.onnx")
    assert meta["labels"] == list(labels) and meta["encoder"] == family
    assert meta["max_logit_diff_vs_torch"] <= 1e-4
    onnx = OnnxClassifier(tmp_path / "s.onnx")
    assert onnx.labels == labels
    rng = np.random.default_rng(2)
    for n in LENGTHS:
        x = (0.3 * rng.standard_normal(n)).astype(np.float32)
        with torch.no_grad():
            ref = student(torch.from_numpy(x)[None]).logits[0].numpy()
        np.testing.assert_allclose(onnx.logits(x), ref, atol=1e-4, rtol=0)
    from mlkd_lib.deploy.predict import TorchClassifier
    save_best(student, tmp_path / "best.pt", "student_sup", 1, 0.5)
    assert TorchClassifier(tmp_path / "best.pt").labels == labels  # the checkpoint's classes, in its order
    tmp_path.joinpath("s.json").unlink()  # without its sidecar the classes are unknown: refused, not guessed
    with pytest.raises(ValueError, match=r"s\.json: not found.*classes"):
        OnnxClassifier(tmp_path / "s.onnx")


def test_int8_scheme_needs_calibration_audio(tmp_path):
    model = build_student(build_teacher("micro"), 2)
    export_onnx(model, tmp_path / "m.onnx")
    with pytest.raises(ValueError, match="calibration"):
        quantize_int8(tmp_path / "m.onnx", tmp_path / "q.onnx", "conv+matmul", None)
    with pytest.raises(ValueError, match="scheme"):
        quantize_int8(tmp_path / "m.onnx", tmp_path / "q.onnx", "everything")


def _study(tmp_path, micro_data) -> tuple[Path, EmotionClassifier]:
    """A study folder as `mlkd study` leaves it, with one fold's (untrained) MLKD student."""
    cfg, manifest, bank = micro_data
    study = tmp_path / "study"
    cfg.save(study / "config.json")
    (study / "run.json").write_text(json.dumps({"git_commit": "abc123"}))
    torch.manual_seed(0)
    model = build_student(build_teacher("micro"), 2)
    fold = StudyLayout(study).fold("Ses01F").model("student_sup")
    fold.path.mkdir(parents=True)
    # a checkpoint of the first format (config object, weights under "wav2vec2.", no labels): still exported
    old_keys = {("wav2vec2." + k[len("encoder."):] if k.startswith("encoder.") else k): v
                for k, v in model.state_dict().items()}
    torch.save({"model": old_keys, "wav2vec2_config": model.config, "role": "student_sup", "num_labels": 4},
               fold.best_ckpt)
    return study, model


def test_export_from_study_writes_model_and_sidecar(tmp_path, micro_data):
    from mlkd_lib.cli import main
    study, _ = _study(tmp_path, micro_data)
    out = tmp_path / "deploy" / "student_int8.onnx"
    main(["export", "--study", str(study), "--fold", "Ses01F", "--out", str(out), "--int8", "--calibration", "4"])
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["labels"] == list(EMOTIONS) and meta["sample_rate"] == 16_000
    assert meta["fold"] == "Ses01F" and meta["role"] == "student_sup" and meta["study_git_commit"] == "abc123"
    assert meta["precision"] == "int8" and meta["calibration_utterances"] == 8  # 4 utterances, clean + noisy
    assert meta["fp32_max_logit_diff_vs_torch"] <= 1e-4
    assert meta["size_mib"] == pytest.approx(out.stat().st_size / 2**20, abs=1e-3)
    with pytest.raises(SystemExit) as ex:  # a fold the study does not have: one clear line, exit status 2
        main(["export", "--study", str(study), "--fold", "Ses09X", "--out", str(tmp_path / "x.onnx")])
    assert ex.value.code == 2


def _audio_folder(root: Path) -> Path:
    """Speech-like recordings at 16, 44.1 (stereo) and 8 kHz, a corrupt file and a text file."""
    root.mkdir()
    sf.write(root / "a_mono_16k.wav", voice(1.5, 16_000, 150.0), 16_000)
    sf.write(root / "b_stereo_44k.flac", voice(2.0, 44_100, 210.0, channels=2, seed=1), 44_100)
    (root / "c_corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    (root / "sub").mkdir()
    sf.write(root / "sub" / "d_8k.wav", voice(1.0, 8_000, 120.0, seed=2), 8_000)
    (root / "notes.txt").write_text("not audio, not listed")
    return root


def test_no_speech_no_emotion(tmp_path, micro_data, capsys):
    """Digital silence, 50 ms of zeros and faint noise get no class, only how much speech the VAD heard; speech
    still gets one, in the text, CSV and JSON outputs alike, and the exit status stays 0."""
    from mlkd_lib.cli import main
    from mlkd_lib.deploy.predict import load_classifier, predict_files
    _, model = _study(tmp_path, micro_data)
    onnx_path = tmp_path / "student.onnx"
    export_model(model, onnx_path)
    folder = tmp_path / "quiet"
    folder.mkdir()
    sf.write(folder / "silence.wav", np.zeros(32_000, np.float32), 16_000)
    sf.write(folder / "zeros_50ms.wav", np.zeros(800, np.float32), 16_000)
    noise = 0.001 * np.random.default_rng(0).standard_normal(3 * 48_000)  # -60 dBFS, at 48 kHz
    sf.write(folder / "faint_noise.wav", noise.astype(np.float32), 48_000)
    sf.write(folder / "speech.wav", voice(2.0, 16_000, 160.0), 16_000)
    preds = {Path(p.path).name: p for p in predict_files(load_classifier(onnx_path), [folder])}
    for name in ("silence.wav", "zeros_50ms.wav", "faint_noise.wav"):
        assert preds[name].emotion == "" and preds[name].probabilities == {} and preds[name].speech_s < 0.3, name
    assert preds["speech.wav"].emotion in EMOTIONS and preds["speech.wav"].speech_s > 1.0
    assert preds["faint_noise.wav"].seconds == pytest.approx(3.0)

    main(["predict", "--model", str(onnx_path), str(folder), "--csv"])  # exit 0: no speech is an answer
    out = capsys.readouterr()
    rows = {Path(r["path"]).name: r for r in __import__("csv").DictReader(out.out.splitlines())}
    assert rows["silence.wav"]["emotion"] == "" and rows["silence.wav"]["p_neu"] == ""
    assert rows["silence.wav"]["speech_s"] == "0.00" and rows["speech.wav"]["emotion"] in EMOTIONS
    assert "3 of 4 files hold less than 0.3 s of speech" in out.err
    main(["predict", "--model", str(onnx_path), str(folder / "zeros_50ms.wav"), "--json"])
    (item,) = json.loads(capsys.readouterr().out)
    assert item["emotion"] == "" and item["speech_s"] == 0.0 and "probabilities" not in item
    main(["predict", "--model", str(onnx_path), str(folder / "silence.wav")])
    assert "no speech (0.00 s of 2.00 s heard as speech: no emotion)" in capsys.readouterr().out


def test_predict_folder_with_a_corrupt_file_without_torch(tmp_path, micro_data):
    study, model = _study(tmp_path, micro_data)
    onnx_path = tmp_path / "student.onnx"
    export_model(model, onnx_path)
    folder = _audio_folder(tmp_path / "audio")
    script = (
        "import sys, json\n"
        "from mlkd_lib.cli import main\n"
        "try:\n"
        f"    main(['predict', '--model', {str(onnx_path)!r}, {str(folder)!r}, '--json'])\n"
        "    code = 0\n"
        "except SystemExit as e:\n"
        "    code = e.code\n"
        "print(json.dumps({'code': code, 'torch': sorted(m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'torchaudio', 'transformers'))}), file=sys.stderr)\n")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[2])
    status = json.loads(run.stderr.strip().splitlines()[-1])
    assert status["torch"] == [], f"mlkd predict on ONNX imported {status['torch'][:5]}"
    assert status["code"] == 1  # some files failed: said in the exit status ...
    assert "c_corrupt.wav" in run.stderr
    preds = {Path(p["path"]).name: p for p in json.loads(run.stdout)}
    assert sorted(preds) == ["a_mono_16k.wav", "b_stereo_44k.flac", "c_corrupt.wav", "d_8k.wav"]
    assert "c_corrupt.wav" in preds["c_corrupt.wav"]["error"] and "probabilities" not in preds["c_corrupt.wav"]
    for name in ("a_mono_16k.wav", "b_stereo_44k.flac", "d_8k.wav"):  # ... and the others are predicted
        p = preds[name]
        assert sum(p["probabilities"].values()) == pytest.approx(1.0)
        assert p["emotion"] == max(p["probabilities"], key=p["probabilities"].get)
    assert preds["b_stereo_44k.flac"]["seconds"] == pytest.approx(2.0)
    # the probabilities are the PyTorch model's on the same audio
    x = read_audio(folder / "a_mono_16k.wav")
    with torch.no_grad():
        ref = torch.softmax(model.eval()(torch.from_numpy(x)[None]).logits, -1)[0].numpy()
    np.testing.assert_allclose([preds["a_mono_16k.wav"]["probabilities"][e] for e in EMOTIONS], ref, atol=1e-5)


def test_predict_text_and_csv_and_checkpoint(tmp_path, micro_data, capsys):
    from mlkd_lib.cli import main
    from mlkd_lib.deploy.predict import format_predictions, load_classifier, predict_files
    study, model = _study(tmp_path, micro_data)
    onnx_path = tmp_path / "student.onnx"
    export_model(model, onnx_path)
    folder = _audio_folder(tmp_path / "audio")
    by_onnx = predict_files(load_classifier(onnx_path), [folder / "a_mono_16k.wav", folder / "b_stereo_44k.flac"])
    by_ckpt = predict_files(load_classifier(StudyLayout(study).fold("Ses01F").model("student_sup").best_ckpt),
                            [folder / "a_mono_16k.wav", folder / "b_stereo_44k.flac"])
    for a, b in zip(by_onnx, by_ckpt):
        assert a.emotion == b.emotion
        np.testing.assert_allclose(list(a.probabilities.values()), list(b.probabilities.values()), atol=1e-5)
    rows = format_predictions(by_onnx, EMOTIONS, "csv").splitlines()
    assert rows[0] == "path,emotion,p_neu,p_hap,p_ang,p_sad,confidence,seconds,speech_s,error" and len(rows) == 3
    with pytest.raises(SystemExit) as ex:
        main(["predict", "--model", str(onnx_path), str(folder / "a_mono_16k.wav"), str(tmp_path / "missing.wav")])
    assert ex.value.code == 1
    out = capsys.readouterr()
    lines = out.out.splitlines()
    assert lines[0].split()[1] == by_onnx[0].emotion and "missing.wav" in lines[1] and "not found" in lines[1]
    assert "1 of 2 files could not be classified" in out.err


def test_table3_scores_against_the_models_own_label_order(tmp_path, micro_data):
    """A study whose classes are in another order than the paper's: the deployed student's true labels are
    indices into its own classes, so the three versions are scored in the model's logit order."""
    import dataclasses

    from mlkd_lib.deploy.table3 import score_fold
    cfg, _, _ = micro_data
    order = ("sad", "ang", "hap", "neu")
    cfg = dataclasses.replace(cfg, emotions=list(order))
    study = tmp_path / "study"
    cfg.save(study / "config.json")
    torch.manual_seed(0)
    student = build_student(build_teacher("micro", order), 2)
    fold = StudyLayout(study).fold("Ses01F").model("student_sup")
    fold.path.mkdir(parents=True)
    save_best(student, fold.best_ckpt, "student_sup", 1, 0.5)
    pred = score_fold(study, cfg, "Ses01F", progress=False)
    test = pred[pred.version == "torch"].drop_duplicates("utt_id")
    emotion = test.utt_id.map(micro_data[1].set_index("utt_id").emotion)
    assert list(test.label) == [order.index(e) for e in emotion]
    assert set(pred.version) == {"torch", "onnx_fp32", "onnx_int8"}


def test_bench_reports_deployed_rows_and_table3():
    from mlkd_lib.analysis.tables import table3
    from mlkd_lib.deploy.bench import bench
    res = bench("micro", n=2, seconds=1.0, threads=1, distill_steps=0, rounds=1)
    for k in ("teacher_torch_s", "student_torch_s", "student_onnx_s", "student_onnx_int8_s"):
        assert res[k] > 0, k
    assert res["student_onnx_int8_vs_teacher"] == pytest.approx(res["student_onnx_int8_s"] / res["teacher_torch_s"])
    assert res["student_onnx_mib"] > 0 and res["student_onnx_int8_mib"] > 0
    t3 = table3(res)
    row = t3.set_index("model").loc["Student ONNX int8 / teacher"]
    assert row.time_s == pytest.approx(res["student_onnx_int8_vs_teacher"], abs=1e-3)


def test_deployed_summary_and_table3_rows():
    import pandas as pd

    from mlkd_lib.analysis.tables import table3
    from mlkd_lib.deploy.table3 import summarise_deployed
    rows = []
    for fold, labels, preds in (("A", [0, 1, 2, 3], {"torch": [0, 1, 2, 3], "onnx_fp32": [0, 1, 2, 3],
                                                      "onnx_int8": [0, 1, 2, 0]}),
                                ("B", [0, 0, 1, 1], {"torch": [0, 0, 1, 0], "onnx_fp32": [0, 0, 1, 0],
                                                     "onnx_int8": [0, 0, 1, 0]})):
        for version, pred in preds.items():
            rows += [dict(utt_id=f"{fold}{i}", noise="clean", snr_db=None, label=y, pred=p, version=version, fold=fold)
                     for i, (y, p) in enumerate(zip(labels, pred))]
    summary = summarise_deployed(pd.DataFrame(rows)).set_index("version")
    # UA per fold then mean: torch A = 100 %, B = (100 + 50) / 2 = 75 %; int8 A = 75 % (class 3 missed)
    assert summary.loc["torch", "UA clean"] == pytest.approx(87.5)
    assert summary.loc["onnx_int8", "UA clean"] == pytest.approx((75 + 75) / 2)
    assert summary.loc["onnx_int8", "agrees with torch %"] == pytest.approx(100 * 7 / 8)
    bench = dict(teacher_mib=10.0, student_mib=5.0, teacher_s=2.0, student_s=1.5, ratio=0.75, utterances=4,
                 student_onnx_mib=5.0, student_onnx_s=1.0, student_onnx_vs_teacher=0.5,
                 student_onnx_int8_mib=1.5, student_onnx_int8_s=0.6, student_onnx_int8_vs_teacher=0.3)
    t3 = table3(bench, paper=True, deployed=summary.reset_index()).set_index("model")
    assert t3.loc["Student ONNX int8", "UA clean"] == pytest.approx(75.0)
    assert t3.loc["Student ONNX int8 / teacher", "param_mib"] == pytest.approx(0.15)
    assert t3.loc["Student ONNX int8 / teacher", "time_s"] == pytest.approx(0.3)
    assert np.isnan(t3.loc["Teacher", "UA clean"]) and t3.loc["Teacher", "param_mib (paper)"] == 360.17


def _two_confidences(tmp_path, micro_data, confidences, temperature):
    """The study's MLKD student with a head that gives the first of two recordings a top probability (class neu) of
    ``confidences[0]`` and the second of ``confidences[1]`` once its logits are divided by ``temperature`` (its
    fitted temperature), saved as a study checkpoint; the two recordings."""
    _, model = _study(tmp_path, micro_data)
    files = [tmp_path / "confident.wav", tmp_path / "unsure.wav"]
    for f, f0, seed in zip(files, (150.0, 230.0), (0, 1)):
        sf.write(f, voice(1.5, 16_000, f0, seed=seed), 16_000)
    model.eval().head, head = torch.nn.Identity(), model.head
    with torch.no_grad():  # the pooled states the head reads
        feats = torch.stack([model(torch.from_numpy(read_audio(f))[None]).logits[0] for f in files]).double()
        # p = e^a / (e^a + 3) for logits (a, 0, 0, 0): a = ln(3p / (1 − p)), times T before the scaling
        want = torch.tensor([temperature * math.log(3 * p / (1 - p)) for p in confidences], dtype=torch.float64)
        head.weight.zero_()
        head.bias.zero_()
        head.weight[0] = (torch.linalg.pinv(feats) @ want).float()
    model.head = head
    save_best(model, tmp_path / "best.pt", "student_sup", 1, 0.5, {"temperature": temperature, "utterances": 1})
    return tmp_path / "best.pt", files


def test_min_confidence_marks_the_unconfident_file_uncertain(tmp_path, micro_data, capsys):
    """At --min-confidence 0.9, a recording whose top probability is 0.905 gets its emotion and one at 0.895 is
    uncertain: no emotion, its probabilities and confidence kept, a line on the terminal. The probabilities are the
    temperature-scaled ones (T from the checkpoint); --raw gives the model's own, both above 0.9."""
    import csv

    from mlkd_lib.cli import main
    from mlkd_lib.deploy.predict import TorchClassifier, format_predictions, load_classifier, predict_files
    ckpt, (sure, unsure) = _two_confidences(tmp_path, micro_data, (0.905, 0.895), temperature=2.0)
    assert TorchClassifier(ckpt).temperature == 2.0 and TorchClassifier(ckpt, raw=True).temperature == 1.0
    main(["predict", "--model", str(ckpt), str(sure), str(unsure), "--min-confidence", "0.9"])
    out = capsys.readouterr()
    assert "uncertain (confidence 0.895: no emotion)" in out.out.splitlines()[1]
    assert "1 of 2 files are uncertain" in out.err and "unsure.wav" in out.err and "confident.wav" not in out.err
    preds = predict_files(load_classifier(ckpt), [sure, unsure], min_confidence=0.9)
    rows = list(csv.DictReader(format_predictions(preds, EMOTIONS, "csv").splitlines()))
    assert [r["emotion"] for r in rows] == ["neu", ""]
    np.testing.assert_allclose([float(r["confidence"]) for r in rows], [0.905, 0.895], atol=2e-4)
    assert float(rows[1]["p_hap"]) == pytest.approx(0.105 / 3, abs=2e-4)  # the rest shared evenly
    item = json.loads(format_predictions(preds, EMOTIONS, "json"))[1]
    assert item["uncertain"] is True and item["emotion"] == "" and item["probabilities"]["neu"] == item["confidence"]
    # the model's own probabilities: e^(2a) / (e^(2a) + 3), both far above 0.9
    raw = predict_files(load_classifier(ckpt, raw=True), [sure, unsure], min_confidence=0.9)
    own = [math.exp(2 * math.log(3 * p / (1 - p))) for p in (0.905, 0.895)]
    assert [p.emotion for p in raw] == ["neu", "neu"]
    np.testing.assert_allclose([p.confidence for p in raw], [e / (e + 3) for e in own], atol=2e-4)
    with pytest.raises(SystemExit) as ex:  # a probability above 1 is a typo: one line, exit status 2
        main(["predict", "--model", str(ckpt), str(sure), "--min-confidence", "90"])
    assert ex.value.code == 2


def test_min_confidence_applies_to_each_segment_of_a_long_recording(tmp_path):
    """`--segments` with `--min-confidence`: each speech turn answered or marked uncertain on its own confidence."""
    from mlkd_lib.data.vad import TurnSettings
    from mlkd_lib.deploy.predict import Classifier
    from mlkd_lib.deploy.segments import format_segments, segment_file

    class Turns(Classifier):
        """Logits (5, 0, 0, 0) for the first segment it hears, (0.5, 0, 0, 0) for the next: top 0.98, then 0.35."""
        labels, sample_rate, max_seconds = EMOTIONS, 16_000, None

        def __init__(self):
            self.calls = 0

        def logits(self, wave):
            self.calls += 1
            return np.array([5.0 if self.calls == 1 else 0.5, 0.0, 0.0, 0.0])

    gap, a, b = np.zeros(16_000, np.float32), voice(1.2, 16_000, 150.0), voice(1.2, 16_000, 210.0, seed=1)
    sf.write(tmp_path / "two.wav", np.concatenate([gap, a, gap, b, gap]), 16_000)
    segments, _ = segment_file(Turns(), tmp_path / "two.wav", TurnSettings(), progress=False, min_confidence=0.9)
    assert [s.emotion for s in segments] == ["neu", ""]
    np.testing.assert_allclose([s.confidence for s in segments], [math.exp(5) / (math.exp(5) + 3),
                                                                  math.exp(0.5) / (math.exp(0.5) + 3)])
    rows = format_segments(segments, EMOTIONS, "csv").splitlines()
    assert rows[0].endswith(",p_sad,confidence") and rows[2].split(",")[3] == ""
    assert "uncertain" in format_segments(segments, EMOTIONS, "text").splitlines()[2]
