"""The explorer's own-recording tab: no speech, no emotion — no model is asked about silence or faint noise, and
speech is still classified."""

from __future__ import annotations

import numpy as np
import torch
from helpers.corpora import voice

from mlkd_lib.config import make_config
from mlkd_lib.explore.recording import analyse
from mlkd_lib.method.models import build_teacher


class Models:
    """A fold's models as the explorer holds them: here the teacher alone, counting how often it is asked."""

    names = ("teacher", "student_unsup", "student_sup", "student_unsup_from_teacher", "baseline")

    def __init__(self):
        torch.manual_seed(0)
        self.teacher, self.asked = build_teacher("micro").eval(), 0

    def missing(self, fold):
        return ["baseline (no speech basis)", "student_sup (none)", "student_unsup (none)",
                "student_unsup_from_teacher (none)"]

    def enhancer(self, fold):
        return None

    def model(self, fold, name):
        self.asked += 1
        return self.teacher


def test_silence_and_faint_noise_ask_no_model_and_speech_does():
    cfg, models = make_config("micro"), Models()
    for x in (np.zeros(32_000), 0.001 * np.random.default_rng(0).standard_normal(48_000)):
        view = analyse(models, "Ses01F", x.astype(np.float32), "clean", None, {}, cfg)
        assert view.no_speech and view.speech_s < 0.3 and view.probabilities == {}
    assert models.asked == 0
    view = analyse(models, "Ses01F", voice(2.0, 16_000, 150.0), "clean", None, {}, cfg)
    assert not view.no_speech and models.asked == 1
    assert np.isclose(view.probabilities["teacher"].sum(), 1.0) and view.probabilities["student_sup"] is None
