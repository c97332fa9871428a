"""Shared fixtures: a small synthetic corpus and noise bank, made once per test session."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from mlkd_lib.config import make_config
from mlkd_lib.data.conditions.reverb import write_rir_bank
from mlkd_lib.data.manifest import read_manifest
from mlkd_lib.data.noise.bank import load_noise_bank, write_noise_bank
from mlkd_lib.data.prepare import bank_types, load_fold, rir_bank_dir
from mlkd_lib.data.synthetic import make_synthetic_corpus


def pytest_configure(config):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before any test module imports transformers: no Hub at all


@pytest.fixture(scope="session", autouse=True)
def cache(tmp_path_factory, worker_id):
    """The session's own ``$MLKD_CACHE`` (the simulated rooms), shared by its pytest-xdist workers and by the
    commands the tests run: never the user's."""
    base = tmp_path_factory.getbasetemp()
    folder = (base if worker_id == "master" else base.parent) / "cache"
    os.environ["MLKD_CACHE"] = str(folder)
    return folder


@pytest.fixture(scope="session")
def micro_data(tmp_path_factory):
    """10 speakers × 4 emotions × 2 utterances, and a 5-second five-type noise bank."""
    root = tmp_path_factory.mktemp("micro")
    make_synthetic_corpus(root / "synthetic", seed=0, per_class=2, progress=False)
    write_noise_bank(root / "noise", seed=0, seconds=5.0)
    cfg = make_config("micro", data_dir=str(root), threads=1, conditions=[])  # the trained noise only
    return cfg, read_manifest(cfg.manifest_path), load_noise_bank(cfg.noise_bank_dir)


@pytest.fixture(scope="session")
def study_data(micro_data, tmp_path_factory):
    """The micro corpus with the micro preset's test-only conditions: one unseen type (music), one room per RT60."""
    corpus_cfg = micro_data[0]
    root = tmp_path_factory.mktemp("robust")
    (root / "synthetic").symlink_to(corpus_cfg.manifest_path.parent, target_is_directory=True)
    cfg = make_config("micro", data_dir=str(root), threads=1, rir_rooms=1, unseen_noise_types=["music"])
    write_noise_bank(cfg.noise_bank_dir, None, cfg.synth_seed, cfg.noise_seconds, bank_types(cfg))
    write_rir_bank(rir_bank_dir(cfg), (0.3, 0.6, 0.9), cfg.rir_rooms, cfg.synth_seed)
    return cfg, load_fold(cfg, "Ses01F")


# the shared micro study's settings: a teacher of five epochs, long enough to be killed while it trains
MICRO_STUDY = {"teacher_epochs": 5}


@pytest.fixture(scope="session")
def micro_study(tmp_path_factory, worker_id):
    """One fold of the micro study, run through the real notebooks by papermill: the reference every test of a
    study's outputs reads, and every interrupted or Ray-run study must reproduce byte for byte. Made once a
    session: on pytest-xdist workers, the first worker to ask runs it and the others wait for it."""
    from filelock import FileLock

    from mlkd_lib.study.runner import run_study
    if worker_id == "master":  # no workers: this session's own
        root = tmp_path_factory.mktemp("study")
    else:  # every worker's base folder lies in the session's
        root = tmp_path_factory.getbasetemp().parent / "shared_micro_study"
        root.mkdir(exist_ok=True)
    study, overrides = root / "study", {"data_dir": str(root / "data"), **MICRO_STUDY}
    made = root / "exit_code.json"
    with FileLock(root / "made.lock"):
        if not made.is_file():
            made.write_text(json.dumps(run_study("micro", str(study), "Ses01F", overrides, jobs=2)))
    return study, overrides, json.loads(made.read_text())


# `make test` runs the integration tier on pytest-xdist workers (--dist loadscope), in groups of about equal time, a
# group on a worker. The modules that read the shared micro study in place (one reruns it, one checks that a sweep
# never writes there) share a group, which makes that study first, with the paper-shaped runs and the README's own
# setup; every Ray test is in the other group (so that no two Ray instances start at once), which reads the shared
# study last, with the corpora as they ship and the downloaded forms.
GROUPS = {"shared micro study": {"test_deploy", "test_lab_browser", "test_listen_browser", "test_study", "test_sweep",
                                 "test_kernels", "test_paper_shape", "test_your_data"},
          "ray, corpora": {"test_failures", "test_ray_executor", "test_corpora_as_they_ship", "test_data_sources"}}
GROUP_OF = {module: group for group, modules in GROUPS.items() for module in modules}


def _module(nodeid: str) -> str:
    return Path(nodeid.split("::", 1)[0]).stem


def pytest_collection_modifyitems(config, items):
    """The other group's tests that read the shared micro study run after the rest of it, by when the first
    group's worker has made the study (they wait on it otherwise)."""
    def waits(item):
        return "micro_study" in item.fixturenames and GROUP_OF.get(_module(item.nodeid)) != "shared micro study"

    items.sort(key=waits)


def pytest_xdist_make_scheduler(config, log):
    """loadscope with the groups above as the integration tier's scopes, a module in none a scope of its own
    (xdist's own ``xdist_group`` marks are lost under pytest 9.2, whose node ids no longer take xdist's suffix)."""
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class Groups(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            grouped = "/integration/" in nodeid.split("::", 1)[0] and _module(nodeid) in GROUP_OF
            return GROUP_OF[_module(nodeid)] if grouped else super()._split_scope(nodeid)

    return Groups(config, log)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
