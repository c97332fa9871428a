"""Your own recording in the explorer: upload a file (any rate, mono or stereo, wav / flac / ogg), choose
a fold's models, a noise type and an SNR, hear it clean / noisy / enhanced with one shared gain, and see
what the teacher, the students and the baseline make of it — over its speech segments when it is longer
than the models' ``max_seconds``. A file the page cannot use gives a message; the page keeps working."""

from __future__ import annotations

import io
from dataclasses import dataclass

import ipywidgets as W
import numpy as np
import soundfile as sf

from ..data.audio import SAMPLE_RATE, AudioError, check_signal, resample, to_mono
from ..data.mixing import mix_at_snr
from ..data.vad import MIN_SPEECH_S, TurnSettings, speech_seconds, speech_turns, vad_decisions
from ..names import BASELINE, CLEAN, TEACHER
from .players import audio_player, class_probabilities, predictions_html, shared_gain, wav_bytes

MAX_UPLOAD_S = 120.0  # longer: `mlkd predict --segments`, which reads in blocks
MIN_SECONDS = 0.1
UPLOAD_SEED = 20_231  # the noise segment a recording gets: fixed, so a choice always sounds the same


def decode(content: bytes, name: str) -> np.ndarray:
    """An uploaded file as mono float32 at 16 kHz."""
    try:
        x, rate = sf.read(io.BytesIO(bytes(content)), dtype="float32", always_2d=False)
    except (RuntimeError, sf.LibsndfileError, TypeError) as err:
        raise AudioError(f"{name}: not a readable audio file (wav, flac or ogg): {err}") from None
    x = check_signal(to_mono(x, name), name)
    x = resample(x, rate)
    seconds = len(x) / SAMPLE_RATE
    if not MIN_SECONDS <= seconds <= MAX_UPLOAD_S:
        raise AudioError(f"{name}: {seconds:.1f} s; the explorer takes {MIN_SECONDS:g} s to {MAX_UPLOAD_S:.0f} s "
                         f"(longer recordings: mlkd predict --segments)")
    return x


@dataclass
class RecordingView:
    clean: np.ndarray
    noisy: np.ndarray
    enhanced: np.ndarray | None
    probabilities: dict  # model -> class probabilities (duration-weighted over the segments), or None
    segments: list  # (start_s, end_s)
    per_segment: dict  # model -> the predicted emotion of each segment
    speech_s: float = 0.0  # what the VAD hears as speech in the recording as uploaded

    @property
    def no_speech(self) -> bool:
        """Too little speech for an emotion to mean anything (``data/vad.py``): no model is asked."""
        return self.speech_s < MIN_SPEECH_S


def segments_of(x: np.ndarray, max_seconds: float) -> list[tuple[float, float]]:
    """The whole recording when the models take it in one piece; else its speech turns, cut at ``max_seconds``."""
    seconds = len(x) / SAMPLE_RATE
    if seconds <= max_seconds:
        return [(0.0, seconds)]
    return speech_turns(vad_decisions(x), seconds, TurnSettings(max_seconds=max_seconds)) or \
        [(a, min(seconds, a + max_seconds)) for a in np.arange(0.0, seconds, max_seconds)]


def analyse(models, fold: str, x: np.ndarray, noise: str, snr: float | None, bank: dict, cfg) -> RecordingView:
    """What the page shows for one recording and one choice (``models``: the explorer's ``StudyModels``)."""
    noisy = x if noise == CLEAN else mix_at_snr(x, bank[noise], snr, np.random.default_rng(UPLOAD_SEED), cfg.level)
    missing = {m.split(" ")[0] for m in models.missing(fold)}
    enhancer = models.enhancer(fold) if BASELINE not in missing else None
    segments = segments_of(x, cfg.max_seconds)
    probabilities, per_segment, speech = {}, {}, speech_seconds(x, cfg.vad_aggressiveness)
    for m in models.names if speech >= MIN_SPEECH_S else ():
        source = TEACHER if m == BASELINE else m
        if source in missing or (m == BASELINE and enhancer is None):
            probabilities[m] = None
            continue
        model = models.model(fold, source)
        parts = [noisy[int(a * SAMPLE_RATE):int(b * SAMPLE_RATE)] for a, b in segments]
        if m == BASELINE:
            parts = enhancer(parts)  # enhanced, non-speech dropped: the baseline's front-end
        probs = np.array([class_probabilities(model, p) for p in parts])
        weights = np.array([b - a for a, b in segments])
        probabilities[m] = (probs * weights[:, None]).sum(0) / weights.sum()
        per_segment[m] = [cfg.emotions[int(p.argmax())] for p in probs]
    enhanced = enhancer.enhance(noisy) if enhancer is not None else None
    return RecordingView(x, noisy, enhanced, probabilities, segments, per_segment, speech)


def segments_html(view: RecordingView) -> str:
    if len(view.segments) < 2:
        return ""
    models = list(view.per_segment)
    head = "".join(f"<th style='padding:2px 8px'>{m}</th>" for m in models)
    rows = "".join(f"<tr class='mlkd-segment'><td>{a:.2f}–{b:.2f} s</td>"
                   + "".join(f"<td style='padding:2px 8px'>{view.per_segment[m][i]}</td>" for m in models) + "</tr>"
                   for i, (a, b) in enumerate(view.segments))
    return (f"<div><b>{len(view.segments)} segments</b> (speech turns, at most the models' input length)"
            f"<table><tr><th>segment</th>{head}</tr>{rows}</table></div>")


def recording_panel(explorer) -> W.VBox:
    """The "Your recording" tab of the explorer."""
    cfg = explorer.cfg
    upload = W.FileUpload(accept=".wav,.flac,.ogg", multiple=False, description="recording")
    fold = W.Dropdown(options=explorer.folds, description="models of")
    noise = W.Dropdown(options=[*cfg.noise_types, CLEAN], description="noise")
    snr = W.SelectionSlider(options=[float(s) for s in cfg.snrs], value=float(cfg.snrs[0]), description="SNR (dB)",
                            continuous_update=False)
    players = {k: audio_player() for k in ("clean", "noisy", "enhanced")}
    preds, segs, status = W.HTML(), W.HTML(), W.HTML()
    preds.add_class("mlkd-upload-predictions")
    status.add_class("mlkd-upload-status")
    loaded: dict = {}

    def update(_=None):
        try:
            if upload.value:
                item = upload.value[0]
                if loaded.get("name") != item["name"] or loaded.get("size") != item["size"]:
                    loaded.update(name=item["name"], size=item["size"], audio=decode(item["content"], item["name"]))
            if "audio" not in loaded:
                status.value = "<i>upload a recording (wav, flac or ogg, any rate, mono or stereo)</i>"
                return
            view = analyse(explorer.models, fold.value, loaded["audio"], noise.value,
                           None if noise.value == CLEAN else snr.value, explorer.bank, cfg)
        except (AudioError, ValueError) as err:
            loaded.pop("audio", None)
            preds.value, segs.value = "", ""
            status.value = f"<div style='color:#a33'><b>Cannot use this file:</b> {err}</div>"
            return
        shown = {"clean": view.clean, "noisy": view.noisy} | ({"enhanced": view.enhanced} if view.enhanced is not None
                                                             else {})
        gain = shared_gain(*shown.values())
        for k, x in shown.items():
            players[k].value = wav_bytes(x, gain)
        if view.no_speech:
            preds.value = (f"<div class='mlkd-no-speech'><b>No speech</b>: the VAD hears {view.speech_s:.2f} s of "
                           f"speech in this recording, less than the {MIN_SPEECH_S:g} s an emotion needs, so no model "
                           f"is asked (a model picks one of its classes for anything, silence included)</div>")
        else:
            preds.value = predictions_html(None, view.probabilities, [], cfg.emotions, cfg.min_confidence)
        segs.value = segments_html(view)
        where = "clean" if noise.value == CLEAN else f"{noise.value} {snr.value:g} dB"
        seconds = len(view.clean) / SAMPLE_RATE
        status.value = f"<small>{loaded['name']}: {seconds:.1f} s · {where} · models of fold {fold.value}</small>"

    for w in (upload, fold, noise, snr):
        w.observe(update, names="value")
    update()
    panel = W.VBox([W.HBox([upload, fold]), W.HBox([noise, snr]),
                    W.HBox([W.VBox([W.Label(k), p]) for k, p in players.items()]), status, preds, segs])
    panel.add_class("mlkd-upload")
    return panel
