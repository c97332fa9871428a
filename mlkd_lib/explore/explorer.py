"""The study explorer (notebook 05, `mlkd listen`): pick a fold, an utterance, a noise and an
SNR; hear clean, noisy and enhanced audio and see what every trained model predicts for
exactly the noisy audio the study evaluated. Reads a study through ``layout.StudyLayout``."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np

from ..analysis.tables import summarise
from ..arms import study_models
from ..config import study_config
from ..data.conditions.families import Condition, family_conditions, heard
from ..data.dataset import AudioCache
from ..data.prepare import FoldData, bank_types, load_fold
from ..layout import StudyLayout, read_table
from ..method.baseline import VadNmfEnhancer
from ..method.checkpoint import load_model
from ..names import BASELINE, CLEAN, TEACHER
from .players import (
    audio_player,
    class_probabilities,
    figure_png,
    predictions_html,
    shared_gain,
    spectrogram_png,
    wav_bytes,
)
from .recording import recording_panel


class StudyModels:
    """The trained models of a study's folds, loaded on first use and kept; says what is missing."""

    def __init__(self, study: StudyLayout, cfg):
        self.study, self.cfg = study, cfg
        self.names = study_models(cfg)  # the teacher, the study's student arms, the baseline
        self._models: dict[tuple[str, str], object] = {}
        self._enhancers: dict[str, object] = {}

    def _file(self, fold: str, name: str) -> Path:
        """What a model needs on disk: a checkpoint, or for the baseline its NMF speech basis."""
        d = self.study.fold(fold).model(name)
        return d.speech_basis if name == BASELINE else d.best_ckpt

    def missing(self, fold: str) -> list[str]:
        return [f"{m} ({self._file(fold, m)})" for m in self.names if not self._file(fold, m).is_file()]

    def model(self, fold: str, name: str):
        key = (fold, name)
        if key not in self._models:
            self._models[key] = load_model(self._file(fold, name)).eval()
        return self._models[key]

    def enhancer(self, fold: str):
        if fold not in self._enhancers:
            basis = np.load(self._file(fold, BASELINE))
            self._enhancers[fold] = VadNmfEnhancer(basis, self.cfg.nmf_noise_components, self.cfg.vad_aggressiveness,
                                                   seed=self.cfg.seed)
        return self._enhancers[fold]


class Explorer:
    """Filter utterances, choose a noise and an SNR, hear clean / noisy / enhanced audio, and see
    each model's class probabilities for exactly the noisy audio the study evaluated."""

    def __init__(self, study_dir: str | Path):
        self.study_dir = Path(study_dir)
        self.study = StudyLayout(self.study_dir)
        self.cfg = study_config(self.study_dir)
        self.folds = self.study.folds()
        if not self.folds:
            raise FileNotFoundError(f"{self.study_dir}: no trained folds yet (folds/<fold>/...): run `mlkd study`")
        self._data: dict[str, FoldData] = {}
        first = self.fold_data(self.folds[0])
        # the test part of each noise recording (unseen types too) and the rooms: what the evaluation heard
        self.bank, self.rirs = first.noise_bank, first.rirs
        # the test-only signal conditions (reverberation, far field, telephone, codec, clipping) the study scored
        self.signal_conditions = [c for c in family_conditions(self.cfg, sorted(self.rirs) or None) if c.is_signal]
        self.models = StudyModels(self.study, self.cfg)
        self.audio = AudioCache(self.cfg.max_seconds)  # cut like the evaluation's
        self._cache: dict[tuple, tuple] = {}
        self.last_update_s = 0.0

    def fold_data(self, fold: str) -> FoldData:
        """A fold's utterances, noise and rooms as its steps read them (``prepare.load_fold``), read once."""
        if fold not in self._data:
            self._data[fold] = load_fold(self.cfg, fold)
        return self._data[fold]

    def tests(self, fold: str):
        """The fold's test utterances: what its models never heard in training."""
        return self.fold_data(fold).test

    def compute(self, fold: str, utt_id: str, noise: str, snr: float | None, signal=None):
        """(clean, noisy, enhanced, {model: probs}, notes) for one choice — (noise, SNR), or ``signal``, a test-only
        signal condition — exactly as the evaluation made it; cached."""
        key = (fold, utt_id, noise, snr, signal)
        if key not in self._cache:
            row = self.tests(fold).set_index("utt_id").loc[utt_id]
            clean = self.audio.get(utt_id, row.path)
            condition = signal or Condition(noise, snr)
            speech_db = None if condition.is_signal or noise == CLEAN else \
                self.audio.level_db(utt_id, row.path, self.cfg.level)
            noisy = heard(clean, utt_id, condition, self.bank, self.rirs, self.cfg.seed, self.cfg.level, speech_db)
            missing = self.models.missing(fold)
            have = {m for m in self.models.names if not any(x.startswith(m + " ") for x in missing)}
            enhanced = self.models.enhancer(fold)([noisy])[0] if BASELINE in have else None
            probs = {}
            for m in self.models.names:
                if m == BASELINE:  # the teacher hears the enhanced audio
                    ok = BASELINE in have and TEACHER in have
                    probs[m] = class_probabilities(self.models.model(fold, TEACHER), enhanced) if ok else None
                else:
                    probs[m] = class_probabilities(self.models.model(fold, m), noisy) if m in have else None
            notes = [f"missing: {x}" for x in missing]
            self._cache[key] = (clean, noisy, enhanced, probs, notes)
        return self._cache[key]

    def view(self, fold: str, utt_id: str, noise: str, snr: float | None, signal=None) -> dict:
        """Everything one choice shows (player audio, figure, prediction table), rendered once and kept."""
        key = ("view", fold, utt_id, noise, snr, signal)
        if key not in self._cache:
            cond_noise = CLEAN if snr is None else noise
            clean, noisy, enhanced, probs, notes = self.compute(fold, utt_id, cond_noise, snr, signal)
            shown = {"clean": clean, "noisy": noisy} | ({"enhanced": enhanced} if enhanced is not None else {})
            gain = shared_gain(*shown.values())
            cond = signal.label if signal is not None else "clean" if snr is None else f"{noise} {snr:g} dB"
            png = spectrogram_png({"clean": clean, f"noisy ({cond})": noisy}
                                  | ({"VAD + NMF": enhanced} if enhanced is not None else {}), utt_id)
            true = self.tests(fold).set_index("utt_id").loc[utt_id, "emotion"]
            self._cache[key] = {"wavs": {k: wav_bytes(x, gain) for k, x in shown.items()}, "cond": cond,
                                "png": png, "html": predictions_html(true, probs, notes, self.cfg.emotions,
                                                                       self.cfg.min_confidence)}
        return self._cache[key]

    def controls(self) -> SimpleNamespace:
        """The listening tab's widgets: what to hear (fold, speaker, emotion, utterance, noise, SNR, or instead a
        signal condition) and where it shows (players, spectrogram, predictions, status)."""
        unseen = [t for t in bank_types(self.cfg) if t not in self.cfg.noise_types]
        c = SimpleNamespace(
            fold=W.Dropdown(options=self.folds, description="fold"),
            speaker=W.Dropdown(description="speaker"),  # the fold's test speakers (one under leave-one-speaker-out)
            emotion=W.Dropdown(options=["all", *self.cfg.emotions], description="emotion"),
            utt=W.Dropdown(description="utterance", layout=W.Layout(width="420px")),
            noise=W.Dropdown(options=[(n, n) for n in self.cfg.noise_types] + [(f"{n} (unseen)", n) for n in unseen],
                             description="noise"),
            instead=W.Dropdown(options=[("— (the noise and SNR)", -1)] + [
                (f"{c.label} (unseen)", i) for i, c in enumerate(self.signal_conditions)], description="instead"),
            snr=W.SelectionSlider(options=[(f"{s:g} dB", float(s)) for s in self.cfg.snrs] + [("clean", None)],
                                  value=float(self.cfg.snrs[0]), description="SNR", continuous_update=False),
            players={k: audio_player() for k in ("clean", "noisy", "enhanced")},
            image=W.Image(format="png"), preds=W.HTML(), status=W.HTML())
        c.labels = {k: W.Label(k) for k in c.players}
        c.preds.add_class("mlkd-predictions")
        c.status.add_class("mlkd-status")
        return c

    def widget(self) -> W.Tab:
        c = self.controls()
        fold, speaker, emotion, utt, noise, snr, instead = c.fold, c.speaker, c.emotion, c.utt, c.noise, c.snr, \
            c.instead
        players, labels, image, preds, status = c.players, c.labels, c.image, c.preds, c.status
        busy = {"on": False}

        def refresh_utterances(_=None):
            test = self.tests(fold.value)
            sel = test[test.speaker == speaker.value]
            if emotion.value != "all":
                sel = sel[sel.emotion == emotion.value]
            utt.options = list(sel.utt_id)
            if utt.options and utt.value not in utt.options:
                utt.value = utt.options[0]

        def refresh_speakers(_=None):
            busy["on"] = True  # one refresh of the utterances, not one per option change
            speaker.options = sorted(self.tests(fold.value).speaker.unique())
            if speaker.value not in speaker.options:  # ipywidgets leaves a new list unselected
                speaker.value = speaker.options[0]
            busy["on"] = False
            refresh_utterances()

        def on_speaker(_=None):
            if not busy["on"]:
                refresh_utterances()

        def update(_=None):
            if not utt.value:
                preds.value = "<i>no utterance matches the filters</i>"
                return
            t0 = time.perf_counter()
            view = self.view(fold.value, utt.value, noise.value, snr.value,
                             self.signal_conditions[instead.value] if instead.value >= 0 else None)
            for k, data in view["wavs"].items():
                players[k].value = data
            labels["noisy"].value = f"noisy: {view['cond']}"
            labels["enhanced"].value = f"VAD + NMF enhanced: {view['cond']}"
            image.value, preds.value = view["png"], view["html"]
            self.last_update_s = time.perf_counter() - t0
            ms = 1000 * self.last_update_s
            status.value = f"<small>fold {fold.value} · {view['cond']} · updated in {ms:.0f} ms</small>"

        fold.observe(refresh_speakers, names="value")
        speaker.observe(on_speaker, names="value")
        emotion.observe(refresh_utterances, names="value")
        for w in (utt, noise, snr, instead):
            w.observe(update, names="value")
        refresh_speakers()
        update()
        listen = W.VBox([
            W.HBox([fold, speaker, emotion]), W.HBox([utt, noise, snr]), W.HBox([instead]),
            W.HBox([W.VBox([labels[k], players[k]]) for k in players]),
            preds, status, image])
        return W.Tab(children=[listen, recording_panel(self), self.results_panel()],
                     titles=["Listen", "Your recording", "Results"])

    def results_panel(self) -> W.VBox:
        """The study's plots, and UA against SNR for a chosen model and noise type."""
        plots_dir = self.study.plots
        items = []
        for name in ("ua_vs_snr", "confusion", "mlkd_minus_baseline"):
            f = plots_dir / f"{name}.png"
            items.append(W.Image(value=f.read_bytes(), format="png", layout=W.Layout(max_width="100%"))
                         if f.is_file() else W.HTML(f"<i>{f} not made yet: run the analysis (04_analysis)</i>"))
        metrics_file = self.study.metrics
        if not metrics_file.is_file():
            return W.VBox([W.HTML(f"<i>{metrics_file} not made yet</i>"), *items])
        summary = summarise(read_table(metrics_file))
        model = W.Dropdown(options=[m for m in self.models.names if m in set(summary.model)], description="model")
        noise = W.Dropdown(options=sorted(set(summary.noise) - {CLEAN}), description="noise")
        chart = W.Image(format="png")

        def draw(_=None):
            d = summary[(summary.model == model.value) & (summary.noise == noise.value)].sort_values("snr_db")
            fig, ax = plt.subplots(figsize=(4.5, 3))
            ax.errorbar(d.snr_db, d.ua_mean, yerr=d.ua_std.fillna(0), marker="o", capsize=3)
            clean = summary[(summary.model == model.value) & (summary.noise == CLEAN)]
            if len(clean):
                ax.axhline(clean.ua_mean.iloc[0], ls="--", c="grey", label="clean")
                ax.legend()
            ax.set(xlabel="SNR (dB)", ylabel="UA % (mean ± std over folds)", ylim=(0, 100),
                   title=f"{model.value}, {noise.value}")
            chart.value = figure_png(fig)

        model.observe(draw, names="value")
        noise.observe(draw, names="value")
        draw()
        return W.VBox([W.HBox([model, noise]), chart, *items])


def explorer(study_dir: str | Path):
    """The explorer widget, or a clear message saying what the study folder lacks."""
    try:
        return Explorer(study_dir).widget()
    except FileNotFoundError as err:
        return W.HTML(f"<div class='mlkd-status' style='color:#a33'><b>Cannot open the study:</b> {err}</div>")
