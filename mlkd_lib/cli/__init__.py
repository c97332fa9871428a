"""The ``mlkd`` command. Subcommands import their modules when they run, so that ``mlkd predict``
on an ONNX model never imports torch."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from .config import PRESETS, describe_keys
from .keys import COUNT, NUMBER, POSITIVE, Parser, number
from .names import STUDENT_SUP, TRAINED

USAGE = """Speech emotion recognition in noise: a clean-trained teacher distils, layer by layer, into a small
student trained on noisy speech; the study compares it with plain noisy training and an enhancement baseline.

first commands:
  mlkd study --preset demo --jobs 2            the whole demo study (synthetic speech, tiny encoder), offline
  mlkd study --config my_setup.yaml --plan     check your corpus, noise and encoder; say what the study costs
  mlkd data cremad --root CREMA-D --out data/cremad.csv
                                               a corpus's manifest (also: iemocap, ravdess, emodb, msppodcast)
  mlkd study --list-keys                       every study setting, its type and what it is for
  mlkd listen --study results/demo             hear noisy samples and see what each model predicts
  mlkd sweep --study results/demo --out results/demo-sweep --set student_layers=2,4
                                               students of other depths: accuracy, size and speed on one plot
  mlkd export ... / mlkd predict ...           a trained model outside the study (ONNX, Hugging Face)

`mlkd COMMAND --help` says more about each command."""

RECIPES = {  # mlkd data NAME: the corpus's recipe module (data/recipes/NAME.py) and what it writes
    "iemocap": "IEMOCAP_full_release: neu, hap (+ exc), ang, sad; speaker from the utterance id",
    "cremad": "CREMA-D AudioWAV/: six classes, 91 actors, gender from VideoDemographics.csv",
    "ravdess": "RAVDESS Actor_NN/: eight classes, 24 actors, speech only (--include-song adds song)",
    "emodb": "EmoDB wav/: seven classes, 10 speakers (German)",
    "msppodcast": "MSP-Podcast Audios/ + Labels/labels_consensus.csv: eight classes, its own split (O, X left out)",
}


def _data_recipe(a):
    from importlib import import_module
    recipe = import_module(f".data.recipes.{a.what}", __package__)
    options = {"include_song": True} if getattr(a, "include_song", False) else {}
    build = recipe.build_iemocap_manifest if a.what == "iemocap" else recipe.build_manifest
    df = build(a.root, a.out, **options)
    print(f"{len(df)} utterances, {df.speaker.nunique()} speakers → {a.out}")
    print(df.emotion.value_counts().to_string())
    for reason, count in df.attrs.get("left_out", {}).items():
        print(f"left out: {count} ({reason})")


def _data_synth(a):
    from .data.synthetic import make_synthetic_corpus
    df = make_synthetic_corpus(a.out, seed=a.seed, per_class=a.per_class)
    print(f"{len(df)} utterances, {df.speaker.nunique()} speakers → {Path(a.out) / 'manifest.csv'}")


def _data_noise(a):
    from .data.noise import write_noise_bank
    from .names import NOISE_TYPES
    types = a.types or (list(NOISE_TYPES) if a.noisex or not a.source else None)  # NOISEX: factory1 as factory
    for kind, path in write_noise_bank(a.out, a.source or a.noisex, a.seed, a.seconds, types).items():
        print(f"{kind:10s} {path}")


def _mix(a):
    from .data.audio import read_audio, write_audio
    from .data.mixing import mix_at_snr, rms_level_db, speech_level_db
    speech, noise = read_audio(a.speech), read_audio(a.noise, resample_to=True)
    noisy = mix_at_snr(speech, noise, a.snr, np.random.default_rng(a.seed), a.level)
    write_audio(a.out, noisy, subtype="FLOAT")
    snr = speech_level_db(speech, a.level) - rms_level_db(noisy - speech)
    peak = float(np.max(np.abs(noisy)))
    print(f"{a.out}: SNR {snr:.2f} dB ({a.level}), peak {peak:.2f}"
          + (" — above full scale, kept as float WAV (not clipped)" if peak > 1 else ""))


def _model_info(a):
    from .method.models import model_info
    info = model_info(a.model, a.student_layers)
    if a.json:
        print(json.dumps(info, indent=2))
        return
    for name, d in info.items():
        print(f"{name:8s} {d['family']} {d['layers']:2d} layers  {d['parameters']:>11,d} parameters  "
              f"{d['size_mib']:8.2f} MiB (fp32)")
    print(f"student/teacher size ratio {info['student']['parameters'] / info['teacher']['parameters']:.3f}")


def _bench(a):
    if a.study_steps:
        from .analysis.bench_steps import bench_study_steps
        res = bench_study_steps(a.study, a.preset, a.jobs)
        print(json.dumps({k: v for k, v in res.items() if k != "summary"}, indent=2) if a.json else res["summary"])
        return
    from .analysis.bench import bench
    res = bench(a.model, a.n, a.seconds, a.threads, a.distill_steps, rounds=a.rounds, onnx=not a.no_onnx)
    print(json.dumps(res, indent=2) if a.json else res["summary"])


def _export(a):
    from .deploy.export import export_from_study
    meta = export_from_study(a.study, a.fold, a.model, a.out, a.int8, a.int8_scheme, a.calibration, a.format)
    if a.format == "hf":
        print(f"{a.out}: a Hugging Face ...ForSequenceClassification folder of the encoder's family (config, "
              f"safetensors, preprocessor, model card); "
              f'load it with transformers.pipeline("audio-classification", model="{a.out}")')
        return
    check = meta.get("int8_max_logit_diff_vs_torch", meta.get("max_logit_diff_vs_torch"))
    print(f"{a.out}: {meta['precision']} ONNX, {meta['size_mib']:.2f} MiB, max |logit - PyTorch| {check:.2e} "
          f"on 3 test lengths; labels and provenance in {Path(a.out).with_suffix('.json')}")


def _predict(a):
    from .deploy.predict import format_predictions, load_classifier, predict_files
    classifier = load_classifier(a.model, a.threads)
    fmt = "json" if a.json else "csv" if a.csv else "text"
    if a.segments:
        return _predict_segments(a, classifier, fmt)
    preds = predict_files(classifier, a.paths)
    if not preds:
        raise FileNotFoundError(f"no audio files under {' '.join(a.paths)}")
    print(format_predictions(preds, classifier.labels, fmt))
    bad = [p.path for p in preds if p.error]
    if bad:  # each error is in the output beside the predictions; the exit status says some failed
        print(f"mlkd predict: {len(bad)} of {len(preds)} files could not be classified: {', '.join(bad)}",
              file=sys.stderr)
        sys.exit(1)


def _predict_segments(a, classifier, fmt):
    from .data.vad import TurnSettings
    from .deploy.segments import format_segments, plot_timeline, segment_file
    if len(a.paths) > 1 and a.plot:
        raise ValueError("--plot draws one recording's timeline: give one file")
    max_seconds = a.max_seconds or classifier.max_seconds or TurnSettings.max_seconds
    settings = TurnSettings(a.min_turn, a.min_pause, a.padding, max_seconds, a.vad_aggressiveness)
    found = [(path, *segment_file(classifier, path, settings)) for path in a.paths]
    print(format_segments([s for _, segs, _ in found for s in segs], classifier.labels, fmt))
    if a.plot:
        path, segs, decisions = found[0]
        print(f"timeline: {plot_timeline(segs, decisions, classifier.labels, a.plot, str(path))}", file=sys.stderr)


def _pretrain(a):
    from .config import PretrainSettings
    from .method.pretrain import pretrain
    settings = PretrainSettings(objective=a.objective, seed=a.seed, utterances=a.utterances, steps=a.steps,
                                batch_size=a.batch_size, lr=a.lr, threads=a.threads)
    prov = pretrain(a.out, settings, a.corpus)
    print(f"{a.out}: encoder pretrained ({a.objective}, {a.steps} steps) in {prov['wall_s']:.0f} s; "
          f"final losses {prov['loss_log'][-1]}")


def _study(a):
    if a.list_keys:
        print(describe_keys(a.preset or "demo"))
        return
    from .keys import parse_set
    from .study.executors import RaySettings
    from .study.runner import run_study
    ray = RaySettings(a.ray_address, a.ray_cpus, a.ray_gpus, a.ray_max_retries)
    sys.exit(run_study(a.preset, a.out, a.folds, parse_set(a.set), a.jobs, a.force, a.executor, ray, a.plan,
                       a.config))


def _ablate(a):
    from .keys import parse_set
    from .study.runner import run_ablation
    sys.exit(run_ablation(a.study, a.out, parse_set(a.set), a.jobs))


def _sweep(a):
    from .keys import parse_set
    from .study.executors import RaySettings
    from .study.sweep import parse_depths, run_sweep
    sys.exit(run_sweep(a.study, a.out, parse_depths(parse_set(a.set)), a.jobs, a.executor, RaySettings(),
                       a.int8_ua, a.rounds))


def _listen(a):
    """Serve notebook 05 as a page with Voilà on localhost (no code shown)."""
    import os
    import subprocess

    from .paths import NOTEBOOKS, resolve
    notebook, study = NOTEBOOKS / "05_listen.ipynb", resolve(a.study)
    if not (study / "config.json").is_file():
        raise FileNotFoundError(f"{study} is not a study folder (no config.json): run `mlkd study` first, or "
                                f"name one with --study")
    env = dict(os.environ, MLKD_STUDY=str(study))
    print(f"serving {notebook.name} for {a.study} at http://127.0.0.1:{a.port}/  (Ctrl-C stops)")
    subprocess.run([sys.executable, "-m", "voila", str(notebook), f"--port={a.port}", "--no-browser",
                    "--Voila.ip=127.0.0.1", "--theme=light"], env=env, check=False)


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="mlkd", description=USAGE, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = sub.add_parser("data", help="a corpus's manifest, the synthetic corpus, a noise bank").add_subparsers(
        dest="what", required=True)
    for name, about in RECIPES.items():
        d = data.add_parser(name, help=f"{about} → manifest CSV")
        d.add_argument("--root", required=True, help="the corpus as distributed")
        d.add_argument("--out", required=True, help="the manifest CSV (use it with --set corpus=manifest "
                                                    "--set manifest=FILE)")
        if name == "ravdess":
            d.add_argument("--include-song", action="store_true", help="also the sung files (vocal channel 02)")
        d.set_defaults(func=_data_recipe)
    d = data.add_parser("synth", help="the synthetic emotional corpus (espeak-ng)")
    d.add_argument("--out", required=True)
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--per-class", type=POSITIVE, default=5, help="utterances per speaker and emotion")
    d.set_defaults(func=_data_synth)
    d = data.add_parser("noise", help="a noise bank: from any collection, NOISEX-92, or the five synthetic noises")
    d.add_argument("--out", required=True)
    d.add_argument("--from", dest="source", help="a noise collection: a folder of files (type = stem), a folder of "
                   "folders (type = subfolder: MUSAN, DEMAND) or a CSV of path,type; default: synthetic noises")
    d.add_argument("--noisex", help="folder of NOISEX-92 .wav/.mat files (its five types under their study names)")
    d.add_argument("--types", type=lambda v: [t.strip() for t in v.split(",") if t.strip()],
                   help="comma-separated types to take (default: all of the collection's)")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--seconds", type=number(float, 1.0), default=30.0, help="length of each synthetic noise")
    d.set_defaults(func=_data_noise)

    m = sub.add_parser("mix", help="add noise to speech at an SNR (FaNT-like)")
    m.add_argument("--speech", required=True)
    m.add_argument("--noise", required=True)
    m.add_argument("--snr", type=NUMBER, required=True, help="dB")
    m.add_argument("--out", required=True)
    m.add_argument("--level", choices=["p56", "rms"], default="p56")
    m.add_argument("--seed", type=int, default=0)
    m.set_defaults(func=_mix)

    i = sub.add_parser("model-info", help="parameters and fp32 size of teacher and student")
    i.add_argument("--model", default="base", help="base, tiny, micro or a local wav2vec 2.0 folder")
    i.add_argument("--student-layers", type=POSITIVE, default=6)
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=_model_info)

    b = sub.add_parser("bench", help="inference time of teacher vs student (PyTorch, ONNX fp32/int8); "
                                      "distillation step with/without cache; --study-steps: a study's step times")
    b.add_argument("--model", default="tiny")
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
    b.add_argument("--study", help="with --study-steps: a finished study folder to read")
    b.add_argument("--preset", default="micro", choices=sorted(PRESETS), help="with --study-steps: the study to run")
    b.add_argument("--jobs", type=POSITIVE, default=2, help="with --study-steps: steps in parallel")
    b.set_defaults(func=_bench)

    e = sub.add_parser("export", help="a trained model of a study as ONNX (waveform in, logits out), fp32 or int8")
    e.add_argument("--study", required=True, help="study folder (results/NAME)")
    e.add_argument("--fold", required=True, help="test speaker of the fold, e.g. Ses01F")
    e.add_argument("--model", default=STUDENT_SUP, choices=TRAINED)
    e.add_argument("--format", choices=["onnx", "hf"], default="onnx",
                   help="onnx: one file for `mlkd predict`; hf: a Hugging Face folder (Wav2Vec2For..., HubertFor..., "
                        "WavLMFor..., Data2VecAudioForSequenceClassification, as the encoder is)")
    e.add_argument("--out", required=True, help="FILE.onnx (FILE.json beside it: labels, sample rate, provenance), "
                                                "or with --format hf a new folder")
    e.add_argument("--int8", action="store_true", help="int8 quantization (onnxruntime)")
    e.add_argument("--int8-scheme", default="conv+matmul", choices=["conv+matmul", "matmul"],
                   help="conv+matmul: static int8 convolutions calibrated on the fold's training speech + dynamic "
                        "int8 MatMul/Gemm; matmul: dynamic MatMul/Gemm only")
    e.add_argument("--calibration", type=POSITIVE, default=16, help="training utterances for calibration (each clean "
                                                                "and noisy)")
    e.set_defaults(func=_export)

    pr = sub.add_parser("predict", help="emotion of audio files or folders, from FILE.onnx (no torch) or a checkpoint")
    pr.add_argument("--model", required=True, help="an exported .onnx (with its .json) or a study checkpoint (.pt)")
    pr.add_argument("paths", nargs="+", help="audio files or folders (any rate, mono or stereo)")
    out = pr.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="a JSON list")
    out.add_argument("--csv", action="store_true", help="CSV with one row per file")
    pr.add_argument("--threads", type=COUNT, default=0, help="CPU threads (0: the runtime's default)")
    pr.add_argument("--segments", action="store_true", help="emotion over time: one row per speech segment of each "
                    "(long) recording, found by WebRTC VAD and cut at the model's max_seconds")
    pr.add_argument("--plot", help="with --segments: the timeline of the recording as FILE.png")
    pr.add_argument("--min-turn", type=number(float, 0), default=0.3, help="s; shorter speech is dropped")
    pr.add_argument("--min-pause", type=number(float, 0), default=0.4, help="s; shorter pauses do not end a turn")
    pr.add_argument("--padding", type=number(float, 0), default=0.05, help="s kept on each side of a turn")
    pr.add_argument("--max-seconds", type=number(float, 0.1), help="longest segment (default: the model's study)")
    pr.add_argument("--vad-aggressiveness", type=int, choices=range(4), default=2)
    pr.set_defaults(func=_predict)

    from .config import PRETRAIN_OBJECTIVES, PretrainSettings
    d = PretrainSettings()
    pt = sub.add_parser("pretrain", help="pretrain the demo encoder on emotion-free speech of voices outside the study")
    pt.add_argument("--out", required=True, help="folder for the encoder (save_pretrained layout)")
    pt.add_argument("--seed", type=int, default=d.seed)
    pt.add_argument("--objective", choices=PRETRAIN_OBJECTIVES, default=d.objective)
    pt.add_argument("--steps", type=POSITIVE, default=d.steps)
    pt.add_argument("--utterances", type=POSITIVE, default=d.utterances, help="size of the pretraining corpus")
    pt.add_argument("--batch-size", type=POSITIVE, default=d.batch_size)
    pt.add_argument("--lr", type=number(float, 0, strict=True), default=d.lr)
    pt.add_argument("--threads", type=COUNT, default=d.threads, help="CPU threads (0: all); fix it for identical bytes")
    pt.add_argument("--corpus", help="where the pretraining corpus is made or reused (default: beside --out)")
    pt.set_defaults(func=_pretrain)

    s = sub.add_parser("study", help="run the whole study as papermill batches")
    s.add_argument("--preset", choices=sorted(PRESETS), help="the settings to start from (default: the setup "
                   "file's preset, else demo)")
    s.add_argument("--config", help="a setup file: YAML or JSON of study keys (corpus, manifest, emotions, "
                   "noise_dir, model, ...); --set overrides it")
    s.add_argument("--plan", action="store_true", help="check the inputs, print the steps and an estimate of disk "
                   "use and device hours, and exit")
    s.add_argument("--list-keys", action="store_true", help="print every config key (type, the preset's value, "
                   "what it is for) and exit")
    s.add_argument("--out", help="study folder (default results/<preset>)")
    s.add_argument("--folds", default="all", help="'all' or comma-separated folds: test speakers (leave-one-speaker-"
                   "out, e.g. Ses01F,Ses01M), fold1,fold2 (kfold) or split")
    s.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value")
    s.add_argument("--jobs", type=POSITIVE, default=1, help="steps run in parallel (CPU threads are shared out)")
    s.add_argument("--force", action="store_true", help="rerun steps that are already complete")
    s.add_argument("--executor", choices=["local", "ray"], default="local",
                   help="local: papermill processes on this machine; ray: one Ray task per step (needs .[ray])")
    s.add_argument("--ray-address", help="join a running Ray cluster: 'auto' or HOST:PORT (default: a local instance)")
    s.add_argument("--ray-cpus", type=number(float, 0, strict=True),
                   help="CPUs a step asks Ray for (default: cores/--jobs, 1 on a cluster)")
    s.add_argument("--ray-gpus", type=number(float, 0),
                   help="GPUs a model step asks for (default: 1 where the cluster has GPUs)")
    s.add_argument("--ray-max-retries", type=COUNT, default=3, help="re-runs of a step whose node died (not on errors)")
    s.set_defaults(func=_study)

    ab = sub.add_parser("ablate", help="retrain a study's student arms with other settings, reusing the rest")
    ab.add_argument("--study", required=True,
                    help="a finished study (its data, teachers, baselines and untouched arms are reused)")
    ab.add_argument("--out", required=True)
    ab.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a student setting, e.g. beta=6, temperature=1, sup_init=pretrained, student_epochs=12, "
                         "student_layers=3")
    ab.add_argument("--jobs", type=POSITIVE, default=1)
    ab.set_defaults(func=_ablate)

    sw = sub.add_parser("sweep", help="how small can the student be? MLKD and CE-only students retrained at other "
                                      "depths; frontier.csv / .png of noisy UA against CPU latency and size")
    sw.add_argument("--study", required=True, help="a finished study (data, folds, teachers and baselines reused)")
    sw.add_argument("--out", required=True, help="the sweep folder: depth-N/ per depth, frontier.* (docs/frontier.md)")
    sw.add_argument("--set", action="append", default=[], metavar="student_layers=N,M,...",
                    help="the depths, each dividing the teacher's layers (12: 1,2,3,4,6); the study's own depth is "
                         "always added (it reuses the study's students)")
    sw.add_argument("--jobs", type=POSITIVE, default=1, help="steps in parallel within a depth")
    sw.add_argument("--executor", choices=["local", "ray"], default="local",
                    help="where the students train (the frontier is always timed here)")
    sw.add_argument("--int8-ua", choices=["deploy", "all", "off"], default="deploy",
                    help="int8 exports scored under Table 3's conditions (clean, Table 1's noise at 0 and 10 dB), "
                         "every training condition, or not at all (latency and size are always measured)")
    sw.add_argument("--rounds", type=POSITIVE, default=5, help="interleaved timing rounds (the median counts)")
    sw.set_defaults(func=_sweep)

    li = sub.add_parser("listen", help="serve the listening explorer as a web page (Voilà, localhost)")
    li.add_argument("--study", default="results/demo")
    li.add_argument("--port", type=number(int, 1), default=8866)
    li.set_defaults(func=_listen)
    return p


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as err:
        # clear one-line errors for bad input; the traceback helps nobody here
        text = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        print(f"mlkd {args.command}: error: {' '.join(str(text).split())}", file=sys.stderr)
        sys.exit(2)
