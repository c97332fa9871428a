"""Where a relative path points: typed on the command line, the current folder (as a shell user means it); in a
setup file, the file's own folder; in a preset's defaults or a notebook's parameters, the project root, whatever
the working directory (a JupyterLab kernel runs in notebooks/)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from mlkd_lib.cli import main
from mlkd_lib.config import make_config, read_setup
from mlkd_lib.paths import newest_study, project_root, resolve, with_absolute_paths
from mlkd_lib.study.notebook import notebook_config, notebook_study, open_study


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setenv("MLKD_ROOT", str(tmp_path / "project"))
    (tmp_path / "project" / "notebooks").mkdir(parents=True)
    return tmp_path / "project"


def test_without_mlkd_root_the_root_is_the_checkout(monkeypatch):
    monkeypatch.delenv("MLKD_ROOT", raising=False)
    assert (project_root() / "pyproject.toml").is_file() and (project_root() / "mlkd_lib").is_dir()


def test_config_paths_do_not_move_with_the_working_directory(root, monkeypatch):
    monkeypatch.chdir(root / "notebooks")  # where JupyterLab starts a notebook's kernel
    from_notebooks = with_absolute_paths(make_config("paper", model="data/w2v"))
    monkeypatch.chdir(root)
    from_root = with_absolute_paths(make_config("paper", model="data/w2v"))
    assert from_notebooks == from_root
    assert from_root.data_dir == str(root / "data" / "paper")
    assert from_root.iemocap_root == str(root / "data" / "IEMOCAP_full_release")
    assert from_root.model == "data/w2v"  # no such folder: left for the Hugging Face cache to name
    (root / "data" / "w2v").mkdir(parents=True)
    assert with_absolute_paths(make_config("paper", model="data/w2v")).model == str(root / "data" / "w2v")
    assert resolve("/abs/x") == Path("/abs/x") and resolve("rel/x") == root / "rel" / "x"


def test_a_setup_file_s_paths_are_relative_to_its_own_folder(tmp_path):
    (tmp_path / "setups" / "enc").mkdir(parents=True)
    setup = tmp_path / "setups" / "cremad.yaml"
    setup.write_text("manifest: data/cremad.csv\nnoise_dir: ../noise\nmodel: enc\ntest_manifests: [emodb.csv, "
                     "/abs/ravdess.csv]\nrir_dir: rirs\nemotions: [ang, hap]\n")
    keys = read_setup(setup)
    here = tmp_path / "setups"
    assert keys["manifest"] == str(here / "data" / "cremad.csv") and keys["noise_dir"] == str(here / ".." / "noise")
    assert keys["model"] == str(here / "enc") and keys["rir_dir"] == str(here / "rirs")
    assert keys["test_manifests"] == [str(here / "emodb.csv"), "/abs/ravdess.csv"]
    assert keys["emotions"] == ["ang", "hap"]  # not a path: as written
    setup.write_text("model: wavlm-base-plus\n")  # no such folder there: a Hugging Face id, as written
    assert read_setup(setup)["model"] == "wavlm-base-plus"


def test_the_command_line_s_paths_are_relative_to_the_current_folder(root, tmp_path, monkeypatch):
    """``mlkd study --config cremad.yaml`` in the folder that holds it finds it; --out and --set paths land there."""
    import mlkd_lib.study.runner as runner
    work = tmp_path / "work"
    work.mkdir()
    (work / "cremad.yaml").write_text("manifest: cremad.csv\n")
    seen = {}
    monkeypatch.setattr(runner, "run_study", lambda *a, **k: seen.update(args=a) or 0)
    monkeypatch.chdir(work)
    with pytest.raises(SystemExit):
        main(["study", "--config", "cremad.yaml", "--out", "results/cremad", "--set", "data_dir=d",
              "--set", "noise_dir=noise", "--set", "emotions=ang,hap"])
    preset, out, folds, overrides, *_, config_file, trial = seen["args"]
    assert config_file == str(work / "cremad.yaml") and out == str(work / "results" / "cremad") and not trial
    assert overrides == {"data_dir": str(work / "d"), "noise_dir": str(work / "noise"), "emotions": "ang,hap"}
    assert read_setup(config_file)["manifest"] == str(work / "cremad.csv")


def test_notebooks_run_by_hand_share_one_study_that_04_and_05_open(root, monkeypatch):
    monkeypatch.chdir(root / "notebooks")
    cfg = notebook_config("", "micro")  # 01 → 03 with their defaults
    study = notebook_study("", "micro")
    assert study == root / "results" / "micro-notebooks"
    assert (study / "config.json").is_file() and cfg.data_dir == str(root / "data" / "micro")
    assert notebook_config("", "micro", teacher_epochs=3).teacher_epochs == 3  # a notebook's own parameter wins
    assert open_study("") == study  # 04 and 05 with their defaults
    assert open_study("results/micro-notebooks") == study


def test_the_newest_study_is_the_one_with_the_latest_finished_step(root):
    for name in ("old", "new"):
        (root / "results" / name).mkdir(parents=True)
        (root / "results" / name / "config.json").write_text("{}")
    done = root / "results" / "old" / "folds" / "Ses01F" / "teacher" / "done.json"
    done.parent.mkdir(parents=True)
    done.write_text("{}")
    later = time.time() + 10
    os.utime(done, (later, later))
    assert newest_study() == root / "results" / "old"


def test_without_any_study_the_error_says_what_to_run(root):
    with pytest.raises(FileNotFoundError, match="make demo"):
        newest_study()
