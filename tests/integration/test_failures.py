"""The failures a real user meets, each tried for real: a study killed mid-training (the whole process
group, and a Ray worker on a two-node loopback cluster) resumes to the same metrics.csv as an
uninterrupted run; a second runner on a study folder is stopped at once; a local Ray instance listens on
127.0.0.1 only."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from mlkd_lib.study.executors import loopback_only

pytestmark = pytest.mark.slow
ray = pytest.importorskip("ray", reason="the ray extra: pip install -e '.[ray]' (make test installs it)")

# a micro study with a teacher long enough to be killed while it trains; one fold, the paper's two arms
SETTINGS = {"teacher_epochs": "5", "control_arm": "false"}


def _study(out, data_dir, *extra, **popen):
    sets = [a for k, v in {**SETTINGS, "data_dir": str(data_dir)}.items() for a in ("--set", f"{k}={v}")]
    cmd = [sys.executable, "-m", "mlkd_lib", "study", "--preset", "micro", "--folds", "Ses01F", "--out", str(out),
           "--jobs", "2", *sets, *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen)


def _wait_for_training(study, timeout_s=240):
    """Block until the teacher has written a resume state but not finished; return the epoch it holds."""
    teacher = study / "folds" / "Ses01F" / "teacher"
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if (teacher / "last.pt").is_file() and not (teacher / "done.json").is_file():
            try:
                return torch.load(teacher / "last.pt", weights_only=True)["epoch"]
            except Exception:  # caught mid-rename: look again
                pass
        time.sleep(0.05)
    pytest.fail(f"the teacher of {study} never reached an epoch checkpoint")


def _resumed_after(study) -> int:
    text = (study / "folds" / "Ses01F" / "02_train_teacher.ipynb").read_text()
    marker = "teacher: resumed from last.pt after epoch "
    assert marker in text, "the rerun did not resume the teacher"
    return int(text.split(marker, 1)[1].split()[0])


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The same micro study, never interrupted."""
    root = tmp_path_factory.mktemp("reference")
    proc = _study(root / "study", root / "data")
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-3000:]
    return root


def test_a_killed_study_resumes_to_the_same_metrics(reference, tmp_path):
    proc = _study(tmp_path / "study", reference / "data", start_new_session=True)
    killed_at = _wait_for_training(tmp_path / "study")
    os.killpg(proc.pid, signal.SIGKILL)  # the runner; its kernels (own sessions) end when they see it gone
    proc.wait(timeout=30)
    rerun = _study(tmp_path / "study", reference / "data")
    out, _ = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, out[-3000:]
    resumed = _resumed_after(tmp_path / "study")
    print(f"local: killed with last.pt at epoch {killed_at}, resumed after epoch {resumed}")  # -s shows it
    assert 1 <= killed_at < int(SETTINGS["teacher_epochs"])
    assert resumed >= killed_at
    assert (tmp_path / "study" / "metrics.csv").read_bytes() == (reference / "study" / "metrics.csv").read_bytes()


def test_a_second_runner_on_a_study_folder_stops_at_once_naming_the_holder(reference, tmp_path):
    from mlkd_lib.layout import FolderLock
    with FolderLock(tmp_path / "study"):
        second = _study(tmp_path / "study", reference / "data")
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


def test_a_killed_ray_worker_is_retried_and_the_study_on_two_nodes_matches_the_local_one(
        reference, loopback_cluster, tmp_path):
    assert loopback_cluster.address.startswith("127.0.0.1:")
    study = tmp_path / "study"
    proc = _study(study, reference / "data", "--executor", "ray", "--ray-address", loopback_cluster.address,
                  "--ray-cpus", "1")
    killed_at = _wait_for_training(study)
    worker = json.loads((study / "logs" / "Ses01F_teacher.worker.json").read_text())
    os.kill(worker["pid"], signal.SIGKILL)  # the Ray worker running the teacher's notebook
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-3000:]
    resumed = _resumed_after(study)
    print(f"ray: worker killed with last.pt at epoch {killed_at}, resumed after epoch {resumed}")
    assert resumed >= killed_at
    assert (study / "metrics.csv").read_bytes() == (reference / "study" / "metrics.csv").read_bytes()
    nodes = {s["node"] for s in json.loads((study / "run.json").read_text())["steps"].values() if "node" in s}
    assert len(nodes) == 2  # steps ran on both nodes


def test_a_local_ray_instance_listens_on_loopback_only(tmp_path):
    code = ("from mlkd_lib.study.executors import RayExecutor, RaySettings\n"
            "import pathlib, ray, sys\n"
            "ex = RayExecutor(RaySettings(), 1); ex.start([pathlib.Path(sys.argv[1])])\n"
            "print(ray.get_runtime_context().gcs_address, *[n['NodeManagerAddress'] for n in ray.nodes()])\n"
            "ex.stop()\n")
    run = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr[-2000:]
    addresses = run.stdout.split("\n")[-2].split()
    assert addresses[0].startswith("127.0.0.1:") and all(a == "127.0.0.1" for a in addresses[1:]), run.stdout
