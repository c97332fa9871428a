"""``mlkd study --executor ray`` on a local Ray instance, started as the executor starts its own: on loopback only,
the same outcomes and markers as the local executor, failures isolated, a folder that is not shared refused. A
whole study on Ray, killed, retried and resumed across executors: test_failures.py."""

from __future__ import annotations

import pytest
from helpers.notebooks import failing_notebook, marking_notebook

from mlkd_lib.paths import library_fingerprint
from mlkd_lib.study import executors
from mlkd_lib.study.executors import RayExecutor, RaySettings, open_executor
from mlkd_lib.study.steps import Step, execute

pytestmark = pytest.mark.slow  # notebooks, Ray or a browser: make test, not make test-fast

ray = pytest.importorskip("ray", reason="the ray extra: pip install -e '.[ray]' (make test installs it)")


@pytest.fixture(scope="module")
def ray_local(tmp_path_factory):
    """One local Ray instance for the module (Ray's own testing advice), started by the executor as `mlkd study
    --executor ray` without an address starts one; the executors the tests open join it."""
    RayExecutor(RaySettings(), 2).start([tmp_path_factory.mktemp("ray")])
    yield
    ray.shutdown()


def test_a_local_ray_instance_listens_on_loopback_only(ray_local):
    addresses = [ray.get_runtime_context().gcs_address, *[n["NodeManagerAddress"] for n in ray.nodes()]]
    assert addresses[0].startswith("127.0.0.1:") and all(a == "127.0.0.1" for a in addresses[1:]), addresses


def _ok_and_bad(tmp_path):
    ok, bad = marking_notebook(tmp_path / "ok.ipynb"), failing_notebook(tmp_path / "bad.ipynb")
    return [Step("a", bad, {"done_dir": str(tmp_path / "a")}, tmp_path / "a", tmp_path / "out" / "a.ipynb"),
            Step("b", ok, {"done_dir": str(tmp_path / "b")}, tmp_path / "b", tmp_path / "out" / "b.ipynb", ["a"]),
            Step("c", ok, {"done_dir": str(tmp_path / "c")}, tmp_path / "c", tmp_path / "out" / "c.ipynb"),
            Step("d", ok, {"done_dir": str(tmp_path / "d")}, tmp_path / "d", tmp_path / "out" / "d.ipynb", ["c"])]


def test_ray_isolates_a_failing_step_and_shares_markers_with_local(ray_local, tmp_path):
    steps = _ok_and_bad(tmp_path)
    assert execute(steps[2:3], jobs=1, force=False)["c"].status == "ok"  # a study begun locally
    with open_executor("ray", 2, [tmp_path], RaySettings()) as (run, info):
        assert info["kind"] == "ray" and info["nodes"] == 1 and info["cpus_per_step"] == 1
        out = run(steps, force=False)
        assert out["a"].status == "failed" and "the corpus is on fire" in out["a"].error
        assert out["b"].status == "blocked"  # only its dependent is held back
        assert out["c"].status == "skipped"  # the local executor's marker is Ray's too
        assert out["d"].status == "ok" and out["d"].wall_s > 0
        assert (tmp_path / "out" / "a.ipynb").is_file()  # the failed notebook is kept as the record
        assert "the corpus is on fire" in (tmp_path / "out" / "a.ipynb").read_text()
        again = run(steps[2:], force=False)
        assert {k: o.status for k, o in again.items()} == {"c": "skipped", "d": "skipped"}
    # the markers Ray's steps wrote are the local executor's too
    local = execute(steps, jobs=1, force=False)
    assert {k: o.status for k, o in local.items()} == {"a": "failed", "b": "blocked", "c": "skipped", "d": "skipped"}
    assert not (tmp_path / ".mlkd-probe").exists()  # the storage probe cleans up after itself


def test_a_study_folder_that_is_not_shared_is_refused(ray_local, tmp_path, monkeypatch):
    def probe_elsewhere(folders, token, node_id):  # a node that sees another disk at the same path
        import pathlib
        import tempfile
        (pathlib.Path(tempfile.mkdtemp()) / f"{node_id}.txt").write_text(token)
        return {"host": "elsewhere", "notebooks": True, "notebooks_dir": "", "library": library_fingerprint()}

    monkeypatch.setattr(executors, "_probe", probe_elsewhere)
    with pytest.raises(RuntimeError, match="must be on storage every Ray node mounts") as err:
        with open_executor("ray", 2, [tmp_path], RaySettings()):
            pass
    assert str(tmp_path) in str(err.value) and "--out" in str(err.value)


def test_a_node_with_another_version_of_the_library_is_refused_before_any_step(ray_local, tmp_path, monkeypatch):
    """A study started before an upgrade, resumed on a cluster where one node still runs the old code: the
    study is refused with the node named, never a pickling traceback from inside a step."""
    real = executors._probe

    def older_node(folders, token, node_id):
        return dict(real(folders, token, node_id), library="0123456789ab")

    monkeypatch.setattr(executors, "_probe", older_node)
    with pytest.raises(RuntimeError, match="runs another version of mlkd-ser .*0123456789ab.*same checkout"):
        with open_executor("ray", 2, [tmp_path], RaySettings()):
            pass


def test_unsatisfiable_resources_fail_before_anything_runs(ray_local, tmp_path):
    with pytest.raises(RuntimeError, match="no Ray node has 1 CPUs and 1 GPUs"):
        with open_executor("ray", 2, [tmp_path], RaySettings(gpus=1)):
            pass
    with pytest.raises(ValueError, match="--ray-address needs --executor ray"):
        with open_executor("local", 2, [tmp_path], RaySettings(address="auto")):
            pass
