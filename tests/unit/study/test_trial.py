"""A setup's study and data go beside it, named after it; the trial is the setup at a trial's size (a few utterances
of each class in one fold), which ``--set`` still overrides; an older study's config.json still reads as its own."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mlkd_lib.config import make_config, read_setup, trial_settings
from mlkd_lib.data.prepare import at_most
from mlkd_lib.study.plan import fold_shares
from mlkd_lib.study.runner import _check_same_study, configure


def test_at_most_keeps_that_many_of_each_class_drawn_by_seed_in_their_order():
    rows = pd.DataFrame({"utt_id": [f"u{i}" for i in range(11)],
                         "emotion": ["neu"] * 5 + ["hap"] * 2 + ["ang"] * 4})
    kept = at_most(rows, 3, seed=0)
    assert kept.emotion.value_counts().to_dict() == {"neu": 3, "hap": 2, "ang": 3}  # hap has only two
    order = [int(u[1:]) for u in kept.utt_id]
    assert order == sorted(order) and list(kept.index) == list(range(8)) and list(kept.columns) == ["utt_id", "emotion"]
    draws = {tuple(at_most(rows, 3, seed=s).utt_id) for s in range(6)}
    assert len(draws) > 1  # the seed decides which
    assert at_most(rows, 3, seed=4).equals(at_most(rows, 3, seed=4))
    assert at_most(rows, 0, seed=0).equals(rows)  # 0: every utterance
    assert at_most(rows, 5, seed=0).emotion.value_counts().to_dict() == {"neu": 5, "hap": 2, "ang": 4}


def test_the_trial_keeps_the_lowest_and_highest_snr_and_scores_enhancement_at_the_lowest():
    sized = trial_settings(make_config("paper", snrs=[10.0, 0.0, 20.0, 5.0]))
    assert sized["snrs"] == [0.0, 20.0] and sized["enhancement_snrs"] == [0.0]
    assert (sized["fold_utterances"], sized["teacher_epochs"], sized["student_epochs"]) == (2, 1, 1)
    assert trial_settings(make_config("paper", snrs=[5.0]))["snrs"] == [5.0]


def test_a_setup_owns_its_data_and_results_and_the_trial_goes_beside_them(tmp_path):
    setup = tmp_path / "setups" / "ravdess.yaml"
    setup.parent.mkdir()
    setup.write_text("preset: micro\nsnrs: [0, 10, 20]\n")
    assert read_setup(setup)["data_dir"] == str(setup.parent / "data" / "ravdess")
    study, cfg, _ = configure(None, None, "all", {"teacher_epochs": 3}, 1, "local", None, str(setup), trial=True)
    assert study == setup.parent / "results" / "ravdess-trial"
    assert cfg.data_dir == str(setup.parent / "data" / "ravdess") and cfg.folds == ["Ses01F"]  # the first fold
    assert cfg.snrs == [0.0, 20.0] and cfg.fold_utterances == 2 and cfg.student_epochs == 1
    assert cfg.teacher_epochs == 3  # --set wins over the trial's size
    study, cfg, _ = configure("demo", None, "Ses02M", {"model": "micro"}, 1, "local", None, str(setup))
    assert study == setup.parent / "results" / "ravdess-demo" and cfg.folds == ["Ses02M"]  # another preset
    assert cfg.fold_utterances == 0 and cfg.snrs == [0.0, 10.0, 20.0]
    named = tmp_path / "elsewhere"
    study, cfg, _ = configure(None, str(named), "all", {"data_dir": str(tmp_path / "d")}, 1, "local", None,
                              str(setup))
    assert study == named and cfg.data_dir == str(tmp_path / "d")


def test_a_trials_plan_prices_its_capped_parts():
    cfg = make_config("micro", fold_utterances=2, emotions=["neu", "hap", "ang", "sad"], protocol="loso",
                      val_fraction=0.25)
    # 10 speakers × 40 utterances of 3 s: a fold trains on 9 × 40 × 0.75 = 270, validates on 90, tests on 40
    durations = pd.DataFrame({"speaker": np.repeat([f"s{i}" for i in range(10)], 40), "duration_s": 3.0})
    cut = durations.duration_s
    whole = fold_shares(make_config("micro", val_fraction=0.25), durations, cut)
    assert (whole.train_n, whole.train_s, whole.val_s, whole.test_s) == pytest.approx((270, 810, 270, 120))
    capped = fold_shares(cfg, durations, cut)  # at most 2 × 4 classes = 8 utterances a part, 24 s
    assert (capped.train_n, capped.train_s, capped.val_s, capped.test_s) == pytest.approx((8, 24, 24, 24))


def test_an_older_study_without_a_key_added_since_reads_as_it_ran(tmp_path):
    cfg = make_config("micro")
    old = cfg.to_json()
    del old["fold_utterances"]  # a study from before the key
    path = tmp_path / "config.json"
    path.write_text(json.dumps(old))
    _check_same_study(path, cfg)  # the key's value is what that study did: not a change
    with pytest.raises(ValueError, match="fold_utterances"):
        _check_same_study(path, make_config("micro", fold_utterances=4))
    del old["beta"]  # a key whose old behaviour need not be its default: a change
    path.write_text(json.dumps(old))
    with pytest.raises(ValueError, match="beta"):
        _check_same_study(path, cfg)
