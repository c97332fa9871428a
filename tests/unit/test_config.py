"""The config: typed keys, one validation place, every error naming its key."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest

from mlkd_lib.config import PRESETS, StudyConfig, make_config
from mlkd_lib.keys import parse_set


def test_overrides_are_type_checked_and_every_error_names_its_key():
    with pytest.raises(TypeError, match="lr"):
        make_config("demo", **parse_set(["lr=fast"]))
    with pytest.raises(KeyError, match="learning_rate"):
        make_config("demo", learning_rate=0.1)
    with pytest.raises(TypeError, match="snrs"):
        make_config("demo", **parse_set(["snrs=abc"]))
    with pytest.raises(TypeError, match="teacher_epochs"):
        make_config("demo", teacher_epochs="1.5")
    cfg = make_config("demo", **parse_set(["lr=3e-4", "snrs=0,10", "freeze_feature_encoder=true", "folds=Ses01F"]))
    assert cfg.lr == 3e-4 and cfg.snrs == [0.0, 10.0] and cfg.freeze_feature_encoder is True
    assert cfg.folds == ["Ses01F"] and make_config("demo", temperature=3).temperature == 3.0


@pytest.mark.parametrize("pair, rule", [("level=loud", "'p56', 'rms'"), ("teacher_cache=gpu", "'memory'"),
                                        ("alpha=1.5", r"\[0, 1\]"), ("temperature=0", "positive"),
                                        ("emotions=neu,xyz", "distinct codes"), ("label_map=exc", "RAW:CODE"),
                                        ("n_folds=1", "at least 2"), ("vad_aggressiveness=4", "0, 1, 2 or 3")])
def test_allowed_values_are_checked_with_the_rule_in_the_message(pair, rule):
    with pytest.raises(ValueError, match=rf"{pair.split('=')[0]}=.*{rule}"):
        make_config("demo", **parse_set([pair]))


def test_every_key_has_help_and_every_preset_is_valid():
    for f in dataclasses.fields(StudyConfig):
        assert len(f.metadata.get("help", "")) > 10, f.name
    for name in PRESETS:
        assert make_config(name).preset == name


def test_the_paper_preset_is_the_papers_setup():
    """What the paper states: NOISEX-92's five types at 0, 5, 10, 15 and 20 dB, a 6-layer student, batch 8, 200
    epochs, T = 7, alpha = 0.7 (the learning rate, lost from its text, is the design's reading). The integration
    tier runs the preset at two of the SNRs."""
    cfg = make_config("paper")
    assert cfg.snrs == [0.0, 5.0, 10.0, 15.0, 20.0]
    assert cfg.noise_types == ["babble", "f16", "factory", "hfchannel", "volvo"] and cfg.corpus == "iemocap"
    assert (cfg.student_layers, cfg.batch_size, cfg.teacher_epochs, cfg.student_epochs) == (6, 8, 200, 200)
    assert (cfg.temperature, cfg.alpha, cfg.lr) == (7.0, 0.7, 1e-5)


def test_list_keys_prints_every_key_with_type_value_and_help():
    out = subprocess.run([sys.executable, "-m", "mlkd_lib", "study", "--preset", "paper", "--list-keys"],
                         capture_output=True, text=True, check=True).stdout
    lines = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert set(lines) == {f.name for f in dataclasses.fields(StudyConfig)}
    assert "p56|rms" in lines["level"] and "list[float]" in lines["snrs"] and "200" in lines["teacher_epochs"]
    assert "distillation temperature" in lines["temperature"]


def test_a_bad_set_on_the_command_line_names_the_key_and_exits_2(tmp_path):
    run = subprocess.run([sys.executable, "-m", "mlkd_lib", "study", "--preset", "micro", "--out", str(tmp_path / "s"),
                          "--set", "snrs=abc"], capture_output=True, text=True)
    assert run.returncode == 2 and "snrs" in run.stderr and not (tmp_path / "s").exists()


def test_a_study_folder_from_before_a_key_existed_is_not_reused_as_if_it_had_the_default(tmp_path):
    from mlkd_lib.study.runner import _check_same_study
    cfg = make_config("micro")
    cfg.save(tmp_path / "config.json")
    _check_same_study(tmp_path / "config.json", cfg)  # the same settings: fine
    old = cfg.to_json()
    del old["noise_train_fraction"]  # written before the noise split existed (the old behaviour was no split)
    (tmp_path / "config.json").write_text(json.dumps(old))
    with pytest.raises(ValueError, match="noise_train_fraction"):
        _check_same_study(tmp_path / "config.json", cfg)


def test_a_setup_file_gives_keys_and_preset_and_refuses_unknown_keys(tmp_path):
    from mlkd_lib.config import read_setup
    path = tmp_path / "setup.yaml"
    path.write_text("preset: micro\ncorpus: manifest\nmanifest: corpus.csv\nemotions: [ang, dis, fea, hap, neu, sad]\n"
                    "protocol: kfold\nn_folds: 3\n")
    setup = read_setup(path)
    cfg = make_config(setup.pop("preset"), **setup)
    assert (cfg.preset, cfg.protocol, cfg.n_folds, cfg.emotions[1]) == ("micro", "kfold", 3, "dis")
    (tmp_path / "setup.json").write_text('{"emotions": "neu,sad", "nosuchkey": 1}')
    with pytest.raises(KeyError, match="nosuchkey"):
        read_setup(tmp_path / "setup.json")
