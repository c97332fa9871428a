"""The study's vocabulary, defined once: the emotion classes (in logit order), the clean
condition, the models a study trains and how tables and plots name them. Imports nothing,
so the data layer, the torch-free `mlkd predict` and a Ray worker can all use it."""

EMOTIONS = ("neu", "hap", "ang", "sad")  # the order of every classifier's logits
CLEAN = "clean"  # the noise name of the clean test condition (its SNR is None)

TEACHER, STUDENT_SUP, STUDENT_UNSUP, BASELINE = "teacher", "student_sup", "student_unsup", "baseline"
TRAINED = (TEACHER, STUDENT_SUP, STUDENT_UNSUP)  # the roles `train()` knows
MODEL_LABELS = {TEACHER: "Teacher", STUDENT_UNSUP: "Student without supervision",
                STUDENT_SUP: "Student with supervision (MLKD)", BASELINE: "Baseline (VAD + NMF)"}
MODELS = tuple(MODEL_LABELS)  # display order: teacher, the two students, the baseline
NOISE_TYPES = ("babble", "f16", "factory", "hfchannel", "volvo")  # NOISEX-92 names
NAMED_MODELS = ("tiny", "micro", "base")  # architectures models.py builds with random weights (no folder)
