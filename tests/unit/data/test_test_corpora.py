"""Another corpus scored by the study (``test_manifests``), end to end on values worked by hand: its table's words
mapped to the study's codes by ``label_map``, its extra classes dropped, a class the study has and it lacks left
out of its UA, every kept utterance scored under clean speech and the trained noise at each SNR (under its own
audio, even where its ids repeat the study's), and the ``corpus`` family kept out of the mCE and of the pooled
unseen contrast."""

from __future__ import annotations

import types

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
from helpers.corpora import voice

from mlkd_lib.analysis.corruption import CORPUS_POOLED, UNSEEN_POOLED, corruption_errors, unseen_differences
from mlkd_lib.arms import study_arms
from mlkd_lib.config import make_config
from mlkd_lib.data import prepare  # its test_classes is no test: not imported by name
from mlkd_lib.data.conditions import corpus
from mlkd_lib.data.conditions.families import Condition, corpus_conditions
from mlkd_lib.data.folds import Fold
from mlkd_lib.data.prepare import FoldData, load_test_corpora, prepare_test_corpus

STUDY = ["neu", "hap", "ang", "sad"]
WORDS = ["neutral:neu", "happiness:hap", "anger:ang"]  # the table says words; the study speaks codes
# EmoDB's file names (speaker, text, emotion letter of the German word, version), 16 kHz mono as it ships; the
# table's emotion in English words. Seconds chosen for the stand-in model below: it predicts class
# (samples // 8000) % 4 of (neu, hap, ang, sad) on clean speech, and the next class where it hears noise.
EMODB = [("03a01Na.wav", "neutral", 0.6, "03"),   # 9600 samples: hap (wrong); noisy ang (wrong)
         ("08a05Nb.wav", "neutral", 0.45, "08"),  # 7200: neu (right); noisy hap (wrong)
         ("03a01Fa.wav", "happiness", 0.6, "03"),  # hap (right); noisy ang (wrong)
         ("08a02Fd.wav", "happiness", 0.65, "08"),  # hap (right); noisy ang (wrong)
         ("03a01Wa.wav", "anger", 1.1, "03"),  # 17600: ang (right); noisy sad (wrong)
         ("08a02Wb.wav", "anger", 0.55, "08"),  # 8800: hap (wrong); noisy ang (right)
         ("08a07Wc.wav", "anger", 1.2, "08"),  # 19200: ang (right); noisy sad (wrong)
         ("03a04La.wav", "boredom", 0.6, "03"),  # not a class of the study: never scored
         ("08a01Ea.wav", "disgust", 0.6, "08")]
KEPT = {"03a01Na": "neu", "08a05Nb": "neu", "03a01Fa": "hap", "08a02Fd": "hap", "03a01Wa": "ang", "08a02Wb": "ang",
        "08a07Wc": "ang"}
# clean: neu 1 of 2, hap 2 of 2, ang 2 of 3 (sad: none to recall, so not averaged in); noisy: ang 1 of 3
CLEAN_UA, CLEAN_WA = (1 / 2 + 2 / 2 + 2 / 3) / 3, 5 / 7
NOISY_UA, NOISY_WA = (0 / 2 + 0 / 2 + 1 / 3) / 3, 1 / 7


def emodb_table(root) -> str:
    root.mkdir(parents=True)
    for k, (name, _, seconds, _) in enumerate(EMODB):
        sf.write(root / name, voice(seconds, 16_000, 120.0 + 10 * k, seed=k), 16_000, subtype="PCM_16")
    pd.DataFrame([dict(path=name, emotion=word, speaker=speaker) for name, word, _, speaker in EMODB]).to_csv(
        root / "emodb.csv", index=False)
    return str(root / "emodb.csv")


def study_config(tmp_path, table, label_map=WORDS, emotions=STUDY):
    return make_config("micro", data_dir=str(tmp_path / "data"), emotions=emotions, label_map=label_map,
                       test_manifests=[table], noise_types=["babble"], snrs=[0.0, 10.0], conditions=[], device="cpu")


def test_the_test_corpus_keeps_the_studys_classes_by_label_map_and_drops_the_rest(tmp_path):
    table = emodb_table(tmp_path / "emodb")
    cfg = study_config(tmp_path, table)
    manifest = pd.read_csv(prepare_test_corpus(cfg, table, progress=False))
    assert dict(zip(manifest.utt_id, manifest.emotion)) == KEPT  # words → codes; boredom and disgust gone
    assert set(manifest.corpus) == {"emodb"} and len(manifest) == 7
    assert list(load_test_corpora(cfg)["emodb"].utt_id) == list(manifest.utt_id)
    # the label map changed: the corpus is made again (anger no longer maps to a class of the study)
    cfg = study_config(tmp_path, table, label_map=WORDS[:2])
    again = pd.read_csv(prepare_test_corpus(cfg, table, progress=False))
    assert dict(zip(again.utt_id, again.emotion)) == {u: e for u, e in KEPT.items() if e != "ang"}
    # the classes changed: made again too
    cfg = study_config(tmp_path, table, emotions=["neu", "hap"])
    assert set(pd.read_csv(prepare_test_corpus(cfg, table, progress=False)).emotion) == {"neu", "hap"}


def test_a_test_corpus_without_any_class_of_the_study_is_refused_naming_its_labels(tmp_path):
    table = pd.DataFrame({"utt_id": ["a", "b"], "emotion": ["boredom", "disgust"]})
    with pytest.raises(ValueError, match=r"test corpus x\.csv: no utterance of the study's classes neu, hap, ang, "
                                         r"sad \(its labels: boredom, disgust\)"):
        prepare.test_classes(table, make_config("micro", emotions=STUDY, label_map=WORDS), "x.csv")
    kept = prepare.test_classes(pd.DataFrame({"emotion": ["anger", "sad", "fear", "neu"]}),
                        make_config("micro", emotions=STUDY, label_map=WORDS), "x.csv")
    assert list(kept.emotion) == ["ang", "sad", "neu"] and list(kept.index) == [0, 1, 2]


def test_the_corpus_family_is_clean_speech_and_each_trained_noise_at_each_snr():
    cfg = make_config("micro", noise_types=["babble", "factory"], snrs=[0.0, 10.0])
    got = corpus_conditions(cfg, "emodb")
    assert got == [Condition("clean", None, "corpus", None, "emodb"),
                   Condition("babble", 0.0, "corpus", 0.0, "emodb"), Condition("babble", 10.0, "corpus", 10.0, "emodb"),
                   Condition("factory", 0.0, "corpus", 0.0, "emodb"),
                   Condition("factory", 10.0, "corpus", 10.0, "emodb")]
    assert [(c.condition, c.level, c.noise_name) for c in got[:2]] == [("corpus", None, "emodb/clean"),
                                                                        ("corpus", 0.0, "emodb/babble")]
    assert corpus.conditions(make_config("micro", test_corpus_noise=False), "emodb") == [got[0]]


class LengthModel(torch.nn.Module):
    """Stands in for a trained model: class (samples // 8000) % 4, one class on where its first 0.1 s (near silence
    in every recording here) is loud: a noise was mixed in."""

    labels = tuple(STUDY)

    def __init__(self):
        super().__init__()
        self.unused = torch.nn.Linear(1, 1)

    def uses_attention_mask(self) -> bool:
        return True

    def forward(self, x, lengths, output_hidden_states=False):
        logits = torch.zeros(len(x), 4)
        for i, n in enumerate(lengths.tolist()):
            noisy = float(x[i, :1600].pow(2).mean().sqrt()) > 0.005
            logits[i, (n // 8000 + noisy) % 4] = 1.0
        return types.SimpleNamespace(logits=logits)


def test_every_kept_utterance_is_scored_under_its_own_audio_and_each_condition(tmp_path):
    from mlkd_lib.study.notebook import evaluate_and_save
    table = emodb_table(tmp_path / "emodb")
    cfg = study_config(tmp_path, table)
    prepare_test_corpus(cfg, table, progress=False)
    # the study's own test speaker has an utterance whose id is one of EmoDB's, shorter: 0.3 s, neutral
    own = tmp_path / "own.wav"
    sf.write(own, voice(0.3, 16_000, 150.0), 16_000)
    test = pd.DataFrame([dict(utt_id="03a01Wa", path=str(own), emotion="neu", speaker="S1")])
    noise = {"babble": np.random.default_rng(0).standard_normal(48_000).astype(np.float32)}
    data = FoldData(Fold("S1", ("S1",), ("S2",)), test.iloc[:0], test.iloc[:0], test, noise, noise, {},
                    load_test_corpora(cfg))
    (tmp_path / "out").mkdir()
    metrics = evaluate_and_save(LengthModel(), "student_sup", cfg, data, tmp_path / "out", progress=False)
    rows = metrics[metrics.condition == "corpus"].set_index("noise")
    assert sorted(rows.index) == ["emodb/babble", "emodb/babble", "emodb/clean"]
    clean = rows.loc["emodb/clean"]
    assert clean.ua == pytest.approx(CLEAN_UA) and clean.wa == pytest.approx(CLEAN_WA) and clean.n == 7
    assert pd.isna(clean.severity) and pd.isna(clean.snr_db)
    noisy = rows.loc["emodb/babble"].sort_values("snr_db")
    assert list(noisy.snr_db) == [0.0, 10.0] and list(noisy.severity) == [0.0, 10.0]
    assert np.allclose(noisy.ua, NOISY_UA) and np.allclose(noisy.wa, NOISY_WA) and list(noisy.n) == [7, 7]
    # the study's own utterance, 0.3 s: neutral, predicted neutral on clean speech
    own_clean = metrics[(metrics.condition == "clean")].iloc[0]
    assert own_clean.ua == 1.0 and own_clean.n == 1
    pred = pd.read_csv(tmp_path / "out" / "predictions.csv")
    scored = pred[pred.noise == "emodb/clean"]
    assert dict(zip(scored.utt_id, scored.label)) == {u: STUDY.index(e) for u, e in KEPT.items()}


def metrics_with_a_corpus() -> pd.DataFrame:
    """Two folds (A +0.05, B −0.05 on every UA); clean, reverb 0.3 s (unseen) and the corpus emodb clean (no
    severity) and under babble at 0 dB."""
    ua = {"teacher": (0.8, 0.6, 0.5, 0.3), "student_sup": (0.7, 0.6, 0.6, 0.5), "student_unsup": (0.7, 0.5, 0.4, 0.45)}
    cells = [("clean", "clean", None, None), ("reverb", "reverb", 0.3, None), ("corpus", "emodb/clean", None, None),
             ("corpus", "emodb/babble", 0.0, 0.0)]
    return pd.DataFrame([dict(model=m, condition=c, severity=s, noise=n, snr_db=snr, fold=f, ua=u + shift, wa=u, n=10)
                         for m, values in ua.items() for (c, n, s, snr), u in zip(cells, values)
                         for f, shift in (("A", 0.05), ("B", -0.05))])


def test_the_corpus_has_its_ce_and_stays_out_of_the_mce():
    ce = corruption_errors(metrics_with_a_corpus()).set_index(["model", "family", "seen"])
    # errors: teacher clean 0.2, reverb 0.4, corpus 0.5 and 0.7; student clean 0.3, reverb 0.4, corpus 0.4 and 0.5
    row = ce.loc[("student_sup", "corpus", False)]
    assert row.ce == pytest.approx((0.4 + 0.5) / (0.5 + 0.7))
    assert row.relative_ce == pytest.approx(((0.4 - 0.3) + (0.5 - 0.3)) / ((0.5 - 0.2) + (0.7 - 0.2)))
    for seen in (True, False):  # the mean over reverb alone: 0.4 / 0.4
        assert ce.loc[("student_sup", "mCE", seen)].ce == pytest.approx(1.0)
        assert ce.loc[("student_sup", "mCE", seen)].relative_ce == pytest.approx((0.4 - 0.3) / (0.4 - 0.2))


def test_the_corpus_contrast_is_pooled_apart_from_the_unseen_one():
    arms = study_arms(make_config("micro", control_arm=False))
    d = unseen_differences(metrics_with_a_corpus(), arms).set_index(["comparison", "noise"])
    paper = "MLKD (teacher init) − CE (pretrained init)"
    assert d.loc[(paper, UNSEEN_POOLED), "mean"] == pytest.approx(100 * (0.6 - 0.5))  # reverb alone
    assert d.loc[(paper, CORPUS_POOLED), "mean"] == pytest.approx(100 * ((0.6 - 0.4) + (0.5 - 0.45)) / 2)
    assert d.loc[(paper, "pooled reverb"), "mean"] == pytest.approx(10.0)
    # one corpus row, its own pre-specified test: not among the unseen families that share a BH q
    assert d.index.tolist().count((paper, CORPUS_POOLED)) == 1 and np.isnan(d.loc[(paper, CORPUS_POOLED), "q_bh"])


def test_table4_names_the_corpus_clean_speech_and_its_snrs(tmp_path):
    from mlkd_lib.analysis.corruption import write_table4
    md = write_table4(tmp_path, metrics_with_a_corpus(), synthetic=False).read_text()
    rows = [[c.strip() for c in line.strip("|").split("|")][:3] for line in md.splitlines() if "corpus" in line]
    assert rows == [["corpus (unseen)", "0 dB SNR", "30.0 ± 7.1"], ["corpus (unseen)", "clean", "50.0 ± 7.1"],
                    ["CE: corpus (unseen)", "", "1.00 (rel. 1.00)"]]  # its clean speech after its SNRs
