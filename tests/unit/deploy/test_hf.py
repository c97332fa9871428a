"""The Hugging Face export is the same classifier: the family's XxxForSequenceClassification, its feature
extractor and `pipeline("audio-classification")` give our model's probabilities, under the model's own labels."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import (
    AutoModelForAudioClassification,
    Data2VecAudioConfig,
    HubertConfig,
    Wav2Vec2Config,
    WavLMConfig,
    pipeline,
)

from mlkd_lib.config import make_config
from mlkd_lib.data.audio import speech_like
from mlkd_lib.deploy.hf import feature_extractor, to_hf, write_hf_folder
from mlkd_lib.method.models import MICRO, EmotionClassifier, build_student
from mlkd_lib.names import EMOTIONS


def _model(norm: str) -> EmotionClassifier:
    torch.manual_seed(0)
    model = EmotionClassifier(Wav2Vec2Config(**dict(MICRO, feat_extract_norm=norm))).eval()
    model.add_mask_embedding()  # as a pretrained encoder brings: SpecAugment's vector, unused at inference
    with torch.no_grad():  # a head far from zero, so that the classes differ clearly
        model.head.weight.normal_(0, 2.0)
    return model


def _ours(model, x):
    with torch.no_grad():
        return torch.softmax(model(torch.from_numpy(x)[None]).logits, -1)[0].numpy()


@pytest.mark.parametrize("norm", ["layer", "group"])
def test_the_hf_model_and_its_feature_extractor_are_our_classifier(norm, rng):
    model = _model(norm)
    hf, fe = to_hf(model), feature_extractor(model)
    assert fe.return_attention_mask is model.uses_attention_mask()
    for seconds in (0.7, 1.3, 2.9):
        x = (3.0 * speech_like(rng, seconds)).astype(np.float32)  # loud: the normalisation must match too
        inputs = fe(x, sampling_rate=16_000, return_tensors="pt")
        with torch.no_grad():
            theirs = torch.softmax(hf(**inputs).logits, -1)[0].numpy()
        np.testing.assert_allclose(theirs, _ours(model, x), atol=1e-5)


def test_the_folder_loads_offline_in_the_pipeline_and_the_auto_class(tmp_path, rng, monkeypatch):
    """The model's fitted temperature (0.5 here) travels: the pipeline, `mlkd predict` on the ONNX export and on the
    checkpoint all give softmax(logits / 0.5), within 1e-4 of each other; a ``raw`` folder the model's own."""
    from mlkd_lib.deploy.export import export_model
    from mlkd_lib.deploy.predict import load_classifier
    from mlkd_lib.method.checkpoint import save_best
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = _model("layer")
    model.temperature_scaling = {"temperature": 0.5, "fitted_on": "a test", "utterances": 3}
    out = write_hf_folder(model, tmp_path / "hf", study=tmp_path / "study", fold="Ses01F", role="student_sup",
                          cfg=make_config("micro"), provenance={"study": "test"})
    for f in ("config.json", "model.safetensors", "preprocessor_config.json", "README.md", "provenance.json"):
        assert (out / f).is_file(), f
    card = (out / "README.md").read_text()
    assert "synthetic" in card and 'pipeline("audio-classification"' in card and "Ses01F" in card
    assert "temperature-scaled" in card and "T = 0.500" in card
    auto = AutoModelForAudioClassification.from_pretrained(out)
    assert type(auto).__name__ == "Wav2Vec2ForSequenceClassification" and auto.config.id2label[2] == "ang"
    assert auto.config.temperature_scaling == {**model.temperature_scaling, "applied": True}
    export_model(model, tmp_path / "m.onnx")
    save_best(model, tmp_path / "best.pt", "student_sup", 1, 0.5, model.temperature_scaling)
    deployed = [load_classifier(tmp_path / "m.onnx"), load_classifier(tmp_path / "best.pt")]
    classify = pipeline("audio-classification", model=str(out))
    for seconds in (0.8, 2.1):
        x = speech_like(rng, seconds)
        got = {r["label"]: r["score"] for r in classify({"raw": x, "sampling_rate": 16_000}, top_k=len(EMOTIONS))}
        with torch.no_grad():
            want = torch.softmax(model(torch.from_numpy(x)[None]).logits[0].double() / 0.5, -1).numpy()
        assert set(got) == set(EMOTIONS)
        np.testing.assert_allclose([got[e] for e in EMOTIONS], want, atol=1e-4)
        for classifier in deployed:
            np.testing.assert_allclose(classifier.probabilities(x), want, atol=1e-4)
    raw = to_hf(model, raw=True)
    assert raw.config.temperature_scaling["applied"] is False
    with torch.no_grad():
        theirs = torch.softmax(raw(**feature_extractor(model)(x, sampling_rate=16_000, return_tensors="pt")).logits, -1)
    np.testing.assert_allclose(theirs[0].numpy(), _ours(model, x), atol=1e-5)
    with pytest.raises(FileExistsError):
        write_hf_folder(model, out, study=tmp_path, fold="Ses01F", role="student_sup", cfg=make_config("micro"),
                        provenance={})


SIX = ("sad", "fea", "neu", "dis", "ang", "hap")  # not the paper's order: the model's labels travel, not a constant
SMALL = dict(hidden_size=16, num_hidden_layers=4, num_attention_heads=2, intermediate_size=32, conv_dim=(8, 8, 8),
             conv_stride=(5, 4, 4), conv_kernel=(10, 4, 4), num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2,
             mask_time_prob=0.05)
FAMILIES = {"wavlm": (lambda: WavLMConfig(**SMALL, feat_extract_norm="group", num_buckets=32, max_bucket_distance=64),
                      "WavLMForSequenceClassification"),
            "hubert": (lambda: HubertConfig(**SMALL, feat_extract_norm="layer"), "HubertForSequenceClassification"),
            "data2vec-audio": (lambda: Data2VecAudioConfig(**dict(SMALL, num_conv_pos_embeddings=2),
                                                           conv_pos_kernel_size=5),
                               "Data2VecAudioForSequenceClassification")}


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_exports_its_own_class_and_the_pipeline_gives_its_six_labels(family, tmp_path, rng, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    make, class_name = FAMILIES[family]
    torch.manual_seed(0)
    teacher = EmotionClassifier(make(), SIX)
    with torch.no_grad():
        teacher.encoder.encoder.layers[0].attention.k_proj.weight.normal_(0, 1.0)  # attention that matters
        teacher.head.weight.normal_(0, 2.0)
    model = build_student(teacher, 2).eval()  # the student, as deployed
    assert model.labels == SIX
    out = write_hf_folder(model, tmp_path / "hf", study=tmp_path / "study", fold="Ses01F", role="student_sup",
                          cfg=make_config("micro"), provenance={})
    card = (out / "README.md").read_text()
    assert ", ".join(SIX) in card and f"[speech-emotion-recognition, {family}," in card
    auto = AutoModelForAudioClassification.from_pretrained(out)
    assert type(auto).__name__ == class_name and [auto.config.id2label[i] for i in range(6)] == list(SIX)
    classify = pipeline("audio-classification", model=str(out))
    for seconds in (0.8, 1.9):
        x = speech_like(rng, seconds)
        got = {r["label"]: r["score"] for r in classify({"raw": x, "sampling_rate": 16_000}, top_k=None)}
        assert set(got) == set(SIX)
        np.testing.assert_allclose([got[e] for e in SIX], _ours(model, x), atol=1e-5)
