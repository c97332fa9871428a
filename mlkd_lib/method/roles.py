"""What each role trains (``Role``): its model and where its layers come from, its input (clean or noisy), its
epochs, its loss: decided once here, so the training loop asks and never branches on a role's name."""

from __future__ import annotations

from dataclasses import dataclass

from ..arms import arm, trained
from ..config import StudyConfig
from ..data.dataset import AudioCache, NoisyPairDataset
from ..names import TEACHER
from .losses import LOSSES
from .models import EmotionClassifier, build_student, build_teacher


@dataclass
class Role:
    """What one role trains: its model, on which input (clean for the teacher, noisy for the
    students), for how many epochs, whether the CNN is frozen, and its loss (``losses.LOSSES``)."""
    name: str
    model: EmotionClassifier
    input_key: str
    epochs: int
    freeze_cnn: bool
    loss: str = "CE"

    @property
    def distils(self) -> bool:
        """Whether the teacher teaches: its targets are computed (or cached) for the training audio."""
        return LOSSES[self.loss].teacher

    @classmethod
    def of(cls, name: str, cfg: StudyConfig, teacher: EmotionClassifier | None, noise_bank) -> Role:
        """The role's model, freshly built: the teacher from ``cfg.model`` with the study's classes
        (``cfg.emotions``, in logit order); a student arm (``arms.py``) from the teacher's or the pretrained
        encoder's even layers, with the teacher's classes."""
        if name not in trained():
            raise ValueError(f"role must be one of {trained()}, got {name!r}")
        if name == TEACHER:
            return cls(name, build_teacher(cfg.model, cfg.emotions), "clean", cfg.teacher_epochs,
                       cfg.freeze_feature_encoder)
        loss, init = arm(name).loss, arm(name).init(cfg)
        if teacher is None and (init == "teacher" or LOSSES[loss].teacher):
            raise ValueError(f"{name} needs the trained teacher")
        if teacher is not None and teacher.labels != tuple(cfg.emotions):
            raise ValueError(f"{name}: the teacher's classes {list(teacher.labels)} are not the study's emotions "
                             f"{list(cfg.emotions)} (same codes, same order)")
        if not noise_bank:
            raise ValueError(f"{name} trains on noisy speech and needs a noise bank")
        # the pretrained encoder with the random head build_teacher gives it: the student's head starts fresh
        source = teacher if init == "teacher" else build_teacher(cfg.model, cfg.emotions)
        # the student's CNN is always frozen: it is its source's, and only the transformer is trained
        return cls(name, build_student(source, cfg.student_layers), "noisy", cfg.student_epochs, True, loss)

    def datasets(self, cfg: StudyConfig, train_df, val_df, noise_bank, audio: AudioCache):
        """Training and validation items, labelled by their index in the model's classes."""
        labels = self.model.labels
        if self.input_key == "clean":
            return (NoisyPairDataset(train_df, mode="clean", audio=audio, labels=labels),
                    NoisyPairDataset(val_df, mode="clean", audio=audio, labels=labels))
        # a fixed noisy validation set: the same draw every epoch, another seed than training's
        return (NoisyPairDataset(train_df, noise_bank, "random", cfg.snrs, cfg.seed, cfg.level, audio, labels),
                NoisyPairDataset(val_df, noise_bank, "random", cfg.snrs, cfg.seed + 1, cfg.level, audio, labels))
