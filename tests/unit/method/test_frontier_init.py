"""Students of every depth N that divides the teacher's L layers (the sweep's frontier): student layer k starts
as teacher layer k·L/N, and L_ML pairs the two, for 1, 2, 3 and 4 of a 12-layer teacher."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mlkd_lib.arms import STUDENT_SUP, STUDENT_UNSUP
from mlkd_lib.config import DEMO_ENCODER, make_config
from mlkd_lib.method.models import build_student, build_teacher, default_layer_map
from mlkd_lib.method.roles import Role

DEPTHS = (1, 2, 3, 4)
BANK = {"babble": np.zeros(16_000, dtype=np.float32)}  # a student role only checks that there is a noise bank


@pytest.fixture(scope="module")
def teacher():
    torch.manual_seed(0)
    return build_teacher("tiny")


def assert_same_tensors(got: dict, want: dict, what: str) -> None:
    assert got.keys() == want.keys(), what
    for name, tensor in want.items():
        assert torch.equal(got[name], tensor), f"{what}: {name} differs"


def assert_layers_from(student, source, n: int) -> None:
    """Student layer k is source layer k·12/N tensor by tensor; every other weight but the head is the source's."""
    layers = source.encoder.encoder.layers
    assert student.num_layers == len(student.encoder.encoder.layers) == n
    for k in range(1, n + 1):
        assert_same_tensors(student.encoder.encoder.layers[k - 1].state_dict(), layers[k * 12 // n - 1].state_dict(),
                            f"{n} layers: student layer {k} ← teacher layer {k * 12 // n}")
        if k * 12 // n > 1:  # not merely some layer: the one before it differs
            before = layers[k * 12 // n - 2].state_dict()
            assert any(not torch.equal(t, before[name])
                       for name, t in student.encoder.encoder.layers[k - 1].state_dict().items())
    rest = {k: v for k, v in source.encoder.state_dict().items() if not k.startswith("encoder.layers.")}
    own = {k: v for k, v in student.encoder.state_dict().items() if not k.startswith("encoder.layers.")}
    assert_same_tensors(own, rest, f"{n} layers: CNN, projection, positional conv, layer norm")


@pytest.mark.parametrize("n", DEPTHS)
def test_the_layer_map_takes_every_l_over_n_th_teacher_layer(n):
    mapping = default_layer_map(n, 12)
    assert mapping == {k: k * 12 // n for k in range(1, n + 1)}
    assert mapping[n] == 12  # the last student layer is always matched to the teacher's last


@pytest.mark.parametrize("n", DEPTHS)
def test_student_layer_k_starts_as_teacher_layer_k_times_l_over_n(teacher, n):
    student = build_student(teacher, n)
    assert_layers_from(student, teacher, n)
    assert_same_tensors(student.head.state_dict(), teacher.head.state_dict(), "head")


@pytest.mark.parametrize("n", DEPTHS)
def test_the_study_builds_each_arm_at_depth_n_from_its_source(teacher, n):
    """The roles a sweep trains: MLKD from the trained teacher, CE-only from the pretrained encoder (the demo's,
    shipped with the package), both at ``student_layers=n``."""
    cfg = make_config("demo", model=str(DEMO_ENCODER), student_layers=n)
    assert_layers_from(Role.of(STUDENT_SUP, cfg, teacher, BANK).model, teacher, n)
    pretrained = build_teacher(cfg.model, cfg.emotions)
    ce_only = Role.of(STUDENT_UNSUP, cfg, None, BANK)
    assert not ce_only.distils and ce_only.model.num_layers == n
    assert_layers_from(ce_only.model, pretrained, n)


def test_a_depth_that_does_not_divide_the_teachers_is_refused(teacher):
    with pytest.raises(ValueError, match="12 layers, not a multiple of the student's 5"):
        build_student(teacher, 5)
