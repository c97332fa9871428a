"""The study's vocabulary, defined once: the emotion codes, the clean condition, the teacher and the baseline (the
student arms are records in ``arms.py``). Imports nothing, so the data layer, the torch-free `mlkd predict` and a
Ray worker can all use it.

Which classes a study has, and their logit order, is data: the study's ``emotions`` key, stored with
every model and export. ``EMOTIONS`` is only that key's default, the paper's IEMOCAP set."""

# three-letter codes shared across corpora, so that one corpus's labels line up with another's
LABEL_CODES = {"neu": "neutral", "hap": "happy", "ang": "angry", "sad": "sad", "fea": "fearful",
               "dis": "disgusted", "sur": "surprised", "cal": "calm", "bor": "bored", "con": "contempt"}
EMOTIONS = ("neu", "hap", "ang", "sad")  # the paper's four classes, in logit order: the default of `emotions`
CLEAN = "clean"  # the noise name of the clean test condition (its SNR is None)
NOISE = "noise"  # the condition of the noise types the students train on (their test part), at the study's SNRs
# (the test-only condition families are modules of data/conditions/, each naming itself)
NO_LEVEL = float("-inf")  # stands for "no SNR / severity" (clean speech) where rows are grouped: an SNR may be negative

TEACHER, BASELINE = "teacher", "baseline"  # the clean-trained teacher; it behind the VAD + NMF front-end
NOISE_TYPES = ("babble", "f16", "factory", "hfchannel", "volvo")  # NOISEX-92 names: the paper's five types

# the self-supervised encoders a study takes from a folder (config.json's model_type; method/models.py builds them)
ENCODER_TYPES = ("wav2vec2", "hubert", "wavlm", "data2vec-audio")
NAMED_MODELS = ("tiny", "micro", "base")  # architectures models.py builds with random weights (no folder)


def label_merges(label_map) -> dict[str, str]:
    """A study's ``label_map`` (``RAW:CODE`` strings) as raw label → code."""
    return {raw.strip(): code.strip() for raw, _, code in (m.partition(":") for m in label_map)}


def reference_noise(noise_types) -> str:
    """The noise of Table 1 and of the far-field condition: factory, as in the paper, when the study has it; else
    its first noise type."""
    return "factory" if "factory" in noise_types else noise_types[0]
