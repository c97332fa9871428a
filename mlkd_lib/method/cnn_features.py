"""A frozen CNN's output for an exact input, computed by the first model of a fold that needs it and read by the rest.

In the demo every model of a fold has the same frozen CNN (the pretrained encoder's), and they run it on the same
inputs: the students are scored on the teacher's batches of the same test audio (``evaluate.exact_batches``), and
the three student arms train on the same noisy batches (drawn by epoch, not by arm). On a CPU that CNN is about 40 %
of a demo student's step. ``CnnFeatures`` keys each output by a digest of the CNN's weights and buffers, of the
exact input tensor (shape, dtype and bytes) and of what could change its rounding (torch's thread count, the
device, autocast), so what is read back is, bit for bit, what the CNN would have computed. A CNN that learns is
always run (it needs its graph). Files are written to a temporary name and renamed, so a step that runs beside
another never reads half a file, and a damaged one is computed and written again.

The folder (``<fold>/cnn_features/``) goes with the fold's last step, like the kept test audio. It costs disk in
proportion to the CNN's output (``share_cnn_features``: on in the demo and micro presets, where the CNN has 16
channels; wav2vec2-base's has 512, and on a GPU the CNN is cheap).
"""

from __future__ import annotations

import hashlib
import os
import pickle
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import torch


class CnnFeatures:
    """``<folder>/<digest>.pt``: one batch's CNN output."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.read = self.computed = 0  # batches served from the folder / run through the CNN here

    def attach(self, *models) -> None:
        """From now on each model's CNN reads its output from the folder where it can (and adds what it computes)."""
        for m in models:
            cnn = m.encoder.feature_extractor
            cnn.forward = partial(self._forward, cnn, type(cnn).forward.__get__(cnn))

    @staticmethod
    def detach(*models) -> None:
        for m in models:
            vars(m.encoder.feature_extractor).pop("forward", None)

    @contextmanager
    def attached(self, *models):
        """``attach`` while inside."""
        self.attach(*models)
        try:
            yield self
        finally:
            self.detach(*models)

    def _forward(self, cnn: torch.nn.Module, compute, x: torch.Tensor) -> torch.Tensor:
        learns = (any(p.requires_grad for p in cnn.parameters())
                  or (cnn.training and getattr(cnn, "_requires_grad", False)))  # transformers' unfrozen CNN
        if torch.is_grad_enabled() and learns:
            return compute(x)
        path = self.folder / f"{digest(cnn, x)}.pt"
        try:
            out = torch.load(path, map_location=x.device, weights_only=True)
            if isinstance(out, torch.Tensor) and out.shape[0] == x.shape[0]:
                self.read += 1
                return out
        except (OSError, RuntimeError, EOFError, pickle.UnpicklingError):  # none yet, or damaged: computed anew
            pass
        out = compute(x)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp")
        torch.save(out.detach().cpu(), tmp)
        os.replace(tmp, path)
        self.computed += 1
        return out


def digest(cnn: torch.nn.Module, x: torch.Tensor) -> str:
    """What fixes the CNN's output bit for bit: its weights and buffers, the input, and the arithmetic's setting."""
    h = hashlib.sha256(repr((torch.get_num_threads(), x.device.type, str(x.dtype), tuple(x.shape),
                             torch.is_autocast_enabled(x.device.type))).encode())
    for name, t in [*cnn.named_parameters(), *cnn.named_buffers()]:
        h.update(name.encode())
        h.update(_bytes(t))
    h.update(_bytes(x))
    return h.hexdigest()


def _bytes(t: torch.Tensor) -> memoryview:
    return memoryview(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
