"""The MLKD objective (paper Eq. 1–6; our reading in docs/design.md), and the losses a student arm trains with."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F


class Loss(NamedTuple):
    """What a student arm's loss (``arms.Arm.loss``) asks of the objective: the teacher's targets at all (L_KD), and
    its layers too (L_ML, weighted by ``beta``)."""
    teacher: bool
    layers: bool


LOSSES = {"CE": Loss(teacher=False, layers=False),  # L_CE alone: the "student without supervision"
          "MLKD": Loss(teacher=True, layers=True)}  # α(L_KD + β·L_ML) + (1 − α)L_CE


def masked_mse(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over real frames only: sum of squares over (frames, dims)
    of the frames where ``mask`` is True, divided by their count × dims."""
    m = mask.unsqueeze(-1).to(student.dtype)
    diff2 = (student - teacher.to(student.dtype)) ** 2 * m
    return diff2.sum() / (m.sum() * student.shape[-1]).clamp(min=1.0)


def multilevel_loss(student_hidden, teacher_hidden, mapping: dict[int, int], mask: torch.Tensor) -> torch.Tensor:
    """L_ML = mean over k of MSE(H_S[k], H_T[mapping[k]]) (Eq. 1).

    Hidden states use HF indexing (``[0]`` = transformer input, ``[k]`` = output of
    layer k); ``teacher_hidden`` may also be a dict {teacher layer: tensor} (the cache).
    """
    losses = [masked_mse(student_hidden[k], teacher_hidden[t], mask) for k, t in sorted(mapping.items())]
    return torch.stack(losses).mean()


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, T: float = 7.0,
            t_squared: bool = True) -> torch.Tensor:
    """L_KD = T² · KL(softmax(z_T/T) ‖ softmax(z_S/T)), averaged over the batch (Eq. 2–4).

    T² keeps the gradient scale independent of T (Hinton et al.); the paper's equations do not
    show it, so ``t_squared=False`` drops it."""
    log_p_s = F.log_softmax(student_logits / T, dim=-1)
    log_p_t = F.log_softmax(teacher_logits.to(student_logits.dtype) / T, dim=-1)
    kl = F.kl_div(log_p_s, log_p_t, reduction="batchmean", log_target=True)
    return T * T * kl if t_squared else kl


def mlkd_objective(student_logits, labels, student_hidden=None, teacher_logits=None, teacher_hidden=None,
                   mapping=None, mask=None, T: float = 7.0, alpha: float = 0.7, beta: float = 1.0,
                   t_squared: bool = True):
    """L = α·(L_KD + β·L_ML) + (1−α)·L_CE (Eq. 5–6). Without teacher outputs: L = L_CE
    (the "student without supervision"). Returns (total, parts): the terms as detached 0-d tensors on the
    device, so that reading them costs no wait for the device until a caller asks (once an epoch)."""
    ce = F.cross_entropy(student_logits, labels)
    if teacher_logits is None:
        return ce, {"ce": ce.detach()}
    kd = kd_loss(student_logits, teacher_logits, T, t_squared)
    ml = multilevel_loss(student_hidden, teacher_hidden, mapping, mask) if beta else ce.new_zeros(())
    total = alpha * (kd + beta * ml) + (1 - alpha) * ce
    return total, {"ce": ce.detach(), "kd": kd.detach(), "ml": ml.detach()}
