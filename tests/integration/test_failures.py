"""The failures a real user meets, each tried for real: a Ray worker killed mid-training on a two-node
loopback cluster is retried and the study ends with the same metrics.csv as the shared micro study
(uninterrupted, local), and the local executor then finds it complete; a second runner on a study folder is
stopped at once. A local Ray instance on 127.0.0.1 only, and a local study resumed on Ray: test_ray_executor.py.
A whole study killed mid-training and resumed: test_paper_shape.py, on the group-norm path."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from conftest import MICRO_STUDY
from helpers.studies import resumed_after, wait_for_training

from mlkd_lib.study.executors import loopback_only

pytestmark = pytest.mark.slow
ray = pytest.importorskip("ray", reason="the ray extra: pip install -e '.[ray]' (make test installs it)")


def _study(out, data_dir, *extra, **popen):
    """The shared micro study's command, as a process of its own."""
    sets = [a for k, v in {**MICRO_STUDY, "data_dir": str(data_dir)}.items() for a in ("--set", f"{k}={v}")]
    cmd = [sys.executable, "-m", "mlkd_lib", "study", "--preset", "micro", "--folds", "Ses01F", "--out", str(out),
           "--jobs", "2", *sets, *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen)


def test_a_second_runner_on_a_study_folder_stops_at_once_naming_the_holder(micro_study, tmp_path):
    from mlkd_lib.layout import FolderLock
    with FolderLock(tmp_path / "study"):
        second = _study(tmp_path / "study", micro_study[1]["data_dir"])
        out, _ = second.communicate(timeout=120)
    assert second.returncode == 2
    assert f"{tmp_path / 'study'} is in use" in out and f"pid {os.getpid()}" in out and "host " in out


@pytest.fixture
def loopback_cluster():
    """Ray's own multi-node harness: two nodes of one CPU each, on 127.0.0.1 only."""
    from ray.cluster_utils import Cluster
    loopback_only()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    yield cluster
    cluster.shutdown()


def _statuses(study):
    return {k: v["status"] for k, v in json.loads((study / "run.json").read_text())["steps"].items()}


def test_a_killed_ray_worker_is_retried_and_the_study_on_two_nodes_matches_the_local_one(
        micro_study, loopback_cluster, tmp_path):
    local, overrides, code = micro_study
    assert code == 0 and loopback_cluster.address.startswith("127.0.0.1:")
    study = tmp_path / "study"
    ray_args = ("--executor", "ray", "--ray-address", loopback_cluster.address, "--ray-cpus", "1")
    proc = _study(study, overrides["data_dir"], *ray_args)
    killed_at = wait_for_training(study)
    worker = json.loads((study / "logs" / "Ses01F_teacher.worker.json").read_text())
    os.kill(worker["pid"], signal.SIGKILL)  # the Ray worker running the teacher's notebook
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-3000:]
    resumed = resumed_after(study)
    print(f"ray: worker killed with last.pt at epoch {killed_at}, resumed after epoch {resumed}")
    assert resumed >= killed_at
    # fresh Ray kernels, a kill and a retry give the bytes of the local run in warm kernels
    assert (study / "metrics.csv").read_bytes() == (local / "metrics.csv").read_bytes()
    run = json.loads((study / "run.json").read_text())
    assert run["executor"]["kind"] == "ray" and len(run["steps"]) == 7  # data, teacher, baseline, 3 students, analysis
    assert len({s["node"] for s in run["steps"].values() if "node" in s}) == 2  # steps ran on both nodes

    # the local executor finds Ray's steps complete and runs nothing
    stamps = {p: p.stat().st_mtime for p in study.rglob("*.ipynb")}
    again = _study(study, overrides["data_dir"])
    assert again.wait(timeout=300) == 0
    assert {p: p.stat().st_mtime for p in study.rglob("*.ipynb")} == stamps
    assert set(_statuses(study).values()) == {"skipped (complete)"}
