"""`mlkd pretrain`'s settings, apart from the pretraining itself so that the command line reads them without
importing torch."""

from __future__ import annotations

from dataclasses import dataclass

PRETRAIN_OBJECTIVES = ("masked", "prosody", "masked+prosody", "contrastive")


@dataclass
class PretrainSettings:
    """`mlkd pretrain`: the demo encoder's pretraining (see pretrain.py)."""
    objective: str = "masked+prosody"
    seed: int = 0
    utterances: int = 2000
    steps: int = 3000
    batch_size: int = 16
    lr: float = 1e-3
    warmup_frac: float = 0.05
    units: int = 64
    mask_prob: float = 0.5
    mask_span: int = 5
    threads: int = 0
