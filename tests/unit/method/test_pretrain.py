"""Pretraining the demo encoder: deterministic, emotion-free, voices outside the study, loadable."""

from __future__ import annotations

import json

import pytest
import torch

from mlkd_lib.config import make_config
from mlkd_lib.data.pretrain_corpus import PRETRAIN_SENTENCES, make_pretrain_corpus, pretrain_voices
from mlkd_lib.data.synthetic import SENTENCES, SPEAKERS
from mlkd_lib.method.models import build_teacher
from mlkd_lib.method.pretrain import PretrainSettings, pretrain


def test_pretraining_speakers_and_sentences_are_not_the_studys():
    voices = pretrain_voices()
    study_variants = {s.voice.split("+")[1] for s in SPEAKERS}
    assert len(voices) >= 20
    assert not {v.split("+")[1] for v in voices} & study_variants
    assert not set(PRETRAIN_SENTENCES) & set(SENTENCES)


def test_the_pretraining_corpus_carries_no_emotion(tmp_path):
    df = make_pretrain_corpus(tmp_path, seed=0, n_utterances=6, progress=False)
    assert "emotion" not in df.columns and len(df) == 6
    assert set(df.voice) <= set(pretrain_voices())
    assert df.pitch.nunique() > 1  # prosody is drawn per utterance, not from four prototypes


@pytest.mark.parametrize("objective", ["masked+prosody", "contrastive"])
def test_a_short_pretraining_run_is_byte_identical_for_a_seed(tmp_path, objective):
    def run(name, seed):
        s = PretrainSettings(objective=objective, seed=seed, utterances=8, steps=3, batch_size=4, units=8, threads=1)
        pretrain(tmp_path / name, s, corpus_dir=tmp_path / f"{name}-corpus", progress=False)
        return {f: (tmp_path / name / f).read_bytes() for f in ("model.safetensors", "config.json")}

    a, b, c = run("a", 0), run("b", 0), run("c", 1)
    assert a == b
    assert a["model.safetensors"] != c["model.safetensors"]
    prov = json.loads((tmp_path / "a" / "provenance.json").read_text())
    assert prov["settings"]["objective"] == objective and prov["wall_s"] > 0 and prov["corpus"]["utterances"] == 8
    teacher = build_teacher(tmp_path / "a")  # the teacher's model=PATH path, as for wav2vec2-base
    assert teacher.num_layers == 12


def test_the_shipped_demo_encoder_is_what_the_demo_teacher_loads():
    cfg = make_config("demo")
    prov = json.loads((cfg.model_path / "provenance.json").read_text())
    assert prov["settings"]["seed"] == 0 and prov["git_commit"] and prov["wall_s"] > 0
    teacher = build_teacher(cfg.model)
    # every tensor of the shipped file is the demo teacher's encoder's, bit for bit
    from safetensors.torch import load_file
    shipped, loaded = load_file(cfg.model_path / "model.safetensors"), teacher.encoder.state_dict()
    assert shipped and all(torch.equal(loaded[k], v) for k, v in shipped.items())
    assert set(shipped) <= set(loaded)
