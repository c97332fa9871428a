"""A fold's test audio under the test-only signal conditions, made once and heard by every model of the fold.

Every model of a fold is scored on the same test audio (``dataset.condition_rng``). Under a signal condition
(reverberation, far field, telephone, codec, clipping) making that audio costs more than a small model's forward
pass (an MP3 encoding is about 20 ms an utterance, a study scores each utterance under 13 such conditions), so the
first step of a fold that scores a condition (the teacher, which every other step of the fold waits for) keeps
what it made in ``<fold>/test_audio/``, and the baseline and the students read it back: the same arrays, dtype
and all, so a model's predictions do not depend on whether its audio was made or read. A file made under other
settings or for other utterances is ignored and made anew. The folder goes when every step of its fold is done
(the analysis removes one that two steps finishing at once both left); ``keep_test_audio=false`` turns it off.
Noise conditions are not kept: mixing is cheaper than reading them back.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np


def keeps(condition) -> bool:
    """Whether ``condition``'s audio is worth keeping: a signal condition (not clean speech, not a noise type)."""
    return condition.is_signal


class KeptAudio:
    """``<fold>/test_audio/<condition>.npz``: the test utterances' audio under one condition, in the fold's order,
    with the settings it was made under."""

    def __init__(self, folder: str | Path, seed: int, level: str, max_seconds: float | None):
        self.folder = Path(folder)
        self.settings = dict(seed=seed, level=level, max_seconds=max_seconds)

    def path(self, condition) -> Path:
        noise = "" if condition.noise == condition.family else f"_{condition.noise}{condition.snr_db:g}dB"
        return self.folder / f"{condition.family}_{condition.severity:g}{noise}.npz"

    def _stamp(self, condition) -> str:
        return json.dumps(dict(self.settings, condition=condition.label), sort_keys=True)

    def load(self, condition, utt_ids: list[str]) -> list[np.ndarray] | None:
        """The kept audio of ``utt_ids`` under ``condition``, or None when there is none made the same way."""
        path = self.path(condition)
        try:
            with np.load(path, allow_pickle=False) as f:
                if str(f["stamp"]) != self._stamp(condition) or list(f["utt_id"]) != list(utt_ids):
                    return None
                return [f[f"a{i}"] for i in range(len(utt_ids))]
        except (OSError, KeyError, ValueError):  # none yet, removed meanwhile, or a damaged file: make it again
            return None

    def save(self, condition, utt_ids: list[str], waves: list[np.ndarray]) -> None:
        """Keep ``waves`` (the audio of ``utt_ids``); written to a temporary name and renamed, so a reader never
        sees half a file."""
        path = self.path(condition)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
        np.savez(tmp, stamp=self._stamp(condition), utt_id=np.array(utt_ids, dtype=str),
                 **{f"a{i}": w for i, w in enumerate(waves)})
        os.replace(tmp, path)
