"""Speed: inference time of teacher vs student on the same utterances (the paper's
Table 3: 926 s vs 444 s, ratio 0.48, on a Xeon CPU), the student as deployed (ONNX fp32
and int8 in onnxruntime, same threads, same run), and the time of one distillation step
with and without the teacher-target cache.

The versions are timed in rounds, each round running every version over all utterances
in turn, and each version's time is its median round: on a shared machine the load drifts,
and timing one model after the other would hand that drift to the ratio."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ..arms import method_arm
from ..config import StudyConfig, make_config
from ..data.audio import speech_like
from ..data.dataset import AudioCache
from ..data.prepare import load_fold
from ..device import autocast, pick_device
from ..layout import StudyLayout
from ..method.checkpoint import load_model
from ..method.losses import mlkd_objective
from ..method.models import EmotionClassifier, build_student, build_teacher, default_layer_map, size_mib
from ..method.teacher_cache import TeacherTargets
from ..names import TEACHER
from .export import export_onnx, quantize_int8
from .scoring import onnx_runner, time_rounds
from .table3 import export_fold


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


def torch_runner(model: EmotionClassifier, device) -> Callable[[np.ndarray], None]:
    model.eval().to(device)

    @torch.no_grad()
    def run(w: np.ndarray) -> None:
        model(torch.from_numpy(w)[None].to(device))
        _sync(device)
    return run


def deployed_inference(teacher: EmotionClassifier, student: EmotionClassifier, waves: list[np.ndarray],
                       threads: int, rounds: int = 3, onnx_paths: dict | None = None,
                       calibration: list[np.ndarray] | None = None) -> dict:
    """Teacher and student in PyTorch (fp32) and the student in ONNX fp32 and int8, timed in the
    same rounds on the same utterances with ``threads`` threads. ``onnx_paths`` (keys ``onnx_fp32``,
    ``onnx_int8``): files already exported; else the student is exported here (:mod:`.export`),
    its int8 convolutions calibrated on ``calibration``."""
    cpu = torch.device("cpu")
    with tempfile.TemporaryDirectory() as tmp:
        if onnx_paths is None:
            onnx_paths = {"onnx_fp32": Path(tmp) / "student.onnx", "onnx_int8": Path(tmp) / "student_int8.onnx"}
            export_onnx(student, onnx_paths["onnx_fp32"])
            quantize_int8(onnx_paths["onnx_fp32"], onnx_paths["onnx_int8"], "conv+matmul", calibration)
        fp32, int8 = Path(onnx_paths["onnx_fp32"]), Path(onnx_paths["onnx_int8"])
        runners = {"teacher_torch_s": torch_runner(teacher, cpu), "student_torch_s": torch_runner(student, cpu),
                   "student_onnx_s": onnx_runner(fp32, threads), "student_onnx_int8_s": onnx_runner(int8, threads)}
        res = time_rounds(runners, waves, rounds)
        res |= {"student_onnx_mib": fp32.stat().st_size / 2**20, "student_onnx_int8_mib": int8.stat().st_size / 2**20}
    for k in ("student_torch_s", "student_onnx_s", "student_onnx_int8_s"):
        res[k[:-2] + "_vs_teacher"] = res[k] / res["teacher_torch_s"]
    return dict(res, utterances=len(waves), threads=threads, rounds=rounds, teacher_mib=size_mib(teacher),
                student_mib=size_mib(student), teacher_s=res["teacher_torch_s"], student_s=res["student_torch_s"],
                ratio=res["student_torch_vs_teacher"])


def study_inference(study_dir: str | Path, cfg: StudyConfig, rounds: int = 3) -> dict:
    """Table 3's timing: the trained teacher and MLKD student of the first complete fold (and, with
    ``cfg.deploy``, that student exported to ONNX fp32 and int8) on the same test utterances, in the
    same interleaved rounds. Always on the CPU with ``cfg.threads`` threads (all cores if 0), as the
    paper timed it, whatever device the study trained on."""
    study = StudyLayout(study_dir)
    for fold in study.folds():
        t, s = (study.fold(fold).model(m).best_ckpt for m in (TEACHER, method_arm().name))
        if t.is_file() and s.is_file():
            break
    else:
        raise FileNotFoundError(f"{study.dir}: no fold with both a trained teacher and an MLKD student")
    threads = cfg.threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    rows = load_fold(cfg, fold).test.head(cfg.bench_utterances)
    audio = AudioCache(cfg.max_seconds)
    waves = [audio.get(r.utt_id, r.path) for r in rows.itertuples()]
    if cfg.deploy:
        res = deployed_inference(load_model(t), load_model(s), waves, threads, rounds,
                                 onnx_paths=export_fold(study.dir, fold, cfg))
    else:
        res = compare_inference(load_model(t), load_model(s), waves, torch.device("cpu"))
    return dict(res, fold=fold, device=f"cpu, {threads} threads",
                student_dir=str(study.fold(fold).model(method_arm().name).path))


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
          batch_size: int = 8, rounds: int = 3, onnx: bool = True) -> dict:
    cfg = make_config("demo", model=model, threads=threads)
    device = pick_device(cfg)
    if device.type == "cpu":
        torch.set_num_threads(threads or torch.get_num_threads())
    torch.manual_seed(0)
    teacher = build_teacher(model)
    student = build_student(teacher, teacher.num_layers // 2)  # 6 of 12 as in the paper (2 of 4 for micro)
    teacher.encoder.freeze_feature_encoder()
    student.encoder.freeze_feature_encoder()
    rng = np.random.default_rng(0)
    waves = [speech_like(rng, seconds, pause_s=0.0) for _ in range(n)]
    res = {"model": model, "device": str(device), "threads": torch.get_num_threads(), "seconds_per_utt": seconds}
    if onnx and device.type == "cpu":
        # calibration for the int8 convolutions: other signals of other lengths than the timed ones
        calibration = [speech_like(rng, float(rng.uniform(1.0, seconds + 1.0)), pause_s=0.0) for _ in range(16)]
        res |= deployed_inference(teacher, student, waves, res["threads"], rounds, calibration=calibration)
    else:
        res |= compare_inference(teacher, student, waves, device)
    batch = waves[:batch_size] if len(waves) >= batch_size else (waves * batch_size)[:batch_size]
    amp = device.type == "cuda"
    for cached in (False, True) if distill_steps else ():
        res["distill_step_s_cache" if cached else "distill_step_s_no_cache"] = distill_step_seconds(
            teacher, student, batch, device, distill_steps, cached, amp)
    deployed = "".join(
        f"  student {name} {res[f'student_onnx{k}_mib']:.2f} MiB  {res[f'student_onnx{k}_s']:.2f} s "
        f"({res[f'student_onnx{k}_vs_teacher']:.2f} x teacher)\n"
        for name, k in (("ONNX fp32", ""), ("ONNX int8", "_int8")) if f"student_onnx{k}_s" in res)
    res["summary"] = (
        f"{model} on {device} ({res['threads']} threads), {n} utterances of {seconds:g} s, batch 1"
        + (f", median of {rounds} interleaved rounds" if deployed else "") + ":\n"
        f"  teacher {res['teacher_mib']:.2f} MiB  {res['teacher_s']:.2f} s\n"
        f"  student {res['student_mib']:.2f} MiB  {res['student_s']:.2f} s\n" + deployed +
        f"  student/teacher time ratio {res['ratio']:.2f} (paper: 444/926 = 0.48)"
        + (f"\ndistillation step, batch {len(batch)}: {res['distill_step_s_no_cache']:.3f} s without the teacher "
           f"cache, {res['distill_step_s_cache']:.3f} s with it" if distill_steps else ""))
    return res

