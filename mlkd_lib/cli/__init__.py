"""The ``mlkd`` command: one module per group of subcommands (``data``: corpora, noise, mixing and model sizes;
``study``: studies, ablations, sweeps and the listening page; ``models``: benchmarks, export, prediction,
pretraining). Subcommands import their modules when they run, so that ``mlkd predict`` on an ONNX model never
imports torch. Paths typed on the command line are relative to the current folder (``keys.here``)."""

from __future__ import annotations

import argparse
import sys

from ..keys import Parser

USAGE = """Speech emotion recognition in noise: a clean-trained teacher distils, layer by layer, into a small
student trained on noisy speech; the study compares it with plain noisy training and an enhancement baseline.

first commands:
  mlkd study --preset demo --jobs 2            the whole demo study (synthetic speech, tiny encoder), offline
  mlkd study --config my_setup.yaml --plan     check your corpus, noise and encoder; say what the study costs
  mlkd data cremad --root CREMA-D --out data/cremad.csv
                                               a corpus's manifest (also: iemocap, ravdess, emodb, msppodcast;
                                               hf, audformat, emobox for a Hugging Face dataset, an audformat
                                               database, EmoBox's folds)
  mlkd study --list-keys                       every study setting, its type and what it is for
  mlkd listen --study results/demo             hear noisy samples and see what each model predicts
  mlkd sweep --study results/demo --out results/demo-sweep --set temperature=1,7 --set alpha=0.3,0.7
                                               the paper's grid search, chosen on validation, reported on test
  mlkd export ... / mlkd predict ...           a trained model outside the study (ONNX, Hugging Face)

`mlkd COMMAND --help` says more about each command."""


def build_parser() -> argparse.ArgumentParser:
    from . import data, models, study
    p = Parser(prog="mlkd", description=USAGE, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in (data, study, models):
        group.add_commands(sub)
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
