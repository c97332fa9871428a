"""The study's vocabulary, defined once: the emotion classes (in logit order), the clean
condition, the models a study trains and how tables and plots name them. Imports nothing,
so the data layer, the torch-free `mlkd predict` and a Ray worker can all use it."""

EMOTIONS = ("neu", "hap", "ang", "sad")  # the order of every classifier's logits
CLEAN = "clean"  # the noise name of the clean test condition (its SNR is None)

TEACHER, BASELINE = "teacher", "baseline"
# the student arms: MLKD, the paper's "student without supervision" (CE only), and the control (CE only from
# the teacher's weights) that tells the effect of the initialisation from the effect of the loss
STUDENT_SUP, STUDENT_UNSUP, STUDENT_CONTROL = "student_sup", "student_unsup", "student_unsup_from_teacher"
STUDENTS = (STUDENT_SUP, STUDENT_UNSUP, STUDENT_CONTROL)
TRAINED = (TEACHER, *STUDENTS)  # the roles `train()` knows
MODEL_LABELS = {TEACHER: "Teacher", STUDENT_UNSUP: "Student without supervision (CE only)",
                STUDENT_SUP: "Student with supervision (MLKD)",
                STUDENT_CONTROL: "Student without supervision (control)",
                BASELINE: "Baseline (VAD + NMF)"}
MODELS = tuple(MODEL_LABELS)  # display order: teacher, the students, the baseline
NOISE_TYPES = ("babble", "f16", "factory", "hfchannel", "volvo")  # NOISEX-92 names
NAMED_MODELS = ("tiny", "micro", "base")  # architectures models.py builds with random weights (no folder)
