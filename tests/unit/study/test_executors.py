"""The Ray executor's own start of a local instance, without starting Ray (a stand-in records the calls)."""

from __future__ import annotations

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
