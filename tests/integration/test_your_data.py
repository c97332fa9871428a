"""The README's own setup run exactly as written — from a folder outside the checkout, with the defaults — on
CREMA-D with MUSAN's noise and a WavLM laid out and encoded as their publishers ship them (only the roots
``/corpora`` and ``/models`` replaced): through ``--plan`` and its trial, to the tables and a Hugging Face
export. Corpora at other rates and channel counts: ``test_corpora_as_they_ship.py``."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import soundfile as sf
from helpers import corpora, sources
from helpers.docs import block, finished, of, run_block

pytestmark = pytest.mark.slow  # notebooks, Ray or a browser: make test, not make test-fast

SIX = ["ang", "dis", "fea", "hap", "neu", "sad"]


# ---------------------------------------------------------------- the README's CREMA-D + MUSAN + WavLM

@pytest.fixture(scope="module")
def cremad_run(place):
    work, roots, env = place
    corpora.cremad(roots["/corpora"] / "CREMA-D", counts={e: 2 for e in corpora.CREMAD_EMOTIONS})
    corpora.musan(roots["/corpora"])
    corpora.tiny_wavlm(roots["/models"] / "wavlm-base-plus")
    readme = finished(run_block(block("README.md", "## Your own data"), work, roots, env))
    # the same setup in docs/your-data.md: the same study, so its trial finds every step done
    docs = finished(run_block(block("docs/your-data.md", "## CREMA-D, MUSAN's noise and WavLM"), work, roots, env))
    return work, readme, docs


def test_the_readme_setup_plans_and_runs_its_trial(cremad_run):
    work, ran, docs = cremad_run
    plan = of(ran, "cremad.yaml --plan")
    assert "corpus: 120 utterances" in plan.out and "5 folds" in plan.out
    assert "unseen noise: none" in plan.out  # both of MUSAN's noise folders train: said, not an error
    assert "22050 Hz 2 channels" in plan.out  # the one MUSAN file that is not 16 kHz mono is converted
    full = [r for r in ran if r.command.startswith("mlkd study")][-1]
    assert full.command.endswith("--plan") and "steps:" in full.out  # the full study: priced, not run here
    trial = of(ran, "--trial")
    assert "trial: the setup at a trial's size — fold fold1, at most 2 utterances" in trial.err
    study = work / "results" / "cremad-trial"  # beside the setup file, named after it
    config = json.loads((study / "config.json").read_text())
    assert config["manifest"] == str(work / "data" / "cremad.csv")  # relative to the setup file's folder
    assert config["data_dir"] == str(work / "data" / "cremad")  # the setup's own data folder
    assert config["model"].endswith("models/wavlm-base-plus") and config["emotions"] == SIX
    assert config["preset"] == "paper" and config["unseen_noise_types"] == []
    assert (config["fold_utterances"], config["teacher_epochs"], config["max_seconds"]) == (2, 1, 2.0)
    metrics = pd.read_csv(study / "metrics.csv")
    assert set(metrics.fold) == {"fold1"} and set(metrics.model) == {"teacher", "baseline", "student_sup",
                                                                     "student_unsup", "student_unsup_from_teacher"}
    assert "unseen_noise" not in set(metrics.condition)
    assert {"reverb", "codec", "clipping", "telephone"} <= set(metrics.condition)  # the other families, by default
    readme = (study / "README.md").read_text()
    assert "unseen noise: none" in readme and "its figures are no result" in readme
    pred = pd.read_csv(study / "folds" / "fold1" / "student_sup" / "predictions.csv")
    assert [c for c in pred.columns if c.startswith("p_")] == [f"p_{e}" for e in SIX]
    clean = pred[pred.noise == "clean"]
    assert sorted(clean.label.value_counts().to_dict().items()) == [(k, 2) for k in range(6)]  # two of each class
    from mlkd_lib.config import load_config, with_overrides
    from mlkd_lib.data.prepare import load_fold
    cfg = load_config(study / "config.json")
    fold = load_fold(cfg, "fold1")  # what the fold's models trained on
    assert set(clean.utt_id) == set(fold.test.utt_id) and len(fold.train) == len(fold.val) == 12
    whole = load_fold(with_overrides(cfg, fold_utterances=0), "fold1")  # the fold uncut: two actors
    assert len(set(whole.test.speaker)) == 2 and set(fold.test.speaker) <= set(whole.test.speaker)
    assert not set(whole.test.speaker) & (set(whole.train.speaker) | set(whole.val.speaker))  # held out
    again = of(docs, "--trial")
    assert "0 failed or blocked" in again.out and " 0 run," in again.out  # docs/your-data.md: the same study


def test_a_brought_checkpoint_is_checked_as_the_docs_say(cremad_run, place):
    work, roots, env = place
    (ran,) = finished(run_block(block("docs/your-data.md", "## Bringing a checkpoint"), work, roots, env))
    teacher, student = ran.out.splitlines()[:2]
    assert teacher.split()[:3] == ["teacher", "wavlm", "12"] and student.split()[:3] == ["student", "wavlm", "6"]
    (roots["/models"] / "wavlm-base-plus" / "model.safetensors").rename(roots["/models"] / "half.safetensors")
    missing = run_block(block("docs/your-data.md", "## Bringing a checkpoint"), work, roots, env)[-1]
    assert missing.code == 2 and missing.err.count("\n") == 1  # a folder without its weights: one line, exit 2
    (roots["/models"] / "half.safetensors").rename(roots["/models"] / "wavlm-base-plus" / "model.safetensors")


def test_the_exported_student_carries_the_six_classes(cremad_run, tmp_path):
    from transformers import pipeline

    from mlkd_lib.deploy.export import export_from_study
    work = cremad_run[0]
    study = work / "results" / "cremad-trial"
    folder = tmp_path / "hf"
    export_from_study(study, "fold1", "student_sup", folder, fmt="hf")
    hf_config = json.loads((folder / "config.json").read_text())
    assert hf_config["model_type"] == "wavlm" and [hf_config["id2label"][str(i)] for i in range(6)] == SIX
    x, rate = sf.read(next((work.parent / "corpora" / "CREMA-D" / "AudioWAV").glob("*.wav")), dtype="float32")
    out = pipeline("audio-classification", model=str(folder), top_k=None)({"raw": x, "sampling_rate": rate})
    assert sorted(r["label"] for r in out) == SIX and abs(sum(r["score"] for r in out) - 1) < 1e-4
    onnx = tmp_path / "student.onnx"
    export_from_study(study, "fold1", "student_sup", onnx)
    assert json.loads(onnx.with_suffix(".json").read_text())["labels"] == SIX


# ---------------------------------------------------------------- a Hugging Face dataset, audformat, EmoBox's folds

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
