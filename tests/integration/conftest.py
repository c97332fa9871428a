"""What the integration tier's modules that run the docs share."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def place(tmp_path_factory):
    """A user's working folder, the corpora and models where the docs put them, and a project root of the test's
    own (the presets' default data_dir and results land there, not in the checkout)."""
    root = tmp_path_factory.mktemp("your_data")
    work, corpora_root, models = root / "work", root / "corpora", root / "models"
    work.mkdir()
    # one core a pytest worker: a study the docs run takes the cores it may use, and the other worker is busy
    env = {"MLKD_ROOT": str(root / "project"), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return work, {"/corpora": corpora_root, "/models": models}, env
