"""``mlkd bench``, ``mlkd export``, ``mlkd predict`` and ``mlkd pretrain``: models measured, shipped and used."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..arms import method_arm, trained
from ..config import PRESETS
from ..keys import COUNT, POSITIVE, here, model_here, number


def _bench(a):
    if a.train_step:
        from ..method.step_bench import bench_train_step, describe
        res = bench_train_step(a.preset, a.steps, threads=a.threads, workers=a.workers)
        print(json.dumps(res, indent=2) if a.json else describe(res))
        return
    if a.study_steps:
        from ..study.bench_steps import bench_study_steps
        res = bench_study_steps(a.study, a.preset, a.jobs)
        print(json.dumps({k: v for k, v in res.items() if k != "summary"}, indent=2) if a.json else res["summary"])
        return
    from ..deploy.bench import bench
    res = bench(a.model, a.n, a.seconds, a.threads, a.distill_steps, rounds=a.rounds, onnx=not a.no_onnx)
    print(json.dumps(res, indent=2) if a.json else res["summary"])


def _export(a):
    from ..deploy.export import export_from_study
    meta = export_from_study(a.study, a.fold, a.model, a.out, a.int8, a.int8_scheme, a.calibration, a.format, a.raw)
    if a.format == "hf":
        print(f"{a.out}: a Hugging Face ...ForSequenceClassification folder of the encoder's family (config, "
              f"safetensors, preprocessor, model card); "
              f'load it with transformers.pipeline("audio-classification", model="{a.out}")')
        return
    check = meta.get("int8_max_logit_diff_vs_torch", meta.get("max_logit_diff_vs_torch"))
    print(f"{a.out}: {meta['precision']} ONNX, {meta['size_mib']:.2f} MiB, max |logit - PyTorch| {check:.2e} "
          f"on 3 test lengths; labels and provenance in {Path(a.out).with_suffix('.json')}")


def _predict(a):
    from ..deploy.predict import format_predictions, load_classifier, predict_files
    classifier = load_classifier(a.model, a.threads, a.raw)
    fmt = "json" if a.json else "csv" if a.csv else "text"
    if a.segments:
        return _predict_segments(a, classifier, fmt)
    preds = predict_files(classifier, a.paths, a.min_speech, a.vad_aggressiveness, a.min_confidence)
    if not preds:
        raise FileNotFoundError(f"no audio files under {' '.join(a.paths)}")
    print(format_predictions(preds, classifier.labels, fmt))
    silent = [p.path for p in preds if p.no_speech]
    if silent:
        print(f"mlkd predict: {len(silent)} of {len(preds)} files hold less than {a.min_speech:g} s of speech (no "
              f"emotion given): {', '.join(silent)}", file=sys.stderr)
    unsure = [p.path for p in preds if p.uncertain]
    if unsure:
        print(f"mlkd predict: {len(unsure)} of {len(preds)} files are uncertain, the model's top probability below "
              f"{a.min_confidence:g} (no emotion given): {', '.join(unsure)}", file=sys.stderr)
    bad = [p.path for p in preds if p.error]
    if bad:  # each error is in the output beside the predictions; the exit status says some failed
        print(f"mlkd predict: {len(bad)} of {len(preds)} files could not be classified: {', '.join(bad)}",
              file=sys.stderr)
        sys.exit(1)


def _predict_segments(a, classifier, fmt):
    from ..data.vad import TurnSettings
    from ..deploy.segments import format_segments, plot_timeline, segment_file
    if len(a.paths) > 1 and a.plot:
        raise ValueError("--plot draws one recording's timeline: give one file")
    max_seconds = a.max_seconds or classifier.max_seconds or TurnSettings.max_seconds
    settings = TurnSettings(a.min_turn, a.min_pause, a.padding, max_seconds, a.vad_aggressiveness)
    found = [(path, *segment_file(classifier, path, settings, min_confidence=a.min_confidence)) for path in a.paths]
    print(format_segments([s for _, segs, _ in found for s in segs], classifier.labels, fmt))
    if a.plot:
        path, segs, decisions = found[0]
        print(f"timeline: {plot_timeline(segs, decisions, classifier.labels, a.plot, str(path))}", file=sys.stderr)


def _pretrain(a):
    from ..method.pretrain import PretrainSettings, pretrain
    settings = PretrainSettings(objective=a.objective, seed=a.seed, utterances=a.utterances, steps=a.steps,
                                batch_size=a.batch_size, lr=a.lr, threads=a.threads)
    prov = pretrain(a.out, settings, a.corpus)
    print(f"{a.out}: encoder pretrained ({a.objective}, {a.steps} steps) in {prov['wall_s']:.0f} s; "
          f"final losses {prov['loss_log'][-1]}")


def _add_bench(sub) -> None:
    b = sub.add_parser("bench", help="inference time of teacher vs student (PyTorch, ONNX fp32/int8); "
                                     "distillation step with/without cache; --train-step: where a training step's "
                                     "time goes; --study-steps: a study's step times")
    b.add_argument("--model", type=model_here, default="tiny")
    b.add_argument("--n", type=POSITIVE, default=20, help="utterances")
    b.add_argument("--seconds", type=number(float, 0.1), default=4.5,
                   help="utterance length (IEMOCAP mean is about 4.5 s)")
    b.add_argument("--threads", type=COUNT, default=0, help="CPU threads (0: all)")
    b.add_argument("--distill-steps", type=COUNT, default=5, help="0: skip the distillation-step timing")
    b.add_argument("--rounds", type=POSITIVE, default=3, help="interleaved timing rounds (the median counts)")
    b.add_argument("--no-onnx", action="store_true", help="PyTorch only: no export of the student")
    b.add_argument("--json", action="store_true")
    b.add_argument("--study-steps", action="store_true", help="instead: where a study's time goes — wall time per "
                   "kind of step, import and kernel start times (runs a new --preset study unless --study names one)")
    b.add_argument("--study", type=here, help="with --study-steps: a finished study folder to read")
    b.add_argument("--train-step", action="store_true", help="instead: where a training step's time goes — data, "
                   "forward, backward, optimizer, other — for the teacher and the MLKD student of --preset's shapes")
    b.add_argument("--steps", type=POSITIVE, default=32, help="with --train-step: timed steps of each role (after 4 "
                   "of warm-up)")
    b.add_argument("--workers", type=int, default=-1, help="with --train-step: DataLoader workers (-1: the study's "
                   "rule, 4 on a GPU, none on the CPU)")
    b.add_argument("--preset", default="micro", choices=sorted(PRESETS), help="with --study-steps: the study to run; "
                   "with --train-step: the shapes (paper: wav2vec2-base, batch 8 × 4.5 s)")
    b.add_argument("--jobs", type=POSITIVE, default=2, help="with --study-steps: steps in parallel")
    b.set_defaults(func=_bench)


def _add_export(sub) -> None:
    e = sub.add_parser("export", help="a trained model of a study as ONNX (waveform in, logits out), fp32 or int8")
    e.add_argument("--study", type=here, required=True, help="study folder (results/NAME)")
    e.add_argument("--fold", required=True, help="test speaker of the fold, e.g. Ses01F")
    e.add_argument("--model", default=method_arm().name, choices=trained())
    e.add_argument("--format", choices=["onnx", "hf"], default="onnx",
                   help="onnx: one file for `mlkd predict`; hf: a Hugging Face folder (Wav2Vec2For..., HubertFor..., "
                        "WavLMFor..., Data2VecAudioForSequenceClassification, as the encoder is)")
    e.add_argument("--out", type=here, required=True, help="FILE.onnx (FILE.json beside it: labels, sample rate, "
                                                            "provenance), or with --format hf a new folder")
    e.add_argument("--int8", action="store_true", help="int8 quantization (onnxruntime)")
    e.add_argument("--int8-scheme", default="conv+matmul", choices=["conv+matmul", "matmul"],
                   help="conv+matmul: static int8 convolutions calibrated on the fold's training speech + dynamic "
                        "int8 MatMul/Gemm; matmul: dynamic MatMul/Gemm only")
    e.add_argument("--calibration", type=POSITIVE, default=16, help="training utterances for calibration (each clean "
                                                                    "and noisy)")
    e.add_argument("--raw", action="store_true", help="the export gives the model's own probabilities: the fitted "
                   "temperature is recorded but not applied (hf: not in the weights; onnx: `mlkd predict` ignores it)")
    e.set_defaults(func=_export)


def _add_predict(sub) -> None:
    from ..data.vad import MIN_SPEECH_S
    pr = sub.add_parser("predict", help="emotion of audio files or folders, from FILE.onnx (no torch) or a checkpoint")
    pr.add_argument("--model", type=here, required=True, help="an exported .onnx (with its .json) or a study "
                                                               "checkpoint (.pt)")
    pr.add_argument("paths", type=here, nargs="+", help="audio files or folders (any rate, mono or stereo)")
    out = pr.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="a JSON list")
    out.add_argument("--csv", action="store_true", help="CSV with one row per file")
    pr.add_argument("--threads", type=COUNT, default=0, help="CPU threads (0: the runtime's default)")
    pr.add_argument("--min-speech", type=number(float, 0), default=MIN_SPEECH_S, help="s of speech (WebRTC VAD) a "
                    "file needs for an emotion; less: 'no speech', an empty emotion and its speech_s")
    pr.add_argument("--min-confidence", type=number(float, 0, high=1), metavar="P", help="the top probability an "
                    "answer needs; below it: 'uncertain', an empty emotion beside its probabilities and confidence")
    pr.add_argument("--raw", action="store_true", help="the model's own probabilities, without the temperature "
                    "fitted on its validation speech (docs/calibration.md)")
    pr.add_argument("--segments", action="store_true", help="emotion over time: one row per speech segment of each "
                    "(long) recording, found by WebRTC VAD and cut at the model's max_seconds")
    pr.add_argument("--plot", type=here, help="with --segments: the timeline of the recording as FILE.png")
    pr.add_argument("--min-turn", type=number(float, 0), default=0.3, help="s; shorter speech is dropped")
    pr.add_argument("--min-pause", type=number(float, 0), default=0.4, help="s; shorter pauses do not end a turn")
    pr.add_argument("--padding", type=number(float, 0), default=0.05, help="s kept on each side of a turn")
    pr.add_argument("--max-seconds", type=number(float, 0.1), help="longest segment (default: the model's study)")
    pr.add_argument("--vad-aggressiveness", type=int, choices=range(4), default=2)
    pr.set_defaults(func=_predict)


def _add_pretrain(sub) -> None:
    from ..method.pretrain_settings import PRETRAIN_OBJECTIVES, PretrainSettings
    d = PretrainSettings()
    pt = sub.add_parser("pretrain", help="pretrain the demo encoder on emotion-free speech of voices outside the study")
    pt.add_argument("--out", type=here, required=True, help="folder for the encoder (save_pretrained layout)")
    pt.add_argument("--seed", type=int, default=d.seed)
    pt.add_argument("--objective", choices=PRETRAIN_OBJECTIVES, default=d.objective)
    pt.add_argument("--steps", type=POSITIVE, default=d.steps)
    pt.add_argument("--utterances", type=POSITIVE, default=d.utterances, help="size of the pretraining corpus")
    pt.add_argument("--batch-size", type=POSITIVE, default=d.batch_size)
    pt.add_argument("--lr", type=number(float, 0, strict=True), default=d.lr)
    pt.add_argument("--threads", type=COUNT, default=d.threads, help="CPU threads (0: all); fix it for identical bytes")
    pt.add_argument("--corpus", type=here, help="where the pretraining corpus is made or reused (default: beside "
                                                "--out)")
    pt.set_defaults(func=_pretrain)


def add_commands(sub) -> None:
    for add in (_add_bench, _add_export, _add_predict, _add_pretrain):
        add(sub)
