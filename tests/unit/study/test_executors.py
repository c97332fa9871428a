"""The local executor: the cores a step is given, and its own start of a local Ray instance without starting Ray (a
stand-in records the calls)."""

from __future__ import annotations

import os

import pytest

from mlkd_lib.study.executors import start_local_ray

TIMED_OUT = "The current node timed out during startup. This could happen because some of the raylet failed"


class FakeRay:
    def __init__(self, errors):
        self.errors, self.calls = list(errors), []

    def init(self, **kw):
        self.calls.append(("init", kw))
        if self.errors:
            raise self.errors.pop(0)

    def shutdown(self):
        self.calls.append(("shutdown", {}))


def test_a_local_start_that_timed_out_is_tried_once_more(capsys):
    ray = FakeRay([Exception(TIMED_OUT)])
    start_local_ray(ray, include_dashboard=False)
    assert [c[0] for c in ray.calls] == ["init", "shutdown", "init"]
    assert ray.calls[0][1] == ray.calls[2][1] and ray.calls[0][1]["include_dashboard"] is False
    assert "did not start in time" in capsys.readouterr().out


def test_a_second_timeout_and_any_other_error_are_raised():
    ray = FakeRay([Exception(TIMED_OUT), Exception(TIMED_OUT)])
    with pytest.raises(Exception, match="timed out during startup"):
        start_local_ray(ray)
    assert [c[0] for c in ray.calls] == ["init", "shutdown", "init"]
    other = FakeRay([ValueError("num_cpus must be positive")])
    with pytest.raises(ValueError, match="num_cpus"):
        start_local_ray(other)
    assert [c[0] for c in other.calls] == ["init"]


def test_all_cores_means_the_cores_the_environment_allows(monkeypatch):
    """A cluster scheduler (or a shared machine) says how many cores a job has in OMP_NUM_THREADS: "every core"
    (threads=0) and the local executor's share per job honour it."""
    import torch

    from mlkd_lib.config import make_config
    from mlkd_lib.device import cpu_cores, set_threads
    from mlkd_lib.study.executors import local_cpus_per_step
    before = torch.get_num_threads()
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    try:
        assert cpu_cores() == 3 and local_cpus_per_step(2) == 1 and local_cpus_per_step(1) == 3
        set_threads(make_config("micro", threads=0))
        assert torch.get_num_threads() == 3
        monkeypatch.setenv("OMP_NUM_THREADS", "not a number")
        assert cpu_cores() == (os.cpu_count() or 1)
    finally:
        torch.set_num_threads(before)
