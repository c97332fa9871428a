"""The README's own setup run exactly as written — from a folder outside the checkout, with the defaults — on
CREMA-D with MUSAN's noise and a WavLM laid out and encoded as their publishers ship them (only the roots
``/corpora`` and ``/models`` replaced): through ``--plan`` and its trial, to the tables and a Hugging Face
export. Corpora at other rates and channel counts: ``test_corpora_as_they_ship.py``; the downloaded forms
(Hugging Face, audformat, EmoBox): ``test_data_sources.py``."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import soundfile as sf
from helpers import corpora
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
