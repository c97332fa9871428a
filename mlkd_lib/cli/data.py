"""``mlkd data`` (a corpus's manifest, the synthetic corpus, a noise bank), ``mlkd mix`` and ``mlkd model-info``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..keys import NUMBER, POSITIVE, here, model_here, number

RECIPES = {  # mlkd data NAME: the corpus's recipe module (data/recipes/NAME.py) and what it writes
    "iemocap": "IEMOCAP_full_release: neu, hap (+ exc), ang, sad; speaker from the utterance id",
    "cremad": "CREMA-D AudioWAV/: six classes, 91 actors, gender from VideoDemographics.csv",
    "ravdess": "RAVDESS Actor_NN/: eight classes, 24 actors, speech only (--include-song adds song)",
    "emodb": "EmoDB wav/: seven classes, 10 speakers (German)",
    "msppodcast": "MSP-Podcast Audios/ + Labels/labels_consensus.csv: eight classes, its own split (O, X left out)",
}
SOURCES = {  # mlkd data NAME for a corpus in a general form: one module each beside the recipes, its options
    "hf": "a Hugging Face dataset folder (Parquet shards or save_to_disk): its label, speaker and split columns",
    "audformat": "an audformat database (db.yaml): one table's labels, speaker and gender from its schemes",
    "emobox": "a corpus of EmoBox with its official folds (a fold column, for protocol=folds)",
}


def listed(text: str) -> list[str]:
    """A comma-separated list typed on the command line."""
    return [t.strip() for t in text.split(",") if t.strip()]


def _recipe(a):
    from importlib import import_module
    recipe = import_module(f"mlkd_lib.data.recipes.{a.what}")
    options = {name: getattr(a, name) for name in a.options}
    df = recipe.build_manifest(a.root, out=a.out, **options)
    print(f"{len(df)} utterances, {df.speaker.nunique()} speakers → {a.out}")
    print(df.emotion.value_counts().to_string())
    for reason, count in df.attrs.get("left_out", {}).items():
        print(f"left out: {count} ({reason})")
    for column in ("split", "fold"):
        if column in df:
            counts = sorted(df[column].value_counts().items())
            print(f"{column}: " + ", ".join(f"{value or '(none)'} {n}" for value, n in counts))


def _synth(a):
    from ..data.synthetic import make_synthetic_corpus
    df = make_synthetic_corpus(a.out, seed=a.seed, per_class=a.per_class)
    print(f"{len(df)} utterances, {df.speaker.nunique()} speakers → {Path(a.out) / 'manifest.csv'}")


def _noise(a):
    from ..data.noise.bank import write_noise_bank
    from ..names import NOISE_TYPES
    types = a.types or (list(NOISE_TYPES) if a.noisex or not a.source else None)  # NOISEX: factory1 as factory
    for kind, path in write_noise_bank(a.out, a.source or a.noisex, a.seed, a.seconds, types).items():
        print(f"{kind:10s} {path}")


def _mix(a):
    from ..data.audio import read_audio, write_audio
    from ..data.mixing import mix_at_snr, rms_level_db, speech_level_db
    speech, noise = read_audio(a.speech), read_audio(a.noise, resample_to=True)
    noisy = mix_at_snr(speech, noise, a.snr, np.random.default_rng(a.seed), a.level)
    write_audio(a.out, noisy, subtype="FLOAT")
    snr = speech_level_db(speech, a.level) - rms_level_db(noisy - speech)
    peak = float(np.max(np.abs(noisy)))
    print(f"{a.out}: SNR {snr:.2f} dB ({a.level}), peak {peak:.2f}"
          + (" — above full scale, kept as float WAV (not clipped)" if peak > 1 else ""))


def _model_info(a):
    from ..method.models import model_info
    info = model_info(a.model, a.student_layers)
    if a.json:
        print(json.dumps(info, indent=2))
        return
    for name, d in info.items():
        print(f"{name:8s} {d['family']} {d['layers']:2d} layers  {d['parameters']:>11,d} parameters  "
              f"{d['size_mib']:8.2f} MiB (fp32)")
    print(f"student/teacher size ratio {info['student']['parameters'] / info['teacher']['parameters']:.3f}")


def add_commands(sub) -> None:
    data = sub.add_parser("data", help="a corpus's manifest, the synthetic corpus, a noise bank").add_subparsers(
        dest="what", required=True)
    for name, about in RECIPES.items():
        d = data.add_parser(name, help=f"{about} → manifest CSV")
        d.add_argument("--root", type=here, required=True, help="the corpus as distributed")
        d.add_argument("--out", type=here, required=True, help="the manifest CSV (use it with --set corpus=manifest "
                                                                "--set manifest=FILE)")
        if name == "ravdess":
            d.add_argument("--include-song", action="store_true", help="also the sung files (vocal channel 02)")
        d.set_defaults(func=_recipe, options=["include_song"] if name == "ravdess" else [])
    for name, about in SOURCES.items():
        d = data.add_parser(name, help=f"{about} → manifest CSV")
        d.add_argument("--root", type=here, required=True, help="the folder as downloaded (emobox: EmoBox's, with "
                                                                 "data/ and downloads/)" if name == "emobox" else
                       "the folder as downloaded")
        d.add_argument("--out", type=here, required=True, help="the manifest CSV; audio kept inside the source is "
                                                                "written once beside it (OUT-audio/)")
        options = ["label_map"]
        if name == "hf":
            d.add_argument("--emotion", required=True, help="the column of labels (strings or a ClassLabel)")
            d.add_argument("--speaker", required=True, help="the column of speaker ids")
            d.add_argument("--audio", default="audio", help="the audio column (default: audio)")
            which = d.add_mutually_exclusive_group()
            which.add_argument("--split", help="a column naming each row's split, instead of the dataset's own")
            which.add_argument("--splits", type=listed, help="comma-separated splits to take (default: all)")
            options += ["emotion", "speaker", "audio", "split", "splits"]
        elif name == "audformat":
            d.add_argument("--table", help="the table of labels (default: the one with --column)")
            d.add_argument("--column", default="emotion", help="the column of labels (default: emotion)")
            options += ["table", "column"]
        else:
            d.add_argument("--corpus", required=True, help="the corpus's name in EmoBox's data/ (e.g. iemocap)")
            options += ["corpus"]
        d.add_argument("--label-map", type=listed, action="extend", default=[], metavar="RAW:CODE,...",
                       help="labels as the study's codes where they are no code nor word for one; RAW:- leaves "
                            "RAW's utterances out")
        d.set_defaults(func=_recipe, options=options)
    d = data.add_parser("synth", help="the synthetic emotional corpus (espeak-ng)")
    d.add_argument("--out", type=here, required=True)
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--per-class", type=POSITIVE, default=5, help="utterances per speaker and emotion")
    d.set_defaults(func=_synth)
    d = data.add_parser("noise", help="a noise bank: from any collection, NOISEX-92, or the five synthetic noises")
    d.add_argument("--out", type=here, required=True)
    d.add_argument("--from", dest="source", type=here, help="a noise collection: a folder of files (type = stem), a "
                   "folder of folders (type = subfolder: MUSAN, DEMAND) or a CSV of path,type; default: synthetic")
    d.add_argument("--noisex", type=here, help="folder of NOISEX-92 .wav/.mat files (its five types under their "
                                                "study names)")
    d.add_argument("--types", type=lambda v: [t.strip() for t in v.split(",") if t.strip()],
                   help="comma-separated types to take (default: all of the collection's)")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--seconds", type=number(float, 1.0), default=30.0, help="length of each synthetic noise")
    d.set_defaults(func=_noise)

    m = sub.add_parser("mix", help="add noise to speech at an SNR (FaNT-like)")
    m.add_argument("--speech", type=here, required=True)
    m.add_argument("--noise", type=here, required=True)
    m.add_argument("--snr", type=NUMBER, required=True, help="dB")
    m.add_argument("--out", type=here, required=True)
    m.add_argument("--level", choices=["p56", "rms"], default="p56")
    m.add_argument("--seed", type=int, default=0)
    m.set_defaults(func=_mix)

    i = sub.add_parser("model-info", help="parameters and fp32 size of teacher and student")
    i.add_argument("--model", type=model_here, default="base", help="base, tiny, micro or a local encoder folder "
                                                                     "(wav2vec 2.0, HuBERT, WavLM, data2vec-audio)")
    i.add_argument("--student-layers", type=POSITIVE, default=6)
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=_model_info)
