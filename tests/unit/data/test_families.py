"""The test-only conditions as a study builds them: which conditions, the audio each gives (seeded, never the clean
reference changed), and unseen noise types that no training mix can draw."""

from __future__ import annotations

import dataclasses

import numpy as np

from mlkd_lib.data.conditions.families import Condition, family_conditions, heard
from mlkd_lib.data.dataset import NoisyPairDataset
from mlkd_lib.data.prepare import bank_types


def test_the_study_scores_every_family_at_its_severities(study_data):
    cfg, data = study_data
    extra = family_conditions(cfg, sorted(data.rirs))
    counts = {f: sum(c.family == f for c in extra) for f in cfg.conditions}
    assert counts == {"unseen_noise": 2, "reverb": 3, "reverb_noise": 3, "telephone": 1, "codec": 3, "clipping": 3}
    far = [c for c in extra if c.family == "reverb_noise"]
    assert {(c.noise, c.snr_db) for c in far} == {("factory", 10.0)}  # the reference noise at reverb_noise_snr
    assert sorted(data.rirs) == [0.3, 0.6, 0.9] and all(len(v) == 1 for v in data.rirs.values())
    assert family_conditions(dataclasses.replace(cfg, conditions=[])) == []


def test_unseen_types_are_in_the_test_bank_and_in_no_training_mix(study_data):
    cfg, data = study_data
    assert bank_types(cfg) == ["babble", "factory", "music"]
    assert "music" in data.noise_bank and set(data.train_noise) == {"babble", "factory"}
    ds = NoisyPairDataset(data.train, data.train_noise, "random", cfg.snrs, cfg.seed, labels=cfg.emotions)
    drawn = set()
    for epoch in range(3):
        ds.set_epoch(epoch)
        drawn |= {ds[i]["noise"] for i in range(len(ds))}
    assert drawn == {"babble", "factory"}


def test_a_condition_is_seeded_per_utterance_and_leaves_the_clean_speech_alone(study_data):
    cfg, data = study_data
    row = data.test.iloc[0]
    ds = NoisyPairDataset(data.test.head(1), data.noise_bank, Condition("codec", None, "codec", 16.0),
                          seed=cfg.seed, labels=cfg.emotions, rirs=data.rirs)
    clean = ds.audio.get(row.utt_id, row.path).copy()
    for family, severity, noise, snr in (("reverb", 0.6, "reverb", None), ("reverb_noise", 0.9, "factory", 10.0),
                                         ("telephone", 1.0, "telephone", None), ("clipping", 0.05, "clipping", None)):
        c = Condition(noise, snr, family, severity)
        a = heard(clean, row.utt_id, c, data.noise_bank, data.rirs, cfg.seed)
        b = heard(clean, row.utt_id, c, data.noise_bank, data.rirs, cfg.seed)
        assert np.array_equal(a, b) and len(a) == len(clean) and not np.allclose(a, clean), family
    item = ds[0]
    assert np.array_equal(item["clean"], clean) and not np.allclose(item["noisy"], clean)
    assert np.array_equal(ds.audio.get(row.utt_id, row.path), clean)  # the clean reference is never changed
