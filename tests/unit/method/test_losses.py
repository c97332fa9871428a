"""The MLKD objective, equation by equation."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mlkd_lib.method.losses import kd_loss, masked_mse, mlkd_objective, multilevel_loss


def manual_kl(p, q):
    return (p * (p.log() - q.log())).sum(-1).mean()


@pytest.mark.parametrize("T", [1.0, 3.0, 7.0])
def test_kd_loss_is_T_squared_times_KL_teacher_to_student(T):
    torch.manual_seed(0)
    zs, zt = torch.randn(5, 4), torch.randn(5, 4)
    p_t, p_s = F.softmax(zt / T, -1), F.softmax(zs / T, -1)
    assert kd_loss(zs, zt, T).item() == pytest.approx(T * T * manual_kl(p_t, p_s).item(), rel=1e-5)
    # and not the reversed direction KL(student ‖ teacher)
    assert kd_loss(zs, zt, T).item() != pytest.approx(T * T * manual_kl(p_s, p_t).item(), rel=1e-3)


def test_kd_loss_is_zero_only_when_distributions_agree():
    z = torch.randn(3, 4)
    assert kd_loss(z, z, 7.0).item() == pytest.approx(0.0, abs=1e-6)
    assert kd_loss(z, z + torch.tensor([1.0, 0, 0, 0]), 7.0).item() > 0


def _hidden(n_layers, seed, frames=6, dim=3, batch=2):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, frames, dim, generator=g) for _ in range(n_layers + 1)]


def test_multilevel_loss_pairs_student_k_with_teacher_2k():
    teacher = _hidden(12, 0)
    mapping = {k: 2 * k for k in range(1, 7)}
    mask = torch.ones(2, 6, dtype=torch.bool)
    student = [torch.zeros_like(teacher[0])] + [teacher[2 * k].clone() for k in range(1, 7)]
    assert multilevel_loss(student, teacher, mapping, mask).item() == 0.0
    odd = [torch.zeros_like(teacher[0])] + [teacher[2 * k - 1].clone() for k in range(1, 7)]
    assert multilevel_loss(odd, teacher, mapping, mask).item() > 0.5
    # one wrong pairing is enough to be seen; the mean is over the six layers
    student[3] = student[3] + 1.0
    assert multilevel_loss(student, teacher, mapping, mask).item() == pytest.approx(1.0 / 6, rel=1e-6)


def test_multilevel_loss_never_counts_padding():
    teacher = _hidden(4, 1)
    student = _hidden(2, 2)
    mapping = {1: 2, 2: 4}
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]], dtype=torch.bool)
    before = multilevel_loss(student, teacher, mapping, mask).item()
    for h in student[1:]:
        h[1, 3:] += 100.0  # garbage in the padded frames
    assert multilevel_loss(student, teacher, mapping, mask).item() == pytest.approx(before, rel=1e-6)
    # and the mean is over real frames: 9 frames × 3 dims
    s, t = torch.ones(2, 6, 3), torch.zeros(2, 6, 3)
    assert masked_mse(s, t, mask).item() == pytest.approx(1.0)


def test_objective_combines_the_three_losses():
    torch.manual_seed(0)
    zs, zt, y = torch.randn(4, 4), torch.randn(4, 4), torch.tensor([0, 1, 2, 3])
    sh, th = _hidden(2, 3, batch=4), _hidden(4, 4, batch=4)
    mapping, mask = {1: 2, 2: 4}, torch.ones(4, 6, dtype=torch.bool)
    total, parts = mlkd_objective(zs, y, sh, zt, th, mapping, mask, T=7.0, alpha=0.7, beta=0.5)
    assert all(v.dim() == 0 and not v.requires_grad for v in parts.values())  # read when the caller chooses
    parts = {k: v.item() for k, v in parts.items()}
    expected = 0.7 * (parts["kd"] + 0.5 * parts["ml"]) + 0.3 * parts["ce"]
    assert total.item() == pytest.approx(expected, rel=1e-6)
    assert parts["ce"] == pytest.approx(F.cross_entropy(zs, y).item())
    assert parts["kd"] == pytest.approx(kd_loss(zs, zt, 7.0).item())
    ce_only, p = mlkd_objective(zs, y)
    assert ce_only.item() == pytest.approx(F.cross_entropy(zs, y).item()) and set(p) == {"ce"}


def test_the_objectives_defaults_are_the_papers():
    torch.manual_seed(1)
    zs, zt, y = torch.randn(4, 4), torch.randn(4, 4), torch.tensor([0, 1, 2, 3])
    sh, th = _hidden(2, 5, batch=4), _hidden(4, 6, batch=4)
    args = (zs, y, sh, zt, th, {1: 2, 2: 4}, torch.ones(4, 6, dtype=torch.bool))
    assert mlkd_objective(*args)[0].item() == pytest.approx(
        mlkd_objective(*args, T=7.0, alpha=0.7, beta=1.0)[0].item(), rel=1e-7)
    assert kd_loss(zs, zt).item() == pytest.approx(kd_loss(zs, zt, 7.0).item(), rel=1e-7)


def test_the_losses_in_the_students_precision_and_one_real_value():
    """Under mixed precision the teacher's fp32 targets are brought to the student's dtype (bf16) first; a single
    real frame of one dimension is its own mean."""
    torch.manual_seed(2)
    s, t = torch.randn(2, 3, 4).bfloat16(), torch.randn(2, 3, 4)
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]], dtype=torch.bool)
    got = masked_mse(s, t, mask)
    ref = ((s - t.bfloat16()) ** 2)[mask].sum() / (3 * 4)
    assert got.dtype == torch.bfloat16 and got.item() == pytest.approx(ref.item(), rel=1e-2)
    zs, zt = torch.randn(3, 4).bfloat16(), torch.randn(3, 4)
    assert kd_loss(zs, zt, 7.0).dtype == torch.bfloat16
    real = torch.tensor([[True], [False]])
    one = masked_mse(torch.tensor([[[3.0]], [[9.0]]]), torch.tensor([[[1.0]], [[0.0]]]), real)
    assert one.item() == pytest.approx(4.0)  # (3 − 1)², over the one real value
