"""The setups the README and docs/your-data.md show, run exactly as written — from a folder outside the checkout,
with the defaults — on corpora and noise laid out and encoded as their publishers ship them (only the roots
``/corpora`` and ``/models`` replaced): CREMA-D with MUSAN's noise and a WavLM; RAVDESS at 48 kHz (some files
stereo) with DEMAND's 48 kHz noise, scored on EmoDB too; a corpus of one's own at 44.1 kHz stereo. Each goes
through ``--plan`` and a micro study, to the tables, and (CREMA-D) to a Hugging Face export."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from helpers import corpora
from helpers.docs import run_block, shell_blocks

pytestmark = pytest.mark.slow  # notebooks, Ray or a browser: make test, not make test-fast

ROOT = Path(__file__).resolve().parents[2]
SIX = ["ang", "dis", "fea", "hap", "neu", "sad"]
FOUR = ["neu", "hap", "ang", "sad"]


def tiny_wav2vec2(folder: Path) -> Path:
    """wav2vec2-base's twelve layers (a layer-norm encoder), narrow (random weights)."""
    from transformers import Wav2Vec2Config, Wav2Vec2Model
    config = Wav2Vec2Config(hidden_size=16, num_hidden_layers=12, num_attention_heads=2, intermediate_size=32,
                            conv_dim=(8,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
                            feat_extract_norm="layer", do_stable_layer_norm=True, mask_time_prob=0.0)
    Wav2Vec2Model(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def place(tmp_path_factory):
    """A user's working folder, the corpora and models where the docs put them, and a project root of the test's
    own (the presets' default data_dir and results land there, not in the checkout)."""
    root = tmp_path_factory.mktemp("your_data")
    work, corpora_root, models = root / "work", root / "corpora", root / "models"
    work.mkdir()
    env = {"MLKD_ROOT": str(root / "project"), "HF_HUB_OFFLINE": "1"}
    return work, {"/corpora": corpora_root, "/models": models}, env


def block(page: str, heading: str, index: int = 0) -> str:
    return shell_blocks(ROOT / page, heading)[index]


def finished(ran) -> list:
    """The commands' outcomes, every one a success; else the test fails naming the first command that failed."""
    last = ran[-1]
    assert last.code == 0, f"{last.command}\n--- exit {last.code}\n{last.out[-3000:]}\n{last.err[-3000:]}"
    return ran


def of(ran, words: str):
    """The outcome of the command that holds ``words``."""
    return next(r for r in ran if words in r.command)


# ---------------------------------------------------------------- the README's CREMA-D + MUSAN + WavLM

@pytest.fixture(scope="module")
def cremad_run(place):
    work, roots, env = place
    corpora.cremad(roots["/corpora"] / "CREMA-D", counts={e: 2 for e in corpora.CREMAD_EMOTIONS})
    corpora.musan(roots["/corpora"])
    corpora.tiny_wavlm(roots["/models"] / "wavlm-base-plus")
    readme = finished(run_block(block("README.md", "## Your own data"), work, roots, env))
    # the same setup in docs/your-data.md: the same study, so its micro run finds every step done
    docs = finished(run_block(block("docs/your-data.md", "## CREMA-D, MUSAN's noise and WavLM"), work, roots, env))
    return work, readme, docs


def test_the_readme_setup_plans_and_runs_as_a_micro_study(cremad_run):
    work, ran, docs = cremad_run
    plan = of(ran, "cremad.yaml --plan")
    assert "corpus: 120 utterances" in plan.out and "5 folds" in plan.out
    assert "unseen noise: none" in plan.out  # both of MUSAN's noise folders train: said, not an error
    assert "22050 Hz 2 channels" in plan.out  # the one MUSAN file that is not 16 kHz mono is converted
    full = of(ran, "--out results/cremad ")
    assert full.command.endswith("--plan") and "steps:" in full.out  # the full study: priced, not run here
    study = work / "results" / "cremad-try"
    config = json.loads((study / "config.json").read_text())
    assert config["manifest"] == str(work / "data" / "cremad.csv")  # relative to the setup file's folder
    assert config["model"].endswith("models/wavlm-base-plus") and config["emotions"] == SIX
    assert config["preset"] == "micro" and config["unseen_noise_types"] == []
    metrics = pd.read_csv(study / "metrics.csv")
    assert set(metrics.fold) == {"fold1"} and set(metrics.model) == {"teacher", "baseline", "student_sup",
                                                                     "student_unsup", "student_unsup_from_teacher"}
    assert "unseen_noise" not in set(metrics.condition)
    assert {"reverb", "codec", "clipping", "telephone"} <= set(metrics.condition)  # the other families, by default
    assert "unseen noise: none" in (study / "README.md").read_text()
    pred = pd.read_csv(study / "folds" / "fold1" / "student_sup" / "predictions.csv")
    assert [c for c in pred.columns if c.startswith("p_")] == [f"p_{e}" for e in SIX]
    manifest = pd.read_csv(work.parent / "project" / "data" / "micro" / "manifest" / "manifest.csv")
    test_speakers = set(manifest.set_index("utt_id").loc[pred.utt_id.unique(), "speaker"])
    assert len(test_speakers) == 2 and set(pred.label) == set(range(6))  # two actors, all six classes
    from mlkd_lib.config import load_config
    from mlkd_lib.data.prepare import load_fold
    fold = load_fold(load_config(study / "config.json"), "fold1")  # what the fold's models trained on
    assert test_speakers == set(fold.test.speaker) and not test_speakers & (set(fold.train.speaker) | set(
        fold.val.speaker))  # held out: neither trained nor validated on
    again = of(docs, "--out results/cremad-try")
    assert "0 failed or blocked" in again.out and " 0 run," in again.out  # docs/your-data.md: the same study


def test_the_exported_student_carries_the_six_classes(cremad_run, tmp_path):
    from transformers import pipeline

    from mlkd_lib.deploy.export import export_from_study
    work = cremad_run[0]
    study = work / "results" / "cremad-try"
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


# ---------------------------------------------------------------- RAVDESS at 48 kHz, DEMAND, scored on EmoDB

def test_ravdess_as_it_ships_with_demand_and_emodb(place):
    work, roots, env = place
    expected = corpora.ravdess(roots["/corpora"] / "RAVDESS", counts={1: 1, 2: 1, 3: 2, 4: 2, 5: 2, 6: 1, 7: 1, 8: 1})
    corpora.emodb(roots["/corpora"] / "emodb", counts={"W": 2, "L": 1, "E": 1, "A": 1, "F": 2, "T": 2, "N": 1})
    corpora.demand(roots["/corpora"])
    tiny_wav2vec2(roots["/models"] / "wav2vec2-base")
    ran = finished(run_block(block("docs/your-data.md", "## Corpora as they ship"), work, roots, env))

    listed = pd.read_csv(work / "ravdess.csv")
    assert len(listed) == len(expected) == 66 and set(listed.emotion) == set(corpora.RAVDESS_EMOTIONS.values())
    plan = of(ran, "ravdess.yaml --plan")
    four = sum(1 for e in expected.values() if e["emotion"] in FOUR)
    assert four == 42 and f"corpus: {four} utterances" in plan.out  # the selected classes only, not all 66
    assert f"{four} of {four} files will be converted" in plan.out and "48000 Hz mono" in plan.out
    assert "48000 Hz 2 channels" in plan.out  # actor 02's stereo files
    assert "noise: 6 of 6 files will be converted" in plan.out  # DEMAND's 48 kHz channels
    assert "test corpus emodb" in plan.out

    study = work / "results" / "ravdess-try"
    config = json.loads((study / "config.json").read_text())
    assert config["unseen_noise_types"] == ["DLIVING", "NPARK", "OOFFICE"]  # DEMAND's other environments
    metrics = pd.read_csv(study / "metrics.csv")
    unseen = metrics[metrics.condition == "unseen_noise"]
    assert set(unseen.noise) == {"DLIVING", "NPARK", "OOFFICE"}
    corpus = metrics[metrics.condition == "corpus"]
    assert set(corpus.noise) == {"emodb/clean", "emodb/DKITCHEN", "emodb/PCAFETER", "emodb/STRAFFIC"}
    assert set(corpus.model) == set(metrics.model) and (corpus.n == 4 * 7).all()  # EmoDB's neu, hap, ang, sad
    table4 = pd.read_csv(study / "table4.csv")
    assert {"corpus"} <= set(table4.condition) and "corpus" in set(table4.family.dropna())
    stats = pd.read_csv(study / "stats.csv")
    assert "pooled corpus" in set(stats.noise)

    from mlkd_lib.config import load_config
    from mlkd_lib.data.prepare import audio_cache_dir, prepare_data
    cfg = load_config(study / "config.json")
    cached = sorted(audio_cache_dir(cfg).glob("*.wav"))
    assert len(cached) == four and all(sf.info(str(p)).samplerate == 16_000 for p in cached)
    before = {p: p.stat().st_mtime_ns for p in cached}
    prepare_data(cfg, progress=False)  # the data step again: nothing is converted twice
    assert {p: p.stat().st_mtime_ns for p in sorted(audio_cache_dir(cfg).glob("*.wav"))} == before


# ---------------------------------------------------------------- a corpus of one's own, 44.1 kHz stereo

def test_a_corpus_of_ones_own_at_44_khz_stereo(place):
    work, roots, env = place
    corpora.own_corpus(work, per_label=2)
    ran = finished(run_block(block("docs/your-data.md", "## A corpus of your own"), work, roots, env))
    plan = of(ran, "--preset micro --plan")
    assert "corpus: 32 utterances" in plan.out and "32 of 32 files will be converted" in plan.out
    assert "44100 Hz 2 channels" in plan.out
    study = work / "results" / "mine-try"
    metrics = pd.read_csv(study / "metrics.csv")
    assert set(metrics.fold) == {"ann"} and (metrics[metrics.condition == "clean"].n == 8).all()
    assert set(metrics[metrics.condition == "unseen_noise"].noise) == {"music", "traffic"}
    preds = pd.read_csv(study / "folds" / "ann" / "teacher" / "predictions.csv")
    assert set(preds.label) == {0, 1, 2, 3}
    assert np.isfinite(pd.read_csv(study / "table1.csv").filter(like="mean").to_numpy(float)).all()
    assert not os.path.exists(ROOT / "results" / "mine-try")  # nothing was written into the checkout
