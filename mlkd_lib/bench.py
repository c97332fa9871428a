"""Speed: inference time of teacher vs student on the same utterances (the paper's
Table 3: 926 s vs 444 s, ratio 0.48, on a Xeon CPU), and the time of one
distillation step with and without the teacher-target cache."""

from __future__ import annotations

import time

import numpy as np
import torch

from .config import make_config
from .losses import mlkd_objective
from .models import EmotionClassifier, build_student, build_teacher, default_layer_map, size_mib
from .train import TeacherTargets, autocast, pick_device


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


@torch.no_grad()
def inference_seconds(model: EmotionClassifier, waves: list[np.ndarray], device) -> float:
    """Wall time to classify each utterance on its own (batch 1, as a deployed model would)."""
    model.eval().to(device)
    model(torch.from_numpy(waves[0])[None].to(device))  # warm-up
    _sync(device)
    t0 = time.perf_counter()
    for w in waves:
        model(torch.from_numpy(w)[None].to(device))
    _sync(device)
    return time.perf_counter() - t0


def compare_inference(teacher: EmotionClassifier, student: EmotionClassifier, waves: list[np.ndarray], device) -> dict:
    t_teacher = inference_seconds(teacher, waves, device)
    t_student = inference_seconds(student, waves, device)
    return {"utterances": len(waves), "teacher_s": t_teacher, "student_s": t_student, "ratio": t_student / t_teacher,
            "teacher_mib": size_mib(teacher), "student_mib": size_mib(student)}


def distill_step_seconds(teacher, student, waves, device, steps: int, cached: bool, amp: bool) -> float:
    """Mean seconds per MLKD training step on one batch of ``waves``."""
    mapping = default_layer_map(student.num_layers, teacher.num_layers)
    teacher.eval().to(device)
    student.train().to(device)
    for p in teacher.parameters():
        p.requires_grad_(False)
    opt = torch.optim.AdamW([p for p in student.parameters() if p.requires_grad], 1e-5)
    x = torch.from_numpy(np.stack(waves)).to(device)
    labels = torch.zeros(len(waves), dtype=torch.long, device=device)
    ids = [f"u{i}" for i in range(len(waves))]
    targets = None
    if cached:
        targets = TeacherTargets(teacher, list(mapping.values()), device, amp=amp)
        targets.fill(zip(ids, waves), progress=False)
    times = []
    for _ in range(steps + 1):  # the first step warms up
        _sync(device)
        t0 = time.perf_counter()
        with autocast(device, amp):
            out = student(x, output_hidden_states=True)
            if cached:
                t_hidden, t_logits = targets.batch(ids, out.frame_mask.shape[1])
            else:
                with torch.no_grad():
                    t = teacher(x, output_hidden_states=True)
                t_hidden, t_logits = t.hidden_states, t.logits
            loss, _ = mlkd_objective(out.logits.float(), labels, out.hidden_states, t_logits, t_hidden,
                                     mapping, out.frame_mask)
        opt.zero_grad()
        loss.backward()
        opt.step()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return float(np.mean(times[1:]))


def bench(model: str = "tiny", n: int = 20, seconds: float = 4.5, threads: int = 0, distill_steps: int = 5,
          batch_size: int = 8) -> dict:
    cfg = make_config("demo", model=model, threads=threads)
    device = pick_device(cfg)
    if device.type == "cpu":
        torch.set_num_threads(threads or torch.get_num_threads())
    torch.manual_seed(0)
    teacher = build_teacher(model)
    student = build_student(teacher)
    teacher.wav2vec2.freeze_feature_encoder()
    student.wav2vec2.freeze_feature_encoder()
    rng = np.random.default_rng(0)
    # speech-like test signal: amplitude-modulated noise of the given length
    n_samp = int(seconds * 16_000)
    waves = [(0.1 * rng.standard_normal(n_samp) * (1 + np.sin(np.arange(n_samp) / 800))).astype(np.float32)
             for _ in range(n)]
    res = {"model": model, "device": str(device), "threads": torch.get_num_threads(), "seconds_per_utt": seconds,
           **compare_inference(teacher, student, waves, device)}
    batch = waves[:batch_size] if len(waves) >= batch_size else (waves * batch_size)[:batch_size]
    amp = device.type == "cuda"
    res["distill_step_s_no_cache"] = distill_step_seconds(teacher, student, batch, device, distill_steps, False, amp)
    res["distill_step_s_cache"] = distill_step_seconds(teacher, student, batch, device, distill_steps, True, amp)
    res["summary"] = (
        f"{model} on {device} ({res['threads']} threads), {n} utterances of {seconds:g} s, batch 1:\n"
        f"  teacher {res['teacher_mib']:.2f} MiB  {res['teacher_s']:.2f} s\n"
        f"  student {res['student_mib']:.2f} MiB  {res['student_s']:.2f} s\n"
        f"  student/teacher time ratio {res['ratio']:.2f} (paper: 444/926 = 0.48)\n"
        f"distillation step, batch {len(batch)}: {res['distill_step_s_no_cache']:.3f} s without the teacher cache, "
        f"{res['distill_step_s_cache']:.3f} s with it")
    return res

