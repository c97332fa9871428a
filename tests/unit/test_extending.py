"""The study is extended where the design says: a student arm is one record (``arms.ARMS``, and its loss's entry in
``losses.LOSSES``), a test condition family is one module (found by ``conditions.families.registry``). Each test
adds one in that one place — the docs' own examples, KD without the layer-wise term and a quieter recording — and
finds it in every output: training, the runner's plan, the statistics, Tables 1 and 4, the plots, the explorer,
export's choices."""

from __future__ import annotations

import dataclasses
import re
import types

import numpy as np
import pandas as pd
import pytest
import torch

from mlkd_lib import arms
from mlkd_lib.analysis import corruption, plots, stats, tables
from mlkd_lib.config import make_config
from mlkd_lib.data.conditions import families
from mlkd_lib.data.folds import get_fold, split
from mlkd_lib.layout import StudyLayout
from mlkd_lib.method import losses
from mlkd_lib.method.evaluate import evaluate_conditions, metrics_from_predictions
from mlkd_lib.method.models import build_teacher
from mlkd_lib.method.roles import Role
from mlkd_lib.method.train import train

KD = arms.Arm("student_kd", "Student with KD only (no L_ML)", "KD only", "KD", "teacher",
              arms.STUDENT_KEYS | {"alpha", "temperature", "kd_t_squared"}, against=(arms.STUDENT_UNSUP,),
              color=arms.DEEP[5])


@pytest.fixture
def kd_arm(monkeypatch):
    monkeypatch.setattr(arms, "ARMS", (*arms.ARMS, KD))
    monkeypatch.setitem(losses.LOSSES, "KD", losses.Loss(teacher=True, layers=False))
    return KD


def quieter() -> types.ModuleType:
    """A family as a module would define it: the recording made quieter by its severity in dB."""
    module = types.ModuleType("quieter")
    module.FAMILY, module.RANK, module.UNIT, module.WORSE = "quieter", 8, "dB down", "higher"
    module.SEVERITIES = (6, 20)
    module.apply = lambda x, severity, rng: (np.asarray(x, dtype=np.float64) * 10 ** (-severity / 20)).astype(
        np.float32)
    return module


@pytest.fixture
def quieter_family(monkeypatch):
    found = {**families.registry(), "quieter": quieter()}
    monkeypatch.setattr(families, "registry", lambda: found)
    return found["quieter"]


def _metrics(models: list[str], conditions: list[tuple[str, str, float | None]]) -> pd.DataFrame:
    """Long metrics of ``models`` over two folds, a different UA each."""
    rows = []
    for k, model in enumerate(models):
        for fold, shift in (("Ses01F", 0.0), ("Ses01M", 0.02)):
            for j, (condition, noise, level) in enumerate(conditions):
                rows.append(dict(model=model, condition=condition, severity=level, noise=noise,
                                 snr_db=level if condition in ("noise", "unseen_noise") else None, fold=fold,
                                 ua=0.4 + 0.05 * k + 0.01 * j + shift, wa=0.5, n=8))
    return pd.DataFrame(rows)


def test_an_arm_added_in_one_place_trains_and_reaches_every_output(kd_arm, micro_data, tmp_path):
    cfg, manifest, bank = micro_data
    cfg = dataclasses.replace(cfg, student_epochs=1, batch_size=16)
    assert arms.study_arms(cfg)["student_kd"] == ("KD", "teacher") and "student_kd" in arms.trained()
    from mlkd_lib.study.runner import plan_fold_steps
    assert "Ses01F/student_kd" in [s.name for s in plan_fold_steps(tmp_path / "study", cfg, ["Ses01F"])]

    parts = split(manifest, get_fold(manifest, "Ses01F"))
    torch.manual_seed(0)
    teacher = build_teacher(cfg.model)
    role = Role.of("student_kd", cfg, teacher, bank)
    assert role.distils and role.loss == "KD"
    result = train("student_kd", cfg, parts["train"], parts["val"], tmp_path / "kd", bank, teacher, progress=False)
    history = result.history.iloc[0]
    assert history.kd > 0 and history.ml == 0  # the teacher teaches, the layer-wise term is not in its loss

    models = ["teacher", "student_unsup", "student_sup", "student_kd", "baseline"]
    trained = _metrics(models, [("clean", "clean", None), ("noise", "factory", 0.0), ("noise", "factory", 20.0)])
    summary = tables.summarise(trained)
    comparison = stats.paired_differences(trained, arms.study_arms(cfg))
    assert "KD (teacher init) − CE (pretrained init)" in set(comparison.comparison)
    table1 = tables.table1(summary, [0.0, 20.0], labels=tables.arm_labels(arms.study_arms(cfg)),
                           arms=arms.study_arms(cfg))
    assert "Student with KD only (no L_ML), from the teacher's even layers" in set(table1.model)
    unseen = _metrics(models, [("clean", "clean", None), ("noise", "factory", 0.0), ("codec", "codec", 8.0)])
    corruption.write_table4(tmp_path, unseen, synthetic=True)
    header = next(line for line in (tmp_path / "table4.md").read_text().splitlines() if line.startswith("| condition"))
    assert "| Student with KD only (no L_ML) " in header
    figure = plots.ua_vs_snr(summary, synthetic=True)
    assert "Student with KD only (no L_ML)" in figure.axes[0].get_legend_handles_labels()[1]
    from mlkd_lib.explore.explorer import StudyModels
    assert "student_kd" in StudyModels(StudyLayout(tmp_path / "study"), cfg).names
    from mlkd_lib.cli import build_parser
    parsed = build_parser().parse_args(["export", "--study", "s", "--fold", "f", "--model", "student_kd",
                                        "--out", "x.onnx"])
    assert parsed.model == "student_kd"


def test_a_family_added_in_one_place_is_scored_and_reaches_table4(quieter_family, study_data, tmp_path):
    base, data = study_data
    cfg = make_config("micro", data_dir=base.data_dir, conditions=["quieter"], threads=1)  # the key accepts it
    scored = families.family_conditions(cfg)
    assert [(c.family, c.severity) for c in scored] == [("quieter", 6.0), ("quieter", 20.0)]
    assert all(c.is_signal for c in scored)
    row = data.test.iloc[0]
    clean = np.asarray(pd.Series([0.1, -0.2, 0.3]), dtype=np.float32)
    made = families.heard(clean, row.utt_id, scored[0], data.noise_bank, data.rirs, cfg.seed)
    np.testing.assert_allclose(made, clean * 10 ** (-6 / 20), rtol=1e-6)

    torch.manual_seed(0)
    teacher, student = build_teacher("micro").eval(), build_teacher("micro").eval()
    conditions = families.trained_conditions(["factory"], [0.0]) + scored
    preds = evaluate_conditions({"teacher": teacher, "student_sup": student}, data.test, conditions, data.noise_bank,
                                cfg.seed, progress=False)
    metrics = pd.concat([metrics_from_predictions(p, m, "Ses01F") for m, p in preds.items()], ignore_index=True)
    assert sorted(metrics[metrics.condition == "quieter"].severity) == [6.0, 6.0, 20.0, 20.0]
    corruption.write_table4(tmp_path, metrics, synthetic=True)
    table = (tmp_path / "table4.md").read_text()
    assert re.search(r"\| quieter \(unseen\) +\| 6 dB down", table) and "| CE: quieter (unseen) " in table
    figure = corruption.ua_against_severity(metrics, synthetic=True)
    assert "quieter (unseen)" in [ax.get_title() for ax in figure.axes]
