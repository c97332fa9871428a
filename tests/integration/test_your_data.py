"""The study on a researcher's own data: a CREMA-D-shaped corpus (six classes, its recipe), speaker-independent
k-fold, a MUSAN-shaped noise folder of folders and a tiny WavLM from a folder, set up by one file — through the
real notebooks, to the tables, plots and a Hugging Face export that carry the six classes."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from mlkd_lib.cli import main
from mlkd_lib.data.audio import speech_like

SIX = ["ang", "dis", "fea", "hap", "neu", "sad"]


def cremad_tree(root, actors=("1001", "1002", "1003", "1004", "1005", "1006"), sentences=("DFA", "IEO")):
    """AudioWAV/{actor}_{sentence}_{EMO}_{level}.wav with VideoDemographics.csv; each emotion its own pitch."""
    rng = np.random.default_rng(0)
    for a in actors:
        for e, emo in enumerate(("ANG", "DIS", "FEA", "HAP", "NEU", "SAD")):
            for s in sentences:
                x = speech_like(rng, seconds=0.6 + 0.1 * e, pause_s=0.1)
                path = root / "AudioWAV" / f"{a}_{s}_{emo}_{'HI' if e % 2 else 'XX'}.wav"
                path.parent.mkdir(parents=True, exist_ok=True)
                sf.write(str(path), x, 16_000)
    pd.DataFrame({"ActorID": [int(a) for a in actors], "Age": 30, "Sex": ["Male", "Female"] * (len(actors) // 2),
                  "Race": "", "Ethnicity": ""}).to_csv(root / "VideoDemographics.csv", index=False)


def musan_tree(root):
    """noise/free-sound and noise/sound-bible, two files each (other rates, one stereo), a README beside."""
    rng = np.random.default_rng(1)
    for kind, rate in (("free-sound", 16_000), ("sound-bible", 22_050)):
        for i in range(2):
            x = 0.1 * rng.standard_normal((int(3 * rate), 2 if i else 1))
            path = root / "noise" / kind / f"noise-{kind}-{i:04d}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(str(path), x if i else x[:, 0], rate)
    (root / "noise" / "README").write_text("MUSAN noise")


def tiny_wavlm(folder):
    from transformers import WavLMConfig, WavLMModel
    config = WavLMConfig(hidden_size=16, num_hidden_layers=4, num_attention_heads=2, intermediate_size=32,
                         conv_dim=(8,) * 7, conv_stride=(5, 2, 2, 2, 2, 2, 2), conv_kernel=(10, 3, 3, 3, 3, 2, 2),
                         num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, feat_extract_norm="layer",
                         num_buckets=32, max_bucket_distance=80, mask_time_prob=0.0)
    WavLMModel(config).save_pretrained(folder)


@pytest.fixture(scope="module")
def cremad_study(tmp_path_factory):
    """The recipe, then one fold of a three-fold study set up by a YAML file (about a minute)."""
    from mlkd_lib.study.runner import run_study
    root = tmp_path_factory.mktemp("your_data")
    cremad_tree(root / "CREMA-D")
    musan_tree(root / "musan")
    tiny_wavlm(root / "wavlm")
    main(["data", "cremad", "--root", str(root / "CREMA-D"), "--out", str(root / "cremad.csv")])
    setup = root / "setup.yaml"
    setup.write_text(f"""preset: micro
corpus: manifest
manifest: {root / 'cremad.csv'}
emotions: [{', '.join(SIX)}]
protocol: kfold
n_folds: 3
noise_dir: {root / 'musan' / 'noise'}
noise_types: [free-sound, sound-bible]
conditions: [codec]
model: {root / 'wavlm'}
control_arm: false
data_dir: {root / 'data'}
""")
    study = root / "study"
    code = run_study(None, str(study), "fold1", jobs=2, config_file=str(setup))
    return study, code


@pytest.mark.slow
def test_six_classes_kfold_musan_and_wavlm_run_end_to_end(cremad_study):
    study, code = cremad_study
    assert code == 0
    config = json.loads((study / "config.json").read_text())
    assert config["emotions"] == SIX and config["protocol"] == "kfold" and config["corpus"] == "manifest"
    manifest = pd.read_csv(study.parent / "data" / "manifest" / "manifest.csv")
    assert sorted(manifest.emotion.unique()) == SIX and manifest.speaker.nunique() == 6
    metrics = pd.read_csv(study / "metrics.csv")
    assert set(metrics.fold) == {"fold1"}
    assert set(metrics.model) == {"teacher", "baseline", "student_sup", "student_unsup"}
    assert set(metrics.noise) == {"clean", "free-sound", "sound-bible", "codec"}
    assert sorted(metrics[metrics.condition == "codec"].severity.unique()) == [8, 16, 32]  # a test-only family too
    # fold1's test speakers (two of six) never trained: their utterances are the test set, all six classes
    pred = pd.read_csv(study / "folds" / "fold1" / "student_sup" / "predictions.csv")
    assert [c for c in pred.columns if c.startswith("p_")] == [f"p_{e}" for e in SIX]
    assert np.allclose(pred[[f"p_{e}" for e in SIX]].sum(axis=1), 1, atol=1e-5)
    assert set(pred.label) == set(range(6))
    test_speakers = set(manifest.set_index("utt_id").loc[pred.utt_id.unique(), "speaker"])
    assert len(test_speakers) == 2
    for name in ("table1.md", "table2.md", "stats.csv", "plots/confusion.png", "plots/ua_vs_snr.png"):
        assert (study / name).is_file(), name
    stats = pd.read_csv(study / "stats.csv")
    assert (stats.n_folds == 1).all()  # one fold run: the unit of replication is said, and there is one


@pytest.mark.slow
def test_the_exported_student_carries_the_six_classes(cremad_study, tmp_path):
    from transformers import pipeline

    from mlkd_lib.deploy.export import export_from_study
    study, code = cremad_study
    assert code == 0
    folder = tmp_path / "hf"
    export_from_study(study, "fold1", "student_sup", folder, fmt="hf")
    hf_config = json.loads((folder / "config.json").read_text())
    assert hf_config["model_type"] == "wavlm" and [hf_config["id2label"][str(i)] for i in range(6)] == SIX
    manifest = pd.read_csv(study.parent / "data" / "manifest" / "manifest.csv")
    x, rate = sf.read(manifest.path.iloc[0], dtype="float32")
    out = pipeline("audio-classification", model=str(folder), top_k=None)({"raw": x, "sampling_rate": rate})
    assert sorted(r["label"] for r in out) == SIX and abs(sum(r["score"] for r in out) - 1) < 1e-4
    onnx = tmp_path / "student.onnx"
    export_from_study(study, "fold1", "student_sup", onnx)
    assert json.loads(onnx.with_suffix(".json").read_text())["labels"] == SIX
