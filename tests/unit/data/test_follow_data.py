"""Defaults that name data follow the user's own: the unseen noise types are the collection's types that no model
trains on — the synthetic bank's music and traffic, NOISEX-92's other recordings, MUSAN's or DEMAND's other
folders — and where none are left the family is left out, said in a line; a type named explicitly and missing
stays an error."""

from __future__ import annotations

from helpers import corpora
from helpers.paper_shape import NOISEX_FILES, make_noisex

from mlkd_lib.config import make_config
from mlkd_lib.data.prepare import follow_data, no_unseen_noise
from mlkd_lib.study.preflight import preflight


def unseen(**keys) -> list[str]:
    return follow_data(make_config("micro", **keys)).unseen_noise_types


def test_the_synthetic_noises_leave_music_and_traffic_unseen():
    assert unseen() == ["music", "traffic"]
    assert unseen(noise_types=["babble", "music"]) == ["traffic"]
    assert make_config("demo").unseen_noise_types == []  # resolved when a study starts, not in the preset


def test_noisex_leaves_its_ten_other_recordings_and_factory1_serves_as_factory(tmp_path):
    full = make_noisex(tmp_path / "NOISEX-92", seconds=1.0)
    types = ["babble", "f16", "factory", "hfchannel", "volvo"]
    others = [s for s in NOISEX_FILES if s not in ("babble", "f16", "factory1", "hfchannel", "volvo")]
    assert sorted(unseen(noise_dir=str(full), noise_types=types)) == sorted(others)
    five = make_noisex(tmp_path / "five", seconds=1.0, stems=NOISEX_FILES[:5])  # the paper's own five files
    cfg = follow_data(make_config("micro", noise_dir=str(five), noise_types=types))
    assert cfg.unseen_noise_types == [] and "has no type beyond noise_types" in no_unseen_noise(cfg)


def test_musan_and_demand_leave_their_other_folders(tmp_path):
    noise = corpora.musan(tmp_path, seconds=1.0)
    assert unseen(noise_dir=str(noise), noise_types=["free-sound"]) == ["sound-bible"]
    assert unseen(noise_dir=str(noise), noise_types=["free-sound", "sound-bible"]) == []
    demand = corpora.demand(tmp_path, seconds=1.0, channels=1)
    assert unseen(noise_dir=str(demand), noise_types=["DKITCHEN", "STRAFFIC"]) == ["DLIVING", "NPARK", "OOFFICE",
                                                                                    "PCAFETER"]


def test_an_explicit_list_stays_and_a_missing_named_type_is_an_error(tmp_path):
    noise = corpora.musan(tmp_path, seconds=1.0)
    keys = dict(noise_dir=str(noise), noise_types=["free-sound"], data_dir=str(tmp_path / "d"))
    assert unseen(**keys, unseen_noise_types=["sound-bible"]) == ["sound-bible"]
    cfg = follow_data(make_config("micro", **keys, unseen_noise_types=["white"]))
    problems = preflight(cfg, tmp_path / "study")
    assert any("has no noise type 'white'" in p for p in problems), problems


def test_without_the_unseen_family_nothing_is_resolved(tmp_path):
    cfg = follow_data(make_config("micro", conditions=["codec"]))
    assert cfg.unseen_noise_types == [] and no_unseen_noise(cfg) is None
