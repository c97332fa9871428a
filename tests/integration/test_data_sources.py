"""The three forms researchers download corpora in, each run as ``docs/your-data.md`` writes it — from a folder
outside the checkout, with the defaults: a Hugging Face dataset (Parquet shards of 44.1 kHz files), an audformat
database (a segmented table over 48 kHz stereo and 44.1 kHz dialogues) and EmoBox's folds, each through
``mlkd data …``, ``--plan`` and a trial, EmoBox's scored on the other two."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import soundfile as sf
from helpers import sources
from helpers.docs import block, finished, of, run_block

pytestmark = pytest.mark.slow  # notebooks, Ray or a browser: make test, not make test-fast


HUB_WORDS = {"neu": "neutral", "hap": "happy", "ang": "angry", "sad": "sad"}


def hub_dataset(root):
    """Four speakers, two utterances of each of the four classes, 44.1 kHz (s2's stereo): s1-s3 in two train shards,
    s4 the test split; written by the ``datasets`` library as the Hub's repositories hold it."""
    rows = {s: [dict(name=f"{s}_{HUB_WORDS[e]}_{i}.wav", label=HUB_WORDS[e], speaker=s, seconds=1.0,
                     channels=2 if s == "s2" else 1) for e in HUB_WORDS for i in range(2)]
            for s in ("s1", "s2", "s3", "s4")}
    sources.hf_parquet(root, {"train": [rows["s1"] + rows["s2"], rows["s3"]], "test": [rows["s4"]]}, by_datasets=True)


def dialogue_database(root):
    """Three speakers in four dialogues (the first 48 kHz stereo, the others 44.1 kHz mono), six segments of 0.8 s
    each: every speaker says every class twice."""
    words = ["anger", "happiness", "neutral", "sadness"]
    who = ["ann", "bob", "cem"]
    segments = [(f"audio/dialog0{1 + k // 6}.wav", (k % 6) * 0.9, (k % 6) * 0.9 + 0.8, words[k % 4],
                 round(0.5 + (k % 5) / 10, 1), who[k // 8]) for k in range(24)]
    sources.audformat_db(root, segments, {"ann": "female", "bob": "male", "cem": "female"},
                         {f"audio/dialog0{n}.wav": (5.6, 48_000, 2) if n == 1 else (5.6, 44_100, 1)
                          for n in range(1, 5)})


@pytest.fixture(scope="module")
def sources_run(place):
    work, roots, env = place
    hub_dataset(roots["/corpora"] / "emotion-speech")
    dialogue_database(roots["/corpora"] / "dialogues")
    sources.emobox(roots["/corpora"] / "EmoBox", "iemocap", sources.iemocap_utterances(per_emotion=1),
                   sources.IEMOCAP_MAP, seconds=1.5)
    ran = []
    for heading in ("## A Hugging Face dataset", "## An audformat database", "## EmoBox's folds"):
        ran += finished(run_block(block("docs/your-data.md", heading), work, roots, env))
    return work, ran


def test_the_three_forms_each_run_a_trial_and_emoboxs_is_scored_on_the_other_two(sources_run):
    work, ran = sources_run
    hub = pd.read_csv(work / "data" / "hub.csv", dtype=str)
    assert len(hub) == 32 and dict(hub.split.value_counts()) == {"train": 24, "test": 8}
    assert {sf.info(p).samplerate for p in hub.path} == {44_100}  # the files as the dataset holds them
    assert "44100 Hz 2 channels" in of(ran, "hub.yaml --trial").err  # converted by the data step, as it says first
    dialogues = pd.read_csv(work / "data" / "dialogues.csv")
    assert len(dialogues) == 24 and (dialogues.groupby(["speaker", "emotion"]).size() == 2).all()
    assert "48000 Hz 2 channels" in of(ran, "dialogues.yaml --trial").err
    for name, table, tested in (("hub", hub, hub.split == "test"), ("dialogues", dialogues, None)):
        assert "steps:" in of(ran, f"{name}.yaml --plan").out  # the study priced
        study = work / "results" / f"{name}-trial"  # each form trains and is scored in a trial of its own
        steps = json.loads((study / "run.json").read_text())["steps"]
        assert {s["status"] for s in steps.values()} == {"ok"} and len(steps) == 7, (name, steps)
        (fold,) = json.loads((study / "config.json").read_text())["folds"]
        if tested is None:  # a speaker a fold: the fold's test utterances are its speaker's
            tested = table.speaker.astype(str) == fold
        pred = pd.read_csv(study / "folds" / fold / "student_sup" / "predictions.csv", dtype={"utt_id": str})
        clean = pred[pred.noise == "clean"]
        assert len(clean) == 8 and set(clean.utt_id) <= set(table.utt_id[tested].astype(str))  # 2 of each class
    emobox = pd.read_csv(work / "data" / "emobox-iemocap.csv", dtype=str)
    assert dict(emobox.fold.value_counts()) == {f"fold{k}": 10 for k in range(1, 6)}
    assert "5 folds" in of(ran, "emobox.yaml --plan").out
    study = work / "results" / "emobox-trial"
    metrics = pd.read_csv(study / "metrics.csv")
    assert set(metrics.fold) == {"fold1"}
    scored = set(metrics.noise[metrics.condition == "corpus"].str.split("/").str[0])
    assert scored == {"hub", "dialogues"}  # every model scored on the two other forms' corpora
    from mlkd_lib.config import load_config, with_overrides
    from mlkd_lib.data.prepare import load_fold
    fold = load_fold(with_overrides(load_config(study / "config.json"), fold_utterances=0), "fold1")  # uncut
    assert set(fold.test.utt_id) == set(emobox.utt_id[emobox.fold == "fold1"])  # EmoBox's fold_1 test file
    assert set(fold.test.speaker) == {"Ses01F", "Ses01M"} and not {"Ses01F", "Ses01M"} & set(fold.val.speaker)
    assert len(fold.val) and not set(fold.val.utt_id) & set(fold.test.utt_id)
