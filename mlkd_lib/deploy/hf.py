"""`mlkd export --format hf`: a trained model as a Hugging Face folder of its encoder family's
``XxxForSequenceClassification`` (``Wav2Vec2ForSequenceClassification``, ``WavLMForSequenceClassification``,
…) that ``transformers.pipeline("audio-classification", model=DIR)`` and
``AutoModelForAudioClassification.from_pretrained(DIR)`` load offline, with the model's own classes as labels.

Our classifier is exactly expressible there (the four families share this head): HF's model
projects every frame (``projector``), takes the (masked) mean over frames, then classifies
(``classifier``). Our head is one linear layer W, b on the masked mean, and since it is linear,
mean(W x + b) = W mean(x) + b: our head becomes the projector (``classifier_proj_size`` = number of
labels) and the classifier is the identity. The feature extractor's ``do_normalize`` is our
per-utterance normalisation (zero mean, unit variance, the same 1e-7), and it returns an attention
mask exactly where our model takes one (layer-norm encoders). The classifier divides by the model's
fitted temperature (``analysis/calibration.py``), so that the pipeline's scores are the calibrated
probabilities; ``config.json``'s ``temperature_scaling`` records it (``applied`` false: a ``raw`` export,
whose classifier is the identity).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers import PreTrainedModel, Wav2Vec2FeatureExtractor

from ..arms import label
from ..data.audio import SAMPLE_RATE
from ..layout import read_table
from ..method.models import EmotionClassifier, encoder_family
from .export import temperature_record

FAMILY_NAMES = {"wav2vec2": "wav2vec 2.0", "hubert": "HuBERT", "wavlm": "WavLM", "data2vec-audio": "data2vec-audio"}


def to_hf(model: EmotionClassifier, raw: bool = False) -> PreTrainedModel:
    """The same classifier as its family's ``XxxForSequenceClassification`` (weights copied, nothing
    retrained), labelled with the model's classes; its logits divided by the model's temperature unless ``raw``."""
    labels, cls = model.labels, encoder_family(model.family).classifier
    scaling = temperature_record(model, raw)
    config = type(model.config).from_dict({**model.config.to_dict(), "architectures": [cls.__name__],
                                           "id2label": dict(enumerate(labels)),
                                           "label2id": {lab: i for i, lab in enumerate(labels)},
                                           "classifier_proj_size": len(labels), "use_weighted_layer_sum": False,
                                           **({"temperature_scaling": scaling} if scaling else {})})
    hf = cls(config).eval()
    body = getattr(hf, cls.base_model_prefix)  # the encoder inside: hf.wav2vec2, hf.wavlm, hf.data2vec_audio, …
    # SpecAugment's mask vector acts only in training with masking on; HF builds it only then
    encoder = {k: v for k, v in model.encoder.state_dict().items()
               if k != "masked_spec_embed" or hasattr(body, "masked_spec_embed")}
    missing, unexpected = body.load_state_dict(encoder, strict=False)
    if unexpected or [k for k in missing if k != "masked_spec_embed"]:
        raise RuntimeError(f"the encoder does not map onto {cls.__name__}: missing {missing}, "
                           f"unexpected {unexpected}")
    with torch.no_grad():
        hf.projector.weight.copy_(model.head.weight)
        hf.projector.bias.copy_(model.head.bias)
        hf.classifier.weight.copy_(torch.eye(len(labels)) / (model.calibration_temperature if not raw else 1.0))
        hf.classifier.bias.zero_()
    return hf


def feature_extractor(model: EmotionClassifier) -> Wav2Vec2FeatureExtractor:
    return Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=SAMPLE_RATE, padding_value=0.0, do_normalize=True,
                                    return_attention_mask=model.uses_attention_mask())


CARD = """---
library_name: transformers
pipeline_tag: audio-classification
tags: [speech-emotion-recognition, {family}, knowledge-distillation{extra_tags}]
---

# {title}

{what}

- From the study `{study}` ({corpus}), fold `{fold}`: trained without the test speaker `{fold}`, and tested on
  that speaker alone. Config, versions and commit: `provenance.json` beside this card.
- Input: mono speech at 16 kHz; one label per input, for utterances of up to {max_seconds:g} s (cut longer
  recordings into turns first, e.g. `mlkd predict --segments`).
- Labels: {labels}.
- Scores: {scores}

## Test UA on the held-out speaker (%)

Clean speech: {clean_ua}. Under noise (the study's test segments of each recording):

| noise | {snr_heads} |
|---|{snr_rule}
{ua_rows}

## Use

```python
import soundfile as sf
from transformers import pipeline
classify = pipeline("audio-classification", model="{folder}")
speech, rate = sf.read("speech.wav", dtype="float32")  # mono; the pipeline resamples to 16 kHz
classify({{"raw": speech, "sampling_rate": rate}}, top_k=None)  # every class: [{{"label": ..., "score": ...}}, ...]
```

(A file name works too where ffmpeg is installed: the pipeline decodes files with it.)

## Intended use and limits

{limits}
"""

SYNTHETIC_LIMITS = ("A **demo model**: trained on *synthetic* espeak-ng speech of ten voices whose emotions are coded "
                    "in prosody, under synthetic noises, with a tiny wav2vec 2.0. It shows that the pipeline works; "
                    "it is not a model of emotion in real speech and must not be used as one.")
REAL_LIMITS = ("Trained on {corpus}, {n} classes, under the noises of its study ({noises}). It has not been "
               "validated beyond that corpus's speakers, language and speaking style, nor on children or for clinical "
               "use; treat its labels as a research measurement, not a judgement about a person.")


def _ua_table(metrics_csv: Path) -> tuple[str, str, str, str]:
    """(clean UA, header, rule, rows) of the model card's table: UA per noise type at 0, 10 and 20 dB."""
    if not metrics_csv.is_file():
        return "–", "0 dB | 10 dB | 20 dB", "---|---|---|", ""
    m = read_table(metrics_csv)
    snrs = [0.0, 10.0, 20.0]
    rows = []
    for noise in sorted(set(m.noise) - {"clean"}):
        cells = [100 * m[(m.noise == noise) & (m.snr_db == s)].ua.mean() for s in snrs]
        rows.append(f"| {noise} | " + " | ".join("–" if c != c else f"{c:.1f}" for c in cells) + " |")
    clean = 100 * m[m.noise == "clean"].ua.mean()
    return f"{clean:.1f}", " | ".join(f"{s:g} dB" for s in snrs), "---|" * len(snrs), "\n".join(rows)


def scores_line(model: EmotionClassifier, raw: bool) -> str:
    """What the pipeline's scores are, for the model card."""
    if not model.temperature_scaling:
        return "the model's own probabilities (no temperature was fitted for it)."
    s = model.temperature_scaling
    fitted = (f"T = {s['temperature']:.3f}, fitted by minimising the NLL on {s['utterances']} utterances of "
              f"{s['fitted_on']}")
    if raw:
        return f"the model's own probabilities (exported `--raw`; its temperature, {fitted}, is not applied)."
    return (f"temperature-scaled probabilities, softmax(logits / T) with {fitted} (the classifier layer divides by T; "
            f"`mlkd export --raw` keeps the model's own). See `docs/calibration.md` of mlkd-ser.")


def write_hf_folder(model: EmotionClassifier, out: str | Path, *, study: Path, fold: str, role: str, cfg,
                    provenance: dict, raw: bool = False) -> Path:
    """``out/``: config.json, model.safetensors, preprocessor_config.json, README.md (the model card) and
    provenance.json; the scores temperature-scaled unless ``raw``."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} exists and is not empty: name a new folder for the exported model")
    hf = to_hf(model, raw)
    hf.save_pretrained(out, safe_serialization=True)
    feature_extractor(model).save_pretrained(out)
    clean, heads, rule, rows = _ua_table(study / "folds" / fold / role / "metrics.csv")
    synthetic = cfg.corpus == "synthetic"
    family = FAMILY_NAMES.get(model.family, model.family)
    corpus = {"iemocap": "acted English dyadic speech (IEMOCAP)",
              "manifest": f"the corpus of `{Path(cfg.manifest).name}`"}.get(cfg.corpus, cfg.corpus)
    limits = SYNTHETIC_LIMITS if synthetic else REAL_LIMITS.format(corpus=corpus, n=len(model.labels),
                                                                   noises=", ".join(cfg.noise_types))
    (out / "README.md").write_text(CARD.format(
        title=f"{label(role)}: speech emotion recognition in noise", family=model.family,
        extra_tags=", synthetic" if synthetic else "",
        what=f"`{role}` of an mlkd-ser study ({label(role)}): a {family} with {model.num_layers} transformer "
             f"layers, mean pooling and one linear layer.", clean_ua=clean,
        study=study.name, corpus="synthetic speech" if synthetic else cfg.corpus, fold=fold,
        max_seconds=cfg.max_seconds, labels=", ".join(model.labels), snr_heads=heads,
        snr_rule=rule, ua_rows=rows, folder=out.name, limits=limits, scores=scores_line(model, raw)))
    (out / "provenance.json").write_text(json.dumps(provenance, indent=2, default=str))
    return out
