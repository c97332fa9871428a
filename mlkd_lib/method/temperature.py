"""A model's temperature: the one number T that, dividing its logits, makes its probabilities on held-out
utterances as likely as they can be (temperature scaling). Fitted once a training is done, on the fold's validation
split heard clean, and stored with the checkpoint (``train.py``); every export carries it. How well the
probabilities then mean what they say is measured in ``analysis/calibration.py``."""

from __future__ import annotations

import numpy as np
from scipy import optimize
from scipy.special import log_softmax

T_BOUNDS = (0.05, 20.0)  # where a temperature is searched


def checked(values, labels) -> tuple[np.ndarray, np.ndarray]:
    """An (utterances × classes) table of logits or probabilities and one class index each."""
    p, y = np.asarray(values, dtype=float), np.asarray(labels, dtype=int)
    if p.ndim != 2 or len(p) != len(y) or not len(y):
        raise ValueError(f"expected an (utterances × classes) table and one label each, got {p.shape} and {y.shape}")
    return p, y


def logit_nll(logits, labels, temperature: float = 1.0) -> float:
    z, y = checked(logits, labels)
    return float(-log_softmax(z / temperature, axis=1)[np.arange(len(y)), y].mean())


def fit_temperature(logits, labels) -> float:
    """The T that minimises the NLL of softmax(z / T) on (``logits``, ``labels``): a bounded scalar search over ln T
    (the NLL is convex in 1 / T), deterministic and drawing no random numbers."""
    z, y = checked(logits, labels)
    res = optimize.minimize_scalar(lambda u: logit_nll(z, y, np.exp(u)), bounds=np.log(T_BOUNDS), method="bounded",
                                   options={"xatol": 1e-7})
    return float(np.exp(res.x))


def temperature_scaling(logits, labels) -> dict:
    """What a checkpoint and every export carry: the temperature, fitted on the validation split's clean speech, and
    what it did there."""
    t = fit_temperature(logits, labels)
    return {"temperature": t, "fitted_on": "the fold's validation split, clean speech", "utterances": len(labels),
            "nll_raw": logit_nll(logits, labels), "nll_scaled": logit_nll(logits, labels, t)}
