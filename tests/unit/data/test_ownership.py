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


# --- the claim and the lines it says, on hand-written identities (no data made: each test well under a second) ---

def ident(name: str, **more) -> dict:
    """An identity as ``data_identity`` writes it for a user's table ``/corpora/<name>.csv`` and its noise."""
    return {"corpus": "manifest", "iemocap_root": None, "manifest": f"/corpora/{name}.csv",
            "noise_dir": "/corpora/noise", "noisex_dir": None, "synth_per_class": 12, "synth_seed": 0,
            "noise_seconds": 30.0, "noise_types": ["hum", "hiss"], "manifest_sha256": f"{name}-digest",
            "emotions": FOUR, "label_map": [], "rirs": None, "test_manifests": {}, **more}


RAVDESS = "the manifest /corpora/ravdess.csv, classes neu,hap,ang,sad, noise /corpora/noise"
EMODB = "the manifest /corpora/emodb.csv, classes neu,hap,ang,sad, noise /corpora/noise"


def held(data: Path, mode: str) -> bool:
    """Whether another holder has the folder's lock: a lock of ``mode`` ("sh" or "ex") cannot be taken beside it."""
    import fcntl
    with open(data / ".users.lock", "a+") as fh:  # a file of its own: flock sets it against every other, in-process too
        try:
            fcntl.flock(fh, (fcntl.LOCK_SH if mode == "sh" else fcntl.LOCK_EX) | fcntl.LOCK_NB)
            return False
        except BlockingIOError:
            return True


def test_a_line_names_the_corpus_its_classes_and_its_noise():
    from mlkd_lib.data.ownership import describe
    assert describe(None) == describe({}) == "nothing yet"
    assert describe(ident("ravdess")) == RAVDESS
    assert describe(ident("ravdess", noisex_dir="/corpora/noisex-92")) == RAVDESS  # the folder's noise first
    assert describe(ident("x", corpus="synthetic", manifest=None, noise_dir=None, synth_seed=7, synth_per_class=9,
                          emotions=["neu", "sad"])) == \
        "the synthetic corpus (seed 7, 9 per class), classes neu,sad, noise the synthetic noises"
    assert describe(ident("x", corpus="iemocap", iemocap_root="/corpora/IEMOCAP_full_release", manifest=None,
                          noise_dir=None, noisex_dir="/corpora/noisex-92")) == \
        "IEMOCAP at /corpora/IEMOCAP_full_release, classes neu,hap,ang,sad, noise /corpora/noisex-92"
    assert describe({"corpus": "manifest", "manifest": "/corpora/own.csv"}) == \
        "the manifest /corpora/own.csv, classes , noise the synthetic noises"  # a record without classes: no error


def test_differences_name_every_input_either_identity_has_otherwise():
    from mlkd_lib.data.ownership import differences
    a = {"corpus": "manifest", "manifest": "a.csv", "emotions": ["neu"]}
    b = {"corpus": "manifest", "manifest": "b.csv", "noise_dir": "/n"}
    assert differences(a, b) == differences(b, a) == ["emotions", "manifest", "noise_dir"]
    assert differences(a, dict(a)) == []


def test_a_tables_digest_is_the_first_16_hex_digits_of_its_sha256(tmp_path):
    import hashlib

    from mlkd_lib.data.ownership import file_digest
    (tmp_path / "t.csv").write_bytes(b"path,emotion,speaker\na.wav,neu,ann\n")
    assert file_digest(tmp_path / "t.csv") == hashlib.sha256(b"path,emotion,speaker\na.wav,neu,ann\n").hexdigest()[:16]
    assert file_digest(tmp_path / "absent.csv") is None


def test_the_folder_says_what_it_holds_for_whom_from_where_and_since_when(tmp_path):
    import datetime
    import os
    import socket

    from mlkd_lib.data.ownership import write_holds
    data = tmp_path / "new" / "deeper" / "data"  # made with its parents
    write_holds(data, ident("ravdess"), "building", tmp_path / "results" / "ravdess")
    text = (data / "data.json").read_text()
    assert text.startswith('{\n  "identity": {\n    "corpus": "manifest",')  # indented for a person to read
    record = json.loads(text)
    since = datetime.datetime.strptime(record.pop("since"), "%Y-%m-%dT%H:%M:%S")
    assert abs((datetime.datetime.now() - since).total_seconds()) < 60
    assert record == {"identity": ident("ravdess"), "state": "building", "study": str(tmp_path / "results/ravdess"),
                      "host": socket.gethostname(), "pid": os.getpid()}
    write_holds(data, ident("ravdess"), READY)  # the data step of a run that names no study: still made for it
    assert holds(data)["study"] == str(tmp_path / "results/ravdess") and holds(data)["state"] == READY
    assert sorted(p.name for p in data.iterdir()) == ["data.json"]  # written whole: no temporary file left
    write_holds(tmp_path / "other", ident("emodb"), READY)
    assert holds(tmp_path / "other")["study"] is None  # made for no study


def test_a_refusal_names_the_study_what_it_was_made_from_and_what_its_folder_holds_now(tmp_path):
    from mlkd_lib.data.ownership import mismatch, write_holds
    data = tmp_path / "data"
    refused = mismatch("results/ravdess", ident("ravdess"), data)
    assert isinstance(refused, DataMismatch) and str(refused) == (
        f"results/ravdess was made from {RAVDESS}, but its data folder {data} now holds nothing (the folder is empty "
        f"or gone); nothing was read")
    write_holds(data, ident("emodb"), READY, "results/emodb")
    assert str(mismatch("results/ravdess", ident("ravdess"), data)) == (
        f"results/ravdess was made from {RAVDESS}, but its data folder {data} now holds {EMODB} (made for "
        f"results/emodb); nothing was read")
    write_holds(tmp_path / "half", ident("emodb"), "building")
    assert str(mismatch("results/ravdess", ident("ravdess"), tmp_path / "half")) == (
        f"results/ravdess was made from {RAVDESS}, but its data folder {tmp_path / 'half'} now holds {EMODB}, half "
        f"made; nothing was read")


def test_a_claim_makes_its_folder_and_says_it_builds_its_studys_data_there(tmp_path):
    data = tmp_path / "new" / "data"
    with DataClaim(data, ident("ravdess"), "results/ravdess", say=pytest.fail) as claim:
        assert claim.exclusive and held(data, "sh")
        assert holds(data) == {**holds(data), "identity": ident("ravdess"), "state": "building",
                               "study": "results/ravdess"}
        claim.share()
        assert claim.exclusive is False and held(data, "ex") and not held(data, "sh")  # others of this data join
    assert not held(data, "sh")


def test_a_run_of_other_data_is_refused_at_once_naming_the_holder_and_what_differs(tmp_path):
    from mlkd_lib.data.ownership import write_holds
    data = tmp_path / "data"
    write_holds(data, ident("emodb"), READY, "results/emodb")
    said = []
    with DataClaim(data, ident("emodb"), "results/sweep", say=pytest.fail):  # made: it reads it, shared
        with pytest.raises(DataFolderInUse) as refused:
            DataClaim(data, ident("ravdess"), "results/ravdess", say=said.append).acquire(0.01, wait_s=5)
        assert str(refused.value) == (
            f"data folder {data} is in use by a running study of other data: it holds {EMODB} (made for "
            f"results/emodb); this setup's data ({RAVDESS}) differs in manifest, manifest_sha256. Give this setup its "
            f"own data_dir (a setup file's default, data/<its name> beside it, is its own)")
        assert said == [] and holds(data)["identity"] == ident("emodb")  # no wait, nothing written
        assert in_use_by_other(data, ident("ravdess")) == (
            f"data_dir {data} is in use by a running study of other data ({EMODB} (made for results/emodb)): give "
            f"this setup its own data_dir")
        assert held(data, "ex") and not held(data, "sh")  # the refused run let go of its file


@pytest.mark.parametrize("wait_s", [5.0, None])
def test_a_run_of_the_same_data_waits_once_for_the_run_making_it_then_reads_it_beside_it(tmp_path, wait_s):
    import threading

    from mlkd_lib.data.ownership import write_holds
    data = tmp_path / "data"
    maker = DataClaim(data, ident("ravdess"), "results/ravdess", say=pytest.fail).acquire()

    def made():
        write_holds(data, ident("ravdess"), READY, "results/ravdess")
        maker.share()
    done = threading.Timer(0.15, made)
    done.start()
    said = []
    try:
        joined = DataClaim(data, ident("ravdess"), "results/sweep", say=said.append).acquire(0.01, wait_s=wait_s)
    finally:
        done.join()
    assert said == [f"waiting for the run that is making the data in {data}"]  # once, however long it waits
    assert not joined.exclusive and holds(data)["study"] == "results/ravdess"  # it reads; it wrote nothing
    joined.release()
    maker.release()


def test_a_run_waits_at_most_wait_s_for_another_process_making_the_data_and_takes_over_when_it_dies(tmp_path):
    import subprocess
    import sys
    import time

    from mlkd_lib.data.ownership import write_holds
    data = tmp_path / "data"
    data.mkdir()
    maker = subprocess.Popen([sys.executable, "-c", "import fcntl, sys; fh = open(sys.argv[1], 'a+'); "
                              "fcntl.flock(fh, fcntl.LOCK_EX); print('held', flush=True); sys.stdin.read()",
                              str(data / ".users.lock")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert maker.stdout.readline() == "held\n"
        said = []
        t0 = time.monotonic()
        with pytest.raises(DataFolderInUse) as late:  # the folder says nothing yet: it waits, as for its own data
            DataClaim(data, ident("ravdess"), "results/ravdess", say=said.append).acquire(0.01, wait_s=0.1)
        assert time.monotonic() - t0 >= 0.1 and len(said) == 1
        assert str(late.value) == f"data folder {data} is still being made by another run after 0 s (nothing yet)"
        write_holds(data, ident("ravdess"), "building", "results/first")
        with pytest.raises(DataFolderInUse) as late:
            DataClaim(data, ident("ravdess"), "results/ravdess", say=said.append).acquire(0.01, wait_s=0.6)
        assert str(late.value) == f"data folder {data} is still being made by another run after 1 s ({RAVDESS})"
    finally:
        maker.kill()  # dies however: the kernel lets go of its lock
        maker.communicate()  # and its pipes closed
    with DataClaim(data, ident("ravdess"), "results/ravdess", say=pytest.fail).acquire(0.01, wait_s=1) as taken:
        assert taken.exclusive and holds(data)["study"] == "results/ravdess"  # made again, for this run


def test_a_folder_that_cannot_be_locked_is_used_with_a_warning_naming_it(tmp_path, monkeypatch):
    import errno
    import fcntl

    def no_locks(*_):
        raise OSError(errno.ENOLCK, "No locks available")
    monkeypatch.setattr(fcntl, "flock", no_locks)
    with pytest.warns(UserWarning) as warned:
        claim = DataClaim(tmp_path / "data", ident("ravdess"), "results/ravdess", say=pytest.fail).acquire()
    assert [str(w.message) for w in warned if w.category is UserWarning] == [
        f"{tmp_path / 'data'}: cannot take a lock here (No locks available); nothing stops a run of other data on "
        f"this folder"]
    assert claim.fh is None


def test_a_data_json_that_cannot_be_written_is_that_error_not_a_folder_without_locks(tmp_path, monkeypatch):
    """Only flock's own 'cannot lock here' is a warning; another OSError while claiming the folder (here the
    record cannot be written) stops the run with it, the lock let go."""
    from mlkd_lib.data import ownership

    def read_only(*_):
        raise PermissionError(13, "Permission denied", str(tmp_path / "data" / "data.json"))
    monkeypatch.setattr(ownership, "write_holds", read_only)
    claim = DataClaim(tmp_path / "data", ident("ravdess"), "results/ravdess", say=pytest.fail)
    with pytest.raises(PermissionError, match="data.json"):
        claim.acquire()
    assert claim.fh is None and not held(tmp_path / "data", "ex")


def test_a_released_claim_holds_nothing_and_can_be_taken_again(tmp_path):
    data = tmp_path / "data"
    claim = DataClaim(data, ident("ravdess"), "results/ravdess", say=pytest.fail).acquire()
    claim.release()
    claim.release()  # twice: nothing more to let go
    claim.share()  # nothing held: nothing to share
    assert not held(data, "sh")
    assert claim.acquire() is claim and held(data, "sh")  # held again
    claim.release()
