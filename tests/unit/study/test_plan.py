"""`mlkd study --plan`'s projection term by term against hand arithmetic: a fold's shares of the corpus under each
protocol, and each model's device seconds from given step times, inference paces and counts — training, validation,
scoring (the study's test conditions and every other corpus's), the teacher's targets for a distilling student."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from numpy import zeros

from mlkd_lib.config import make_config, with_overrides
from mlkd_lib.data.prepare import at_most
from mlkd_lib.method.step_bench import breakdown
from mlkd_lib.study import plan


def test_a_folds_shares_under_each_protocol():
    durations = pd.DataFrame({"speaker": list("AABBCCDDEE"), "duration_s": [1.0] * 10,
                              "split": ["train"] * 6 + ["development", "test1", "test2", "test"]})
    cut = pd.Series([1.0, 2.0, 3.0, 4.0, 1.0, 2.0, 3.0, 4.0, 5.0, 5.0])  # 30 s
    loso = plan.fold_shares(make_config("micro", val_fraction=0.25, n_folds=2), durations, cut)  # n_folds: kfold's
    # one speaker of five tested (1/5), a quarter of the other four fifths validated (1/5): 3/5 trained
    assert (loso.train_n, loso.train_s, loso.val_s, loso.test_s) == pytest.approx((6.0, 18.0, 6.0, 6.0))
    kfold = plan.fold_shares(make_config("micro", protocol="kfold", n_folds=2, val_fraction=0.1), durations, cut)
    assert (kfold.train_n, kfold.train_s, kfold.val_s, kfold.test_s) == pytest.approx((4.5, 13.5, 1.5, 15.0))
    speaker = plan.fold_shares(make_config("micro", validation="speaker", n_val_speakers=2), durations, cut)
    assert (speaker.train_n, speaker.val_s, speaker.test_s) == pytest.approx((4.0, 12.0, 6.0))  # 2 of 5 validate
    split = plan.fold_shares(make_config("micro", protocol="split", val_fraction=0.5), durations, cut)
    assert split.test_s == pytest.approx(30 * 3 / 10)  # test, test1, test2: 3 of the 10 rows
    assert split.val_s == pytest.approx(30 * 0.7 * 0.5) and split.train_n == pytest.approx(10 * 0.35)


MEASURED = {"teacher": 0.5, "student_sup": 0.7, "student_unsup": 0.6, "student_unsup_from_teacher": 0.65}


def test_each_models_fold_seconds_term_by_term():
    cfg = make_config("micro", teacher_epochs=3, student_epochs=2, control_arm=True)
    shares = plan.Shares(train_n=40, train_s=100.0, val_s=20.0, test_s=30.0)
    measured = {r: {"step_s": s} for r, s in MEASURED.items()}
    got = plan.fold_seconds(cfg, shares, 5, measured, {"teacher": 0.02, "student": 0.01}, scored_s=300.0)
    assert got == pytest.approx({
        # epochs × (steps × step + validation audio × pace) + scored audio × pace
        "teacher": 3 * (5 * 0.5 + 20 * 0.02) + 300 * 0.02,
        "baseline": 300 * 0.02,  # scoring through the teacher; its NMF runs on the CPU, not counted
        # MLKD also fills the teacher's targets for its training and validation audio, at the teacher's pace
        "student_sup": 2 * (5 * 0.7 + 20 * 0.01) + 300 * 0.01 + (100 + 20) * 0.02,
        "student_unsup": 2 * (5 * 0.6 + 20 * 0.01) + 300 * 0.01,
        "student_unsup_from_teacher": 2 * (5 * 0.65 + 20 * 0.01) + 300 * 0.01})


def _table(path, rows):
    """A table of tiny files whose ``duration_s`` column says how long each utterance is."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for name, *_ in rows:
        sf.write(path.parent / name, zeros(800, "float32") + 0.1, 16_000)
    pd.DataFrame(rows, columns=["path", "emotion", "speaker", "duration_s"]).to_csv(path, index=False)
    return str(path)


def _planned_study(tmp_path, monkeypatch, timed, lengths=(1.0, 2.0, 3.0, 10.0), **extra):
    """Five speakers × (1, 2, 3, 10 s) of neu / ang, another corpus of 1, 2, 4 s (and a class the study lacks); the
    steps measured as ``MEASURED``, the teacher's inference pass 0.4 s and the student's 0.1 s."""
    rows = [(f"{s}{k}.wav", "neu" if k % 2 else "ang", s, d) for s in "ABCDE" for k, d in enumerate(lengths)]
    other = _table(tmp_path / "emodb" / "emodb.csv", [("a.wav", "neu", "03", 1.0), ("b.wav", "ang", "03", 2.0),
                                                       ("c.wav", "ang", "08", 4.0), ("d.wav", "fear", "08", 9.0)])
    cfg = make_config("micro", **{**dict(
        corpus="manifest", manifest=_table(tmp_path / "own" / "own.csv", rows), data_dir=str(tmp_path / "data"),
        emotions=["neu", "ang"], val_fraction=0.25, teacher_epochs=3, student_epochs=2, batch_size=8, max_seconds=2.5,
        noise_types=["babble"], snrs=[0.0, 10.0], conditions=[], test_manifests=[other], control_arm=True,
        device="cpu"), **extra})
    monkeypatch.setattr(plan, "measured_steps", lambda cfg, lengths, steps, warmup, roles: timed.append(roles) or {
        r: {"step_s": MEASURED[r], **{f"{p}_s": 0.0 for p in ("data", "forward", "backward", "optimizer", "other")}}
        for r in roles})
    monkeypatch.setattr(plan, "_forward_seconds", lambda model, batch, device: timed.append((
        tuple(batch.shape), str(batch.device), str(device))) or (0.4 if model.num_layers > cfg.student_layers else 0.1))
    return cfg


def test_the_plan_adds_up_every_term_for_every_fold(tmp_path, monkeypatch):
    """Five speakers × (1, 2, 3, 10 s), cut at 2.5 s: 40 s. A fold: 1/5 tested (8 s), a quarter of the rest validated
    (8 s), 12 utterances and 24 s trained: 2 steps of 8 an epoch. Scored: 3 conditions × 8 s, and the other corpus's
    1, 2, 4 s (cut: 5.5 s) under its 3. Inference paces from the passes given: 0.4 s (teacher) and 0.1 s (student) on
    a batch of 8 × 2 s (the mean cut length)."""
    timed = []
    cfg = _planned_study(tmp_path, monkeypatch, timed)
    made = plan.make_plan(cfg, [])
    record = made.measured
    # one arm of each loss timed; each inference pass on a batch of 8 × the mean cut length (2 s), on the CPU
    assert [sorted(r) for r in timed[:1]] == [["student_sup", "student_unsup", "teacher"]]
    assert timed[1:] == [((8, 32_000), "cpu", "cpu")] * 2
    assert record["steps_per_epoch"] == 2
    teacher_pace, student_pace = 0.4 / (8 * 2.0), 0.1 / (8 * 2.0)
    scored = 3 * 8.0 + 3 * 5.5
    expected = {"teacher": 3 * (2 * 0.5 + 8 * teacher_pace) + scored * teacher_pace,
                "baseline": scored * teacher_pace,
                "student_sup": 2 * (2 * 0.7 + 8 * student_pace) + scored * student_pace + (24 + 8) * teacher_pace,
                "student_unsup": 2 * (2 * 0.6 + 8 * student_pace) + scored * student_pace,
                "student_unsup_from_teacher": 2 * (2 * 0.6 + 8 * student_pace) + scored * student_pace}  # CE's step
    assert {m: 3600 * h for m, h in record["fold_hours"].items()} == pytest.approx(expected)
    assert record["total_hours"] == pytest.approx(5 * sum(expected.values()) / 3600)  # five folds
    text = made.render().splitlines()
    folds = [f"{f}/{m}" for f in "AB" for m in ("teacher", "baseline", "student_unsup", "student_sup",
                                               "student_unsup_from_teacher")]
    assert text[0] == f"26 steps: data, {', '.join(folds)}, ... (25 fold steps in all)"  # the data step and 5 × 5
    assert text[1].startswith("corpus: 20 utterances, 1 min (") and text[1].endswith(
        "cut at 2.5 s: per fold about 24 s of training and 8 s of test audio, 3 test conditions, 5 folds")
    assert text[1] == (f"corpus: 20 utterances, 1 min ({cfg.manifest}, the classes neu, ang); cut at 2.5 s: per fold "
                       "about 24 s of training and 8 s of test audio, 3 test conditions, 5 folds")  # 5 × 16 s: 80 s
    assert text[2] == ("test corpus emodb: 3 utterances of the study's classes, 7 s, scored by every model of every "
                       "fold under 3 conditions")
    assert text[4] == ("measured on cpu: 6 training steps of batch 8 after 2 of warm-up, through the real loader, on "
                       "utterances drawn from the corpus's lengths (written to plan.json):")
    assert text[5:9] == [f"  {role}: {breakdown(m)}" for role, m in record["roles"].items()] and len(text) == 11
    assert list(record["roles"]) == ["teacher", "student_unsup", "student_sup", "student_unsup_from_teacher"]
    # the five models' seconds add up to 15.08 a fold: 75 s in all, one job
    assert text[9] == ("time: about 1 min on the CPU (1 min of wall time with --jobs 1): 2 steps an epoch, 3 teacher "
                       "and 2 student epochs, validation and scoring at the measured inference pace; the NMF "
                       "baseline's CPU time is not counted")
    assert text[-1].startswith("disk: about ") and text[-1].endswith(
        "when done (4 fp32 checkpoints a fold; a step's last.pt and the teacher cache exist while it runs and are "
        "dropped when it is done)")
    assert record["infer"] == pytest.approx({"teacher": teacher_pace, "student": student_pace})
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", record["measured"]) and record["key"] == plan.steps_key(
        cfg, pd.Series([1.0, 2.0, 2.5, 2.5] * 5), "cpu")


def test_the_plans_words_for_sizes_and_times_and_its_record():
    assert [plan._hours(s) for s in (59, 60, 3599, 3600, 5400)] == ["59 s", "1 min", "60 min", "1.0 h", "1.5 h"]
    assert plan._hours(3781) == "1.1 h"  # 1.0503 h: an hour is 3600 s
    assert [plan._size(b) for b in (5 * 2**20, 2**30 - 2**19, 2**30, 3 * 2**29)] == ["5 MiB", "1024 MiB", "1.0 GiB",
                                                                                     "1.5 GiB"]
    p = plan.Plan(["data", "S1/teacher"], ["line one", "line two"], 0.0, {"total_hours": 1.5})
    assert p.render() == "2 steps: data, S1/teacher\nline one\nline two"


def test_the_plan_json_is_written_where_asked(tmp_path):
    p = plan.Plan(["data"], [], 0.0, {"total_hours": 1.5, "roles": {"teacher": {"step_s": 0.25}}})
    for _ in range(2):  # new folders, then again over them
        p.save(tmp_path / "new" / "study" / "plan.json")
    assert (tmp_path / "new" / "study" / "plan.json").read_text() == (
        '{\n  "total_hours": 1.5,\n  "roles": {\n    "teacher": {\n      "step_s": 0.25\n    }\n  }\n}')


def test_an_inference_pass_is_timed_as_the_fastest_of_three_after_a_warm_up(monkeypatch):
    import types

    import torch
    clock = iter([0.0, 5.0, 10.0, 11.0, 20.0, 23.0, 30.0, 32.0, 40.0, 47.0])  # passes of 5, 1, 3, 2 s (then 7)
    monkeypatch.setattr(plan.time, "perf_counter", lambda: next(clock))
    calls, moved = [], []

    class Model:
        def to(self, device):
            moved.append(device)
            return self

        def eval(self):
            return self

        def __call__(self, batch, output_hidden_states):
            calls.append((batch, output_hidden_states))

    batch = torch.zeros(2, 10)
    assert plan._forward_seconds(Model(), batch, types.SimpleNamespace(type="cpu")) == 1.0
    assert len(calls) == 4 and all(b is batch and h is False for b, h in calls) and len(moved) == 1


def test_the_gpu_line_says_how_many_trainings_of_the_largest_peak_fit(monkeypatch):
    import types
    card = types.SimpleNamespace(total_memory=80 * 2**30)
    monkeypatch.setattr(plan.torch.cuda, "get_device_properties", lambda d: card)
    line = plan._gpu_fit(types.SimpleNamespace(type="cuda"), {"teacher": {"peak_gib": 8.0}, "s": {"peak_gib": 3.0}})
    assert line == ("; on this 80 GiB card 9 trainings of 8.0 GiB peak fit at once (whether they overlap is not "
                    "measured: time a pair with --jobs 2)")  # 0.9 × 80 // 8
    assert plan._gpu_fit(types.SimpleNamespace(type="cpu"), {}) == ""


def test_the_roles_are_timed_on_lengths_drawn_from_the_corpus(monkeypatch):
    asked = []
    monkeypatch.setattr(plan, "measured_steps", lambda cfg, lengths, steps, warmup, roles: asked.append(
        (cfg, lengths, steps, warmup, roles)) or {r: {"step_s": 1.0} for r in roles})
    cfg = make_config("micro", batch_size=4, control_arm=True)
    cut = pd.Series([1.0, 2.0, 2.5, 0.5])
    got = plan.measure_roles(cfg, cut, plan.study_arms(cfg))
    (c, lengths, steps, warmup, roles), = asked
    assert c is cfg and (steps, warmup) == (6, 2) and len(lengths) == (6 + 2) * 4
    assert list(lengths) == list(np.random.default_rng(0).choice(cut.to_numpy(), 32))
    assert set(got) == {"teacher", "student_unsup", "student_sup", "student_unsup_from_teacher"}


def test_a_synthetic_corpus_not_made_yet_is_planned_from_the_presets_size(tmp_path):
    cfg = make_config("micro", data_dir=str(tmp_path), synth_per_class=3)
    durations, source = plan.corpus_durations(cfg)
    assert len(durations) == 10 * 4 * 3 and durations.speaker.nunique() == 10 and list(durations.columns) == [
        "speaker", "duration_s"]
    assert durations.duration_s.mean() == pytest.approx(plan.SYNTHETIC_MEAN_S, rel=0.05)
    assert source == "the preset's size, 120 utterances of about 1.7 s: the corpus is not made yet"


def test_the_plans_record_models_disk_and_wall_time_for_two_jobs(tmp_path, monkeypatch):
    from mlkd_lib.study.preflight import disk_need
    cfg = _planned_study(tmp_path, monkeypatch, [], keep_checkpoints=True)
    made = plan.make_plan(cfg, ["A", "B"], jobs=2)
    assert made.steps == ["data", *(f"{f}/{m}" for f in "AB" for m in ("teacher", "baseline", "student_unsup",
                                                                          "student_sup", "student_unsup_from_teacher"))]
    record = made.measured
    assert {k: record[k] for k in ("device", "batch_size", "steps_per_epoch", "timed_steps", "warmup_steps", "jobs")} \
        == {"device": "cpu", "batch_size": 8, "steps_per_epoch": 2, "timed_steps": 6, "warmup_steps": 2, "jobs": 2}
    assert set(record["roles"]) == set(MEASURED) and record["total_hours"] == pytest.approx(
        2 * sum(record["fold_hours"].values()))
    teacher = plan.build_teacher("micro", ["neu", "ang"])
    student = plan.build_student(teacher, cfg.student_layers)
    p_t, p_s = (sum(p.numel() for p in m.parameters()) for m in (teacher, student))
    text = made.render()
    assert f"models: teacher {p_t / 1e6:.2f} M parameters, student {p_s / 1e6:.2f} M (micro)" in text
    peak, final = disk_need(cfg, p_t, p_s, 16, 24.0, 2, 2, 3, 8.0, 8)  # micro: 16 wide, a CNN of 8 channels; 3 arms
    assert made.disk_peak == pytest.approx(peak)
    assert (f"disk: about {plan._size(peak)} at the peak, {plan._size(final)} when done (4 fp32 checkpoints a fold; "
            "a step's last.pt and the teacher cache exist while it runs and are all kept: keep_checkpoints)") in text
    total = 3600 * record["total_hours"]
    assert f"time: about {plan._hours(total)} on the CPU ({plan._hours(total / 2)} of wall time with --jobs 2)" in text
    assert len(plan.make_plan(cfg, ["A", "B", "C"]).steps) == 1 + 10 + 1  # a third fold: said, not listed


def test_a_fold_of_given_folds_and_a_trials_cap():
    """protocol=folds: a fold tests the rows of one of the given folds on average (rows without one are never
    tested); fold_utterances caps each part at that many utterances a class, of the mean cut length."""
    durations = pd.DataFrame({"speaker": list("AABBCCDDEE"), "duration_s": [1.0] * 10,
                              "fold": ["1", "1", "2", " 2", "3", "3", "", "", " ", "1"]})
    cut = pd.Series([2.0] * 10)  # 20 s
    given = plan.fold_shares(make_config("micro", protocol="folds", val_fraction=0.5), durations, cut)
    # 7 of 10 rows in one of 3 folds (" 2" is "2"): 0.7 / 3 tested, half the rest validated
    test = 0.7 / 3
    assert (given.train_n, given.train_s, given.val_s, given.test_s) == pytest.approx(
        (10 * (1 - test) / 2, 20 * (1 - test) / 2, 20 * (1 - test) / 2, 20 * test))
    single = durations.assign(fold=["1"] * 4 + [""] * 6)  # one fold of 4 rows: 0.4 of the corpus tested
    assert plan.fold_shares(make_config("micro", protocol="folds", val_fraction=0.5), single, cut).test_s == \
        pytest.approx(20 * 0.4)
    one = durations.assign(fold=[""] * 10)  # no row in a fold: nothing tested (no division by zero folds)
    assert plan.fold_shares(make_config("micro", protocol="folds", val_fraction=0.5), one, cut).test_s == 0.0
    no_column = plan.fold_shares(make_config("micro", protocol="folds", val_fraction=0.5),
                                 durations.drop(columns="fold"), cut)
    assert no_column.test_s == pytest.approx(20 / 5)  # as a speaker's share when the table names no folds
    capped = plan.fold_shares(make_config("micro", val_fraction=0.25, fold_utterances=1, emotions=["neu", "ang",
                                                                                                  "sad"]),
                              durations, pd.Series([1.0, 3.0] * 5))  # 20 s, mean 2 s; 3 classes: 3 utterances
    # uncapped: 6 utterances, 12 s trained, 4 s validated, 4 s tested; capped at 3 utterances of 2 s
    assert (capped.train_n, capped.train_s, capped.val_s, capped.test_s) == pytest.approx((3.0, 6.0, 4.0, 4.0))
    wide = plan.fold_shares(make_config("micro", val_fraction=0.25, fold_utterances=10), durations, cut)
    assert (wide.train_n, wide.train_s, wide.val_s, wide.test_s) == pytest.approx((6.0, 12.0, 4.0, 4.0))


def test_the_split_and_fold_columns_reach_the_plan_and_a_corpus_is_named_by_its_source(tmp_path, monkeypatch):
    table = pd.DataFrame({"path": ["a.wav"], "speaker": ["s1"], "duration_s": [1.5], "emotion": ["neu"],
                          "split": ["train"], "fold": ["1"], "gender": ["f"]})
    monkeypatch.setattr(plan, "study_utterances", lambda cfg: table)
    durations, source = plan.corpus_durations(make_config("micro", corpus="iemocap", iemocap_root="/corpora/IEMOCAP",
                                                          emotions=["neu", "ang"]))
    assert list(durations.columns) == ["speaker", "duration_s", "split", "fold"]
    assert source == "/corpora/IEMOCAP, the classes neu, ang"


def test_a_manifest_corpus_is_planned_from_its_own_durations(tmp_path):
    rows = [("a.wav", "neu", "s1", 1.5), ("b.wav", "ang", "s2", 2.5), ("c.wav", "fear", "s2", 9.0)]
    table = _table(tmp_path / "own" / "own.csv", rows)
    cfg = make_config("micro", corpus="manifest", manifest=table, data_dir=str(tmp_path / "data"),
                      emotions=["neu", "ang"])
    durations, source = plan.corpus_durations(cfg)
    assert list(durations.columns) == ["speaker", "duration_s"] and durations.duration_s.tolist() == [1.5, 2.5]
    assert durations.speaker.tolist() == ["s1", "s2"] and source == f"{table}, the classes neu, ang"


def test_the_gpu_line_with_a_role_of_no_measured_peak(monkeypatch):
    import types
    monkeypatch.setattr(plan.torch.cuda, "get_device_properties", lambda d: types.SimpleNamespace(
        total_memory=10 * 2**30))
    cuda = types.SimpleNamespace(type="cuda")
    line = plan._gpu_fit(cuda, {"teacher": {"peak_gib": 0.5}, "s": {}})  # a role without a peak counts none
    assert line.startswith("; on this 10 GiB card 18 trainings of 0.5 GiB peak fit at once")  # 9 // 0.5
    # none measured: a peak of 1e-3 GiB (9 / 0.001 floors to 8999 in floating point)
    assert plan._gpu_fit(cuda, {"teacher": {}}).startswith("; on this 10 GiB card 8999 trainings of 0.0 GiB")


def test_each_arm_gets_the_step_of_the_first_arm_of_its_loss(monkeypatch):
    monkeypatch.setattr(plan, "measured_steps", lambda cfg, lengths, steps, warmup, roles: {
        r: {"step_s": float(len(r))} for r in roles})
    cfg = make_config("micro", batch_size=2, control_arm=True)
    arms = plan.study_arms(cfg)
    got = plan.measure_roles(cfg, pd.Series([1.0, 2.0]), arms)
    first = {}
    for m, (loss, _) in arms.items():
        first.setdefault(loss, m)
    assert got == {"teacher": {"step_s": 7.0}, **{m: {"step_s": float(len(first[loss]))}
                                                 for m, (loss, _) in arms.items()}}
    assert got["student_unsup_from_teacher"] == {"step_s": float(len("student_unsup"))}


def test_the_steps_key_follows_every_input_of_a_measurement_and_nothing_else(tmp_path):
    import os

    import torch
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "sub").mkdir()  # a folder inside is no file of the model
    cfg = make_config("micro", model=str(folder))
    cut, cpu = pd.Series([1.0, 2.0]), torch.device("cpu")
    key = plan.steps_key(cfg, cut, cpu)
    assert len(key) == 16 and int(key, 16) >= 0
    assert plan.steps_key(make_config("micro", model=str(folder), folds=["Ses02F"]), cut, cpu) == key  # folds: no
    assert plan.steps_key(cfg, pd.Series([1.0001, 2.0]), cpu) == key  # lengths to the millisecond
    changed = [plan.steps_key(make_config("micro", model=str(folder), batch_size=3), cut, cpu),
               plan.steps_key(cfg, pd.Series([1.001, 2.0]), cpu), plan.steps_key(cfg, cut, torch.device("meta"))]
    (folder / "sub" / "x.bin").write_bytes(b"1")
    assert plan.steps_key(cfg, cut, cpu) == key  # a file in a subfolder is not read
    (folder / "config.json").write_text("{} ")
    changed.append(plan.steps_key(cfg, cut, cpu))  # a file's size
    os.utime(folder / "config.json", ns=(0, 10**9))
    changed.append(plan.steps_key(cfg, cut, cpu))  # its time
    (folder / "weights.bin").write_bytes(b"")
    changed.append(plan.steps_key(cfg, cut, cpu))  # another file
    assert len({key, *changed}) == 1 + len(changed)
    named = make_config("micro")  # a named random-weight model: no folder
    assert plan.steps_key(named, cut, cpu) == plan.steps_key(named, cut, cpu) != key


def test_a_plan_reuses_a_previous_plans_measurements_only_under_the_same_key(tmp_path, monkeypatch):
    timed = []
    cfg = _planned_study(tmp_path, monkeypatch, timed)
    first = plan.make_plan(cfg, ["A"]).measured
    previous = {**first, "roles": {r: {**m, "step_s": 2 * m["step_s"]} for r, m in first["roles"].items()},
                "infer": {"teacher": 0.0, "student": 0.0}, "measured": "2020-01-02T03:04:05"}
    again = plan.make_plan(cfg, ["A"], previous=previous)
    assert len(timed) == 3 and again.measured["measured"] == "2020-01-02T03:04:05"  # the steps and two passes
    assert again.measured["roles"] == previous["roles"] and again.measured["infer"] == previous["infer"]
    # no inference pace: the teacher's fold is its steps alone, at twice the step
    assert again.measured["fold_hours"]["teacher"] * 3600 == pytest.approx(3 * 2 * 2 * 0.5)
    assert "reused from the plan of 2020-01-02T03:04:05: the same settings, corpus, model, device and code; " \
           "--force measures again):" in again.render()
    for stale in ({**previous, "key": "0" * 16}, {k: v for k, v in previous.items() if k != "infer"},
                  {k: v for k, v in previous.items() if k != "roles"}):
        fresh = plan.make_plan(cfg, ["A"], previous=stale)
        assert fresh.measured["roles"] == first["roles"] and "reused" not in fresh.render()
    assert sum("student_sup" in t for t in timed) == 4  # measured each time but the reused one


def test_a_plan_of_kfold_folds_and_a_trials_test_corpus(tmp_path, monkeypatch):
    """No folds named: kfold's two; a trial's cap of 1 utterance a class on the other corpus too (its neu and one
    of its two ang, drawn by the seed)."""
    timed = []
    cfg = _planned_study(tmp_path, monkeypatch, timed, protocol="kfold", n_folds=2, fold_utterances=1, seed=3,
                         max_seconds=0.5)
    made = plan.make_plan(cfg, [])
    assert made.steps == ["data", *(f"fold{i}/{m}" for i in (1, 2) for m in (
        "teacher", "baseline", "student_unsup", "student_sup", "student_unsup_from_teacher"))]
    # every utterance cut at 0.5 s: the passes on 0.5 s, the cut (above it, the 1 s floor would have given 1 s)
    assert made.render().startswith("11 steps: ") and timed[1:] == [((8, 8_000), "cpu", "cpu")] * 2
    other = at_most(pd.DataFrame({"emotion": ["neu", "ang", "ang"], "duration_s": [1.0, 2.0, 4.0]}), 1, 3)
    assert other.duration_s.tolist() in ([1.0, 2.0], [1.0, 4.0])
    assert made.lines[1].startswith(f"test corpus emodb: 2 utterances of the study's classes, "
                                    f"{other.duration_s.sum():.0f} s, scored")


def test_the_inference_pass_is_timed_on_the_mean_cut_length_but_at_least_1_s(tmp_path, monkeypatch):
    """Utterances of 0.2 to 0.8 s: a pass on 1 s; cut at 0.5 s as well, on 0.5 s (the cut wins over the floor)."""
    for cap, samples in ((2.5, 16_000), (0.5, 8_000)):
        timed = []
        cfg = _planned_study(tmp_path / str(cap), monkeypatch, timed, lengths=(0.2, 0.4, 0.6, 0.8), max_seconds=cap)
        plan.make_plan(cfg, ["A"])
        assert timed[1:] == [((8, samples), "cpu", "cpu")] * 2


def test_a_plan_of_the_tables_own_folds_and_a_test_corpus_without_the_studys_classes(tmp_path, monkeypatch):
    """protocol=folds with no fold named: the table's fold values, in order. Another corpus with none of the study's
    classes is refused, naming its table."""
    cfg = _planned_study(tmp_path, monkeypatch, [], protocol="folds")
    table = pd.read_csv(cfg.manifest)
    table.assign(fold=["2", "1", "", "1"] * 5).to_csv(cfg.manifest, index=False)
    assert [s.split("/")[0] for s in plan.make_plan(cfg, []).steps[1::5]] == ["1", "2"]
    fear = _table(tmp_path / "fear" / "fear.csv", [("f.wav", "fear", "09", 1.0)])
    with pytest.raises(ValueError, match=f"^test corpus {fear}: no utterance of the study's classes neu, ang"):
        plan.make_plan(with_overrides(cfg, test_manifests=[fear]), [])


def test_the_plan_prices_its_own_models_sizes_and_passes_its_measurements_on(tmp_path, monkeypatch):
    """The teacher's width and its CNN's last layer's channels reach the disk estimate, the parameters counted (here
    1 005 001 and 2 005 001: 1.01 and 2.01 million) its words, the measured steps the GPU line."""
    cfg = _planned_study(tmp_path, monkeypatch, [])
    build, asked = plan.build_student, []

    def student(teacher, layers):
        model = build(teacher, layers)
        teacher.config.conv_dim = (4, 6, 8)  # another width at each layer: the last is the one stored
        return model
    monkeypatch.setattr(plan, "build_student", student)
    monkeypatch.setattr(plan, "count_parameters", lambda m: 1_005_001 if m.num_layers > cfg.student_layers else
                        2_005_001)
    monkeypatch.setattr(plan, "disk_need", lambda *a: asked.append(a) or (2.0**30, 2.0**20))
    monkeypatch.setattr(plan, "_gpu_fit", lambda device, measured: asked.append(measured) or "")
    made = plan.make_plan(cfg, ["A"])
    assert asked[0] == pytest.approx((cfg, 1_005_001, 2_005_001, 16, 24.0, 1, 1, 3, 8.0, 8))
    assert asked[1] == made.measured["roles"]
    assert "models: teacher 1.01 M parameters, student 2.01 M (micro)" in made.render()
