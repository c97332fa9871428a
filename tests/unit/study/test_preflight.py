"""Pre-flight: every problem with a study's inputs reported at once, fast, before anything starts;
and `--plan` says what a study will cost without starting it."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest
from helpers.paper_shape import make_base_shaped_model, make_iemocap, make_noisex

from mlkd_lib.config import make_config
from mlkd_lib.study.preflight import disk_need, preflight


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("paper_inputs")
    return (make_iemocap(root / "IEMOCAP_full_release"), make_noisex(root / "NOISEX-92"),
            make_base_shaped_model(root / "wav2vec2-base"))


def paper_config(tmp_path, iemocap, noisex, model, **changes):
    return make_config("paper", iemocap_root=str(iemocap), noisex_dir=str(noisex), model=str(model),
                       data_dir=str(tmp_path / "data"), **changes)


def test_good_inputs_pass(inputs, tmp_path):
    assert preflight(paper_config(tmp_path, *inputs), tmp_path / "study") == []


def test_three_problems_together_are_all_reported_in_one_run_with_exit_2_without_torch(inputs, tmp_path):
    iemocap, noisex, model = inputs
    partial_noise, no_weights = tmp_path / "noise", tmp_path / "model"
    partial_noise.mkdir()
    for f in noisex.iterdir():
        if f.stem != "volvo":
            (partial_noise / f.name).symlink_to(f)
    no_weights.mkdir()
    (no_weights / "config.json").write_text((model / "config.json").read_text())
    sets = [f"iemocap_root={tmp_path / 'no-such-corpus'}", f"noisex_dir={partial_noise}", f"model={no_weights}",
            f"data_dir={tmp_path / 'data'}"]
    # the pre-flight reads files only, so it answers in a second or two: torch is never imported
    # (`mlkd bench --study-steps` times the imports)
    code = ("import sys\nfrom mlkd_lib.cli import main\ntry:\n    main(sys.argv[1:])\nfinally:\n"
            "    print('torch imported:', 'torch' in sys.modules, file=sys.stderr)\n")
    run = subprocess.run([sys.executable, "-c", code, "study", "--preset", "paper", "--out", str(tmp_path / "s"),
                          *(a for s in sets for a in ("--set", s))], capture_output=True, text=True)
    assert run.returncode == 2, (run.returncode, run.stderr)
    assert run.stderr.strip().endswith("torch imported: False"), run.stderr
    assert "3 problems" in run.stderr and "no-such-corpus" in run.stderr
    assert "volvo.wav or .mat" in run.stderr and "no weights" in run.stderr
    assert not (tmp_path / "s").exists()  # nothing was started


def test_a_cuda_study_on_a_machine_without_one_and_a_corrupt_weights_file(inputs, tmp_path):
    iemocap, noisex, model = inputs
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text((model / "config.json").read_text())
    (broken / "model.safetensors").write_bytes(b"\xff" * 64)
    problems = preflight(paper_config(tmp_path, iemocap, noisex, broken, device="cuda"), tmp_path / "s")
    assert any("not a readable safetensors" in p for p in problems)
    import torch
    assert any("no GPU" in p for p in problems) is (not torch.cuda.is_available())


def test_plan_prints_steps_disk_and_hours_and_starts_nothing(micro_data, tmp_path, capsys):
    from mlkd_lib.study.runner import run_study
    cfg, _, _ = micro_data
    code = run_study("micro", str(tmp_path / "study"), "Ses01F", {"data_dir": cfg.data_dir}, plan_only=True)
    out = capsys.readouterr().out
    assert code == 0 and sorted(p.name for p in (tmp_path / "study").iterdir()) == ["plan.json"]  # nothing else
    assert "6 steps: data, Ses01F/teacher" in out and "Ses01F/student_unsup_from_teacher" in out
    assert "disk: about" in out and "time: about" in out
    plan = json.loads((tmp_path / "study" / "plan.json").read_text())
    assert set(plan["roles"]) == {"teacher", "student_sup", "student_unsup", "student_unsup_from_teacher"}
    for role, m in plan["roles"].items():  # real steps through the loader: each phase took time, and they add up
        assert m["timed_steps"] == 6 and min(m[f"{p}_s"] for p in ("data", "forward", "backward", "optimizer")) > 0
        assert m["step_s"] >= m["data_s"] + m["forward_s"] + m["backward_s"] + m["optimizer_s"]
        assert f"{role}: {1000 * m['step_s']:.1f} ms a step" in out
    assert " 0 min" not in out and "1 fold\n" in out  # a fold's 14 s of test audio is not rounded away
    from mlkd_lib.data.conditions.families import family_conditions
    from mlkd_lib.data.prepare import follow_data
    test_only = len(family_conditions(follow_data(make_config("micro"))))  # music and traffic unseen, as resolved
    assert test_only and f"{1 + 2 * 2 + test_only} test conditions" in out  # clean, 2 noises x 2 SNRs, test-only


def test_a_second_plan_of_the_same_study_reuses_its_measured_steps_and_a_changed_one_measures_again(
        micro_data, tmp_path, capsys, monkeypatch):
    import mlkd_lib.study.plan as plan
    from mlkd_lib.study.runner import run_study
    cfg, _, _ = micro_data
    sets, out = {"data_dir": cfg.data_dir}, str(tmp_path / "study")
    assert run_study("micro", out, "Ses01F", sets, plan_only=True) == 0
    first = capsys.readouterr().out
    record = json.loads((tmp_path / "study" / "plan.json").read_text())
    monkeypatch.setattr(plan, "measure_roles", lambda *a: pytest.fail("the same study measured again"))
    assert run_study("micro", out, "Ses01F", sets, plan_only=True) == 0
    again = capsys.readouterr().out
    assert f"reused from the plan of {record['measured']}" in again
    strip = lambda text: [line for line in text.splitlines() if "measured on" not in line]  # noqa: E731
    assert strip(again) == strip(first)  # the same steps, hence the same projection
    timed = []
    monkeypatch.setattr(plan, "measure_roles", lambda *a: timed.append(a) or record["roles"])
    assert run_study("micro", out, "Ses01F", sets, plan_only=True, force=True) == 0  # --force: measured again
    assert run_study("micro", out, "Ses01F", {**sets, "batch_size": 2}, plan_only=True) == 0  # another batch
    assert len(timed) == 2 and "reused" not in capsys.readouterr().out


def test_the_disk_estimate_counts_the_kept_test_audio_of_every_fold():
    """Every teacher runs first, so each fold's test audio under the 13 signal conditions may exist at once."""
    cfg = make_config("paper")
    args = (1e8, 5e7, 768, 20_000.0, 10, 1, 3)
    on, final = disk_need(cfg, *args, test_s=2_500.0)
    off, final_off = disk_need(dataclasses.replace(cfg, keep_test_audio=False), *args, test_s=2_500.0)
    assert on - off == 10 * 13 * 2_500 * 16_000 * 4 and final == final_off  # gone when the study is done


def test_the_disk_estimate_counts_the_shared_cnn_outputs_when_shared():
    """Frames of 50 a second, float32, per CNN channel: the test audio under each of the demo's 49 conditions and
    the students' training audio each epoch, for every fold."""
    from mlkd_lib.data.prepare import follow_data
    cfg = follow_data(make_config("demo"))  # its unseen types drawn from the synthetic noises: music, traffic
    args = (1e5, 5e4, 32, 1_000.0, 10, 2, 3)
    on, final = disk_need(cfg, *args, test_s=100.0, cnn_channels=16)
    off, final_off = disk_need(dataclasses.replace(cfg, share_cnn_features=False), *args, test_s=100.0,
                               cnn_channels=16)
    assert on - off == 10 * 50 * 16 * 4 * (49 * 100.0 + 6 * 1_000.0) and final == final_off
    assert not make_config("paper").share_cnn_features  # wav2vec2-base's 512 channels: not worth the disk


def test_an_unreadable_room_impulse_response_is_named_before_the_study_starts(micro_data, tmp_path):
    rirs = tmp_path / "rirs"
    rirs.mkdir()
    (rirs / "hall.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    cfg = dataclasses.replace(micro_data[0], rir_dir=str(rirs), conditions=["reverb"])
    problems = preflight(cfg, tmp_path / "study")
    assert any("1 unreadable or empty files" in p and "hall.wav" in p for p in problems), problems


def test_the_plan_projects_from_its_measured_steps(micro_data, monkeypatch):
    """Each role's fold time grows by epochs × steps an epoch × its measured step: a slower step measured, a longer
    projection by exactly that much (the steps an epoch from the fold's share of the corpus and the batch)."""
    from mlkd_lib.study import plan
    cfg = dataclasses.replace(micro_data[0], teacher_epochs=3, student_epochs=2)

    def slower(by):  # a fixed step of each role, as if measured
        return lambda cfg, lengths, steps, warmup, roles: {r: {"step_s": 0.5 + by, "data_s": 0.1, "forward_s": 0.1,
                                                               "backward_s": 0.1, "optimizer_s": 0.1, "other_s": 0.1}
                                                           for r in roles}

    monkeypatch.setattr(plan, "_forward_seconds", lambda *a: 0.01)  # the inference pace held still: only steps differ
    hours = {}
    for by in (0.0, 1.0):
        monkeypatch.setattr(plan, "measured_steps", slower(by))
        hours[by] = plan.make_plan(cfg, ["Ses01F"]).measured
    fast, slow = hours[0.0], hours[1.0]
    durations, _ = plan.corpus_durations(cfg)
    train_n = plan.fold_shares(cfg, durations, durations.duration_s).train_n
    assert fast["steps_per_epoch"] == -(-train_n // cfg.batch_size) > 1
    grow = {m: 3600 * (slow["fold_hours"][m] - fast["fold_hours"][m]) for m in fast["fold_hours"]}
    assert grow["teacher"] == pytest.approx(3 * fast["steps_per_epoch"] * 1.0)
    assert grow["student_sup"] == pytest.approx(2 * fast["steps_per_epoch"] * 1.0)
    assert grow["baseline"] == 0.0  # it trains nothing
