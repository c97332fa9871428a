"""A setup owns its data: a data folder says what it holds, a run holds it (shared with runs of the same data, alone
while it makes it), a run of other data is refused while it is in use, and a reader of a study whose folder now
holds other data refuses naming both — or, in a run, has the study's own data made again."""

from __future__ import annotations

import json
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mlkd_lib.config import make_config, study_config, with_overrides
from mlkd_lib.data.ownership import READY, DataClaim, DataFolderInUse, DataMismatch, holds, in_use_by_other
from mlkd_lib.data.prepare import check_study_data, data_identity, own_data, prepare_data, study_manifest
from mlkd_lib.layout import mark_done

FOUR = ["neu", "hap", "ang", "sad"]


def corpus(folder: Path, name: str, speakers=("ann", "bob")) -> Path:
    """``<name>.csv`` and its recordings (16 kHz mono: nothing to convert), two utterances a speaker and class, ids
    starting with the corpus's name; and a flat noise folder of two types."""
    rows = ["path,emotion,speaker"]
    for speaker in speakers:
        for code in FOUR:
            for n in (1, 2):
                rel = Path(name) / f"{name}_{speaker}_{code}{n}.wav"
                (folder / rel).parent.mkdir(parents=True, exist_ok=True)
                sf.write(folder / rel, 0.1 * np.sin(np.arange(8000) / (n + 7 + FOUR.index(code))), 16_000)
                rows.append(f"{rel},{code},{speaker}")
    noise = folder / "noise"
    noise.mkdir(exist_ok=True)
    for kind in ("hum", "hiss"):
        sf.write(noise / f"{kind}.wav", np.random.default_rng(len(kind)).standard_normal(16_000) * 0.1, 16_000)
    table = folder / f"{name}.csv"
    table.write_text("\n".join(rows) + "\n")
    return table


def ids(name: str) -> set[str]:
    """The utterance ids of ``corpus(_, name)``, written out."""
    return {f"{name}_{s}_{e}{n}" for s in ("ann", "bob") for e in FOUR for n in (1, 2)}


def setup(folder: Path, name: str, data_dir: Path):
    table = corpus(folder, name)
    return make_config("micro", corpus="manifest", manifest=str(table), noise_dir=str(folder / "noise"),
                       noise_types=["hum", "hiss"], conditions=[], data_dir=str(data_dir), threads=1)


def made(study: Path, cfg) -> Path:
    """``study``'s data step as a run leaves it: the data made and the identity recorded in its marker."""
    prepare_data(cfg, progress=False, study=study)
    cfg.save(study / "config.json")
    mark_done(study / "data", data=data_identity(cfg))
    return study


def test_the_identity_follows_the_tables_content_the_classes_and_the_noise_not_its_timestamp(tmp_path):
    cfg = setup(tmp_path, "ravdess", tmp_path / "data")
    first = data_identity(cfg)
    table = Path(cfg.manifest)
    table.write_text(table.read_text())  # written again, the same rows: the same data
    assert data_identity(cfg) == first
    assert data_identity(with_overrides(cfg, emotions=["neu", "sad"])) != first
    assert data_identity(with_overrides(cfg, noise_types=["hum"])) != first
    assert data_identity(with_overrides(cfg, student_layers=1)) == first  # a student setting holds no data
    table.write_text(table.read_text().replace("ann_neu1.wav,neu", "ann_neu1.wav,sad"))  # a label changed
    assert data_identity(cfg)["manifest_sha256"] != first["manifest_sha256"]


def test_a_run_of_other_data_is_refused_while_the_folder_is_in_use_and_one_of_the_same_data_joins(tmp_path):
    data = tmp_path / "data"
    ravdess, emodb = setup(tmp_path, "ravdess", data), setup(tmp_path, "emodb", data)
    with DataClaim(data, data_identity(ravdess), tmp_path / "results" / "ravdess", say=lambda _: None) as first:
        assert first.exclusive and holds(data)["state"] == "building"
        prepare_data(ravdess, progress=False, study=tmp_path / "results" / "ravdess")
        first.share()
        with pytest.raises(DataFolderInUse) as refused:
            DataClaim(data, data_identity(emodb), tmp_path / "results" / "emodb").acquire(0.01, wait_s=5)
        line = str(refused.value)
        assert "\n" not in line and "ravdess.csv" in line and "emodb.csv" in line and "results/ravdess" in line
        assert "manifest" in line.split("differs in")[1]  # what differs is named
        second = DataClaim(data, data_identity(ravdess), tmp_path / "results" / "sweep").acquire(0.01, wait_s=5)
        assert not second.exclusive  # the same data: it reads beside the first
        second.release()
    with DataClaim(data, data_identity(emodb), tmp_path / "results" / "emodb") as free:
        assert free.exclusive  # nobody holds it any more: the other setup may make its data there
    assert holds(data)["identity"] == data_identity(emodb) and holds(data)["state"] == "building"


def test_the_preflight_names_a_folder_in_use_by_a_run_of_other_data(tmp_path, capsys):
    from mlkd_lib.study.runner import run_study
    data = tmp_path / "data"
    ravdess, emodb = setup(tmp_path, "ravdess", data), setup(tmp_path, "emodb", data)
    with DataClaim(data, data_identity(ravdess), tmp_path / "r") as running:
        prepare_data(ravdess, progress=False)
        running.share()
        settings = {k: v for k, v in emodb.to_json().items() if k != "preset"}
        assert run_study("micro", str(tmp_path / "emodb-study"), "all", settings, plan_only=True) == 2
        assert in_use_by_other(data, data_identity(ravdess)) is None  # a run of the same data may join
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "in use by a running study of other data" in err and "ravdess.csv" in err
    assert not (tmp_path / "emodb-study").exists()  # nothing was started or written
    assert in_use_by_other(data, data_identity(emodb)) is None  # nobody holds it now: the data step may make its own


def test_a_reader_refuses_a_folder_that_another_setup_has_rebuilt_naming_both(tmp_path):
    data = tmp_path / "data"
    ravdess, emodb = setup(tmp_path, "ravdess", data), setup(tmp_path, "emodb", data)
    study = made(tmp_path / "ravdess-study", ravdess)
    check_study_data(study, ravdess)  # its own data: read
    assert set(study_config(study).emotions) == set(FOUR)
    prepare_data(emodb, progress=False, study=tmp_path / "emodb-study")  # another setup, same folder
    assert set(study_manifest(ravdess).utt_id) == ids("emodb")
    with pytest.raises(DataMismatch) as refused:
        study_config(study)  # an export, Table 3, the frontier, the listening page: each opens its study so
    line = str(refused.value)
    assert "ravdess.csv" in line and "emodb.csv" in line and "emodb-study" in line and "run.json" in line


def test_a_run_makes_a_studys_own_data_again_where_its_settings_still_make_it(tmp_path):
    from mlkd_lib.study.runner import hold_data
    data = tmp_path / "data"
    ravdess, emodb = setup(tmp_path, "ravdess", data), setup(tmp_path, "emodb", data)
    study = made(tmp_path / "ravdess-study", ravdess)
    prepare_data(emodb, progress=False, study=tmp_path / "emodb-study")
    with ExitStack() as held:
        (claim,) = hold_data([(study, ravdess)], held)
        assert claim.exclusive and not (study / "data" / "done.json").exists()  # its data step runs again
        assert holds(data)["identity"] == data_identity(ravdess)
    prepare_data(ravdess, progress=False, study=study)
    assert set(study_manifest(ravdess).utt_id) == ids("ravdess")


def test_a_study_whose_data_can_be_made_neither_from_its_folder_nor_its_settings_is_refused(tmp_path):
    data = tmp_path / "data"
    ravdess, emodb = setup(tmp_path, "ravdess", data), setup(tmp_path, "emodb", data)
    study = made(tmp_path / "ravdess-study", ravdess)
    assert own_data(study, ravdess) == data_identity(ravdess)
    table = Path(ravdess.manifest)
    table.write_text(table.read_text().replace("ann_neu1.wav,neu", "ann_neu1.wav,sad"))
    assert own_data(study, ravdess) != data_identity(ravdess)  # edited since: it reads what it was made from
    check_study_data(study, ravdess)  # which its folder still holds
    prepare_data(emodb, progress=False)
    with pytest.raises(DataMismatch, match="manifest_sha256"):
        own_data(study, ravdess)


def test_a_study_and_a_folder_from_before_folders_said_what_they_hold_are_read_as_they_are(tmp_path):
    data = tmp_path / "data"
    ravdess = setup(tmp_path, "ravdess", data)
    study = made(tmp_path / "old", ravdess)
    (data / "data.json").unlink()
    (study / "data" / "done.json").write_text(json.dumps({"utterances": 8}))  # no identity recorded
    check_study_data(study, ravdess)
    prepare_data(ravdess, progress=False)  # the data step made again: the folder now says what it holds
    assert holds(data)["state"] == READY
    check_study_data(study, ravdess)  # against what its config names now
    with pytest.raises(DataMismatch):
        check_study_data(study, with_overrides(ravdess, emotions=["neu", "sad"]))


def test_the_identity_names_every_input_the_folder_is_made_from(tmp_path):
    """Every stamped setting, the bank's types (trained then unseen), the table's and each test table's digest (the
    first 16 hex digits of its SHA-256), the classes and merges, and the rooms only where a family reads them."""
    import hashlib
    table, other = tmp_path / "own.csv", tmp_path / "other.csv"
    table.write_text("path,emotion,speaker\na.wav,neu,s1\n")
    other.write_text("path,emotion,speaker\nb.wav,ang,s2\n")
    digest = {p: hashlib.sha256(p.read_bytes()).hexdigest()[:16] for p in (table, other)}
    cfg = make_config("micro", corpus="manifest", manifest=str(table), noise_dir="/noise", noise_types=["hum"],
                      unseen_noise_types=["hiss", "hum", "buzz"], conditions=["unseen_noise", "reverb"],
                      rir_dir="/rooms", rir_rooms=3, emotions=["neu", "ang"], label_map=["exc:hap"],
                      test_manifests=[str(other)], synth_per_class=4, synth_seed=7, noise_seconds=9.0)
    assert data_identity(cfg) == {
        "corpus": "manifest", "iemocap_root": "", "manifest": str(table), "noise_dir": "/noise", "noisex_dir": "",
        "synth_per_class": 4, "synth_seed": 7, "noise_seconds": 9.0, "noise_types": ["hum", "hiss", "buzz"],
        "manifest_sha256": digest[table], "emotions": ["neu", "ang"], "label_map": ["exc:hap"],
        "rirs": ["/rooms", 3], "test_manifests": {str(other): digest[other]}}
    plain = with_overrides(cfg, corpus="synthetic", conditions=["telephone"])  # no rooms read; no table
    ident = data_identity(plain)
    assert ident["rirs"] is None and "manifest_sha256" not in ident and ident["noise_types"] == ["hum"]


def _recorded(study: Path, ident: dict | None) -> Path:
    """A study whose data step recorded ``ident`` (None: it recorded none)."""
    (study / "data").mkdir(parents=True)
    (study / "data" / "done.json").write_text(json.dumps({"utterances": 8} | ({"data": ident} if ident else {})))
    return study


def test_own_data_is_the_recorded_data_where_the_folder_holds_it_or_the_settings_make_it(tmp_path):
    from mlkd_lib.data.ownership import BUILDING, write_holds
    table = tmp_path / "own.csv"
    table.write_text("path,emotion,speaker\na.wav,neu,s1\n")
    cfg = make_config("micro", corpus="manifest", manifest=str(table), conditions=[], data_dir=str(tmp_path / "d"))
    now = data_identity(cfg)
    assert own_data(_recorded(tmp_path / "new", None), cfg) == now  # nothing recorded yet: what it makes
    old = {**now, "emotions": ["neu", "sad"], "label_map": ["exc:hap"]}
    assert own_data(_recorded(tmp_path / "same", now), cfg) == now  # the folder empty, the settings make it
    study = _recorded(tmp_path / "old", old)
    write_holds(cfg.data_dir, old, READY)
    assert own_data(study, cfg) == old  # the folder holds what it was made from, made to the end
    write_holds(cfg.data_dir, old, BUILDING, study)
    with pytest.raises(DataMismatch) as refused:
        own_data(study, cfg)  # half made: neither
    assert str(refused.value) == (
        f"{study} was made from the manifest {table}, classes neu,sad, noise the synthetic noises, but its data folder "
        f"{cfg.data_dir} now holds the manifest {table}, classes neu,sad, noise the synthetic noises (made for "
        f"{study}), half made; nothing was read, and its settings now make other data (they differ in emotions, "
        f"label_map): run it again with --force to make its data anew and retrain every model, or restore what it was "
        f"made from")


def test_a_study_is_read_only_from_a_folder_that_holds_its_data_and_told_how_to_get_it_back(tmp_path):
    from mlkd_lib.data.ownership import BUILDING, write_holds
    table = tmp_path / "own.csv"
    table.write_text("path,emotion,speaker\na.wav,neu,s1\n")
    cfg = make_config("micro", corpus="manifest", manifest=str(table), conditions=[], data_dir=str(tmp_path / "d"))
    now, new, old = data_identity(cfg), _recorded(tmp_path / "new", None), {**data_identity(cfg), "emotions": ["neu"]}
    assert check_study_data(new, cfg) is None  # neither the study nor the folder says anything: as they are
    with pytest.raises(DataMismatch, match=r"holds nothing \(the folder is empty or gone\); nothing was read\. Run"):
        check_study_data(_recorded(tmp_path / "gone", now), cfg)  # the study says, and its folder is gone
    write_holds(cfg.data_dir, now, READY)
    check_study_data(new, cfg)  # nothing recorded: the folder must hold what its settings make, and does
    check_study_data(_recorded(tmp_path / "same", now), cfg)
    again = "Run the study's own command again (its run.json has it): its data step makes its data again, and " \
            "nothing is retrained"
    for study, want, tail in ((new, now, again), (_recorded(tmp_path / "old", old), old,
                                                  "Its settings no longer make that data: run it again with --force")):
        write_holds(cfg.data_dir, want, BUILDING)  # its own data, half made
        with pytest.raises(DataMismatch) as refused:
            check_study_data(study, cfg)
        assert str(refused.value).startswith(f"{study} was made from the manifest {table}, classes ")
        assert str(refused.value).endswith(f", half made; nothing was read. {tail}")
    write_holds(cfg.data_dir, {**now, "corpus": "synthetic"}, READY)  # other data, made to the end
    with pytest.raises(DataMismatch, match="run.json"):
        check_study_data(_recorded(tmp_path / "same2", now), cfg)
