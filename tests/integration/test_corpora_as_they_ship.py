"""Corpora as their publishers ship them, set up as docs/your-data.md writes it — from a folder outside the
checkout, with the defaults, only the roots ``/corpora`` and ``/models`` replaced: RAVDESS at 48 kHz (some files
stereo) with DEMAND's 48 kHz noise, scored on EmoDB too; a corpus of one's own at 44.1 kHz stereo. Each goes
through ``--plan`` and a micro study, to the tables."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from helpers import corpora
from helpers.docs import ROOT, block, finished, of, run_block, tiny_wav2vec2

pytestmark = pytest.mark.slow  # notebooks, Ray or a browser: make test, not make test-fast

FOUR = ["neu", "hap", "ang", "sad"]


# ---------------------------------------------------------------- RAVDESS at 48 kHz, DEMAND, scored on EmoDB

def test_ravdess_as_it_ships_with_demand_and_emodb(place):
    work, roots, env = place
    expected = corpora.ravdess(roots["/corpora"] / "RAVDESS", counts={1: 1, 2: 1, 3: 2, 4: 2, 5: 2, 6: 1, 7: 1, 8: 1})
    expected_emodb = corpora.emodb(roots["/corpora"] / "emodb", counts={"W": 2, "L": 1, "E": 1, "A": 1, "F": 2,
                                                                       "T": 2, "N": 1})
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

    study = work / "results" / "ravdess-trial"
    config = json.loads((study / "config.json").read_text())
    assert config["unseen_noise_types"] == ["DLIVING", "NPARK", "OOFFICE"]  # DEMAND's other environments
    metrics = pd.read_csv(study / "metrics.csv")
    unseen = metrics[metrics.condition == "unseen_noise"]
    assert set(unseen.noise) == {"DLIVING", "NPARK", "OOFFICE"}
    corpus = metrics[metrics.condition == "corpus"]
    assert set(corpus.noise) == {"emodb/clean", "emodb/DKITCHEN", "emodb/PCAFETER", "emodb/STRAFFIC"}
    # EmoDB's neu, hap, ang, sad: 4, 8, 8 and 8 utterances, at most 2 of each in a trial
    assert set(corpus.model) == set(metrics.model) and (corpus.n == 4 * 2).all()
    table4 = pd.read_csv(study / "table4.csv")
    assert {"corpus"} <= set(table4.condition) and "corpus" in set(table4.family.dropna())
    stats = pd.read_csv(study / "stats.csv")
    assert "pooled corpus" in set(stats.noise)

    # the EmoDB setup's trial ran at the same time from the same folder: each study read its own corpus only
    emodb = work / "results" / "emodb-trial"
    for folder in (study, emodb):  # run as `a & b; wait`, whose exit says nothing of a: every step of each finished
        failed = {k: s.get("error") for k, s in json.loads((folder / "run.json").read_text())["steps"].items()
                  if s["status"] != "ok"}
        assert not failed, f"{folder.name}: {failed}"
    for folder, ids in ((study, set(expected)), (emodb, set(expected_emodb))):
        assert json.loads((folder / "config.json").read_text())["data_dir"] == str(work / "data" / folder.name[:-6])
        for model in ("teacher", "student_sup"):
            (fold,) = (folder / "folds").iterdir()  # the trial's one fold
            predictions = pd.read_csv(fold / model / "predictions.csv")
            assert set(predictions[predictions.condition != "corpus"].utt_id) <= ids
    assert (emodb / "folds" / "03").is_dir()  # EmoDB's first speaker
    assert len(pd.read_csv(emodb / "metrics.csv").query("condition == 'clean'")) == 5  # every model

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
    plan = of(ran, "--trial --plan")
    assert "corpus: 32 utterances" in plan.out and "32 of 32 files will be converted" in plan.out
    assert "44100 Hz 2 channels" in plan.out
    study = work / "results" / "mine-trial"
    metrics = pd.read_csv(study / "metrics.csv")
    assert set(metrics.fold) == {"ann"} and (metrics[metrics.condition == "clean"].n == 8).all()  # 2 of 4 classes
    assert set(metrics[metrics.condition == "unseen_noise"].noise) == {"music", "traffic"}
    preds = pd.read_csv(study / "folds" / "ann" / "teacher" / "predictions.csv")
    assert set(preds.label) == {0, 1, 2, 3}
    assert np.isfinite(pd.read_csv(study / "table1.csv").filter(like="mean").to_numpy(float)).all()
    assert not os.path.exists(ROOT / "results" / "mine-trial")  # nothing was written into the checkout
