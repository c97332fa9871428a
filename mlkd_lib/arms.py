"""The student arms a study trains, one record each. Training, the runner, the statistics, Tables 1 and 4, the
plots, the depth frontier, the explorer and export all read them from here, so an arm is added in one place.

An arm is its name (the step folder, and ``model`` in metrics.csv), how tables name it, its loss (a key of
``method/losses.py``'s ``LOSSES``), where its layers start (the teacher's even layers, the pretrained encoder's, or
the config key that chooses), the config keys whose change retrains it (an ablation, a sweep), the arms it is
compared with (this − that, paired over the folds), its colour, and the bool key that leaves it out. Adding an
arm — say, KD without the layer-wise term — is one record here and, where it brings a loss of its own, one entry
in ``LOSSES`` (``docs/design.md``, "Adding a student arm"). Imports nothing but the names: torch-free."""

from __future__ import annotations

from dataclasses import dataclass

from .names import BASELINE, TEACHER

STUDENT_SUP, STUDENT_UNSUP, STUDENT_CONTROL = "student_sup", "student_unsup", "student_unsup_from_teacher"
STARTS = ("teacher", "pretrained")  # where a student's layers can start
# what every student arm's training depends on: a change retrains them all
STUDENT_KEYS = frozenset({"student_epochs", "student_lr", "warmup_frac", "weight_decay", "student_layers"})
# seaborn's "deep" palette, written out (importing seaborn costs every notebook kernel half a second)
DEEP = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c")


@dataclass(frozen=True)
class Arm:
    name: str
    label: str
    short: str  # a legend's or a frontier row's name
    loss: str  # method/losses.py: LOSSES
    start: str  # "teacher", "pretrained", or the config key whose value is one of them
    keys: frozenset[str]  # the config keys whose change retrains it
    against: tuple[str, ...] = ()  # the arms it is compared with: this − that, paired over the folds
    color: str = DEEP[7]
    switch: str | None = None  # a bool config key: false leaves the arm out of the study
    method: bool = False  # the study's method: compared beyond the training noise and with the baseline
    frontier: bool = False  # retrained at every depth of the frontier (``mlkd sweep``)

    def init(self, cfg) -> str:
        """Where this study's copy of the arm starts: the teacher's layers or the pretrained encoder's."""
        return self.start if self.start in STARTS else getattr(cfg, self.start)

    def trained(self, cfg) -> bool:
        return self.switch is None or bool(getattr(cfg, self.switch))


ARMS = (  # in the order tables and plots show them
    # the paper's "student without supervision", "trained independently": it owes the teacher nothing
    Arm(STUDENT_UNSUP, "Student without supervision (CE only)", "CE-only", "CE", "unsup_init",
        STUDENT_KEYS | {"unsup_init"}, color=DEEP[1], frontier=True),
    Arm(STUDENT_SUP, "Student with supervision (MLKD)", "MLKD", "MLKD", "sup_init",
        STUDENT_KEYS | {"alpha", "beta", "temperature", "kd_t_squared", "sup_init"},
        against=(STUDENT_UNSUP, STUDENT_CONTROL), color=DEEP[2], method=True, frontier=True),
    # the control: the MLKD student's start with the CE-only student's loss, telling the two effects apart
    Arm(STUDENT_CONTROL, "Student without supervision (control)", "control", "CE", "teacher",
        STUDENT_KEYS | {"control_arm"}, against=(STUDENT_UNSUP,), color=DEEP[3], switch="control_arm"),
)
# the two models that are no student arm: how tables name them, their colours
OTHERS = {TEACHER: ("Teacher", DEEP[0]), BASELINE: ("Baseline (VAD + NMF)", DEEP[4])}


# everything below reads ARMS when it is called, so a record added there (or, in a test, to ARMS) is seen by all

def students() -> tuple[str, ...]:
    return tuple(a.name for a in ARMS)


def trained() -> tuple[str, ...]:
    """The roles ``method.train.train`` knows: the teacher and every arm."""
    return (TEACHER, *students())


def models() -> tuple[str, ...]:
    """Every model a study can have, in display order: the teacher, the arms, the baseline."""
    return (TEACHER, *students(), BASELINE)


def label(model: str) -> str:
    """How tables and plots name ``model``."""
    return OTHERS[model][0] if model in OTHERS else arm(model).label


def color(model: str) -> str:
    """``model``'s colour in every plot."""
    return OTHERS[model][1] if model in OTHERS else arm(model).color


def ablation_keys() -> frozenset[str]:
    """What an ablation (and a sweep) may change: the keys some arm's training depends on."""
    return frozenset().union(*(a.keys for a in ARMS))


def arm(name: str) -> Arm:
    for a in ARMS:
        if a.name == name:
            return a
    raise ValueError(f"no student arm {name!r}; the arms: {', '.join(students())}")


def study_arms(cfg) -> dict[str, tuple[str, str]]:
    """The student arms ``cfg``'s study trains: name → (loss, where its layers start)."""
    return {a.name: (a.loss, a.init(cfg)) for a in ARMS if a.trained(cfg)}


def study_models(cfg) -> tuple[str, ...]:
    """Every model ``cfg``'s study has, in display order: the teacher, its student arms, the baseline."""
    return (TEACHER, *study_arms(cfg), BASELINE)


def method_arm() -> Arm:
    """The arm of the study's method (MLKD): its contrasts go beyond the training noise and to the baseline."""
    return next(a for a in ARMS if a.method)


def arm_pairs(arms: dict[str, tuple[str, str]]) -> list[tuple[str, str]]:
    """(a, b) for every comparison a − b between two of ``arms`` (``study_arms``) that differ, grouped by the arm
    compared against (the paper's CE-only student first), in table order."""
    order = list(students())
    pairs = [(a.name, b) for a in ARMS for b in a.against
             if a.name in arms and b in arms and arms[a.name] != arms[b]]
    return sorted(pairs, key=lambda p: (order.index(p[1]), order.index(p[0])))


def retrained(changed: set[str]) -> list[str]:
    """The arms an ablation that changes the config keys ``changed`` trains again."""
    return [a.name for a in ARMS if changed & a.keys]
