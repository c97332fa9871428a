"""Test-only corruption families: conditions that every trained model is scored under without retraining.

Each module is one family (``reverb``, ``telephone``, ``codec``, ``clipping``) with the same small interface:
``FAMILY`` (its name in metrics.csv), ``SEVERITIES`` (its default levels, defined in the module's docstring),
``UNIT`` (how a severity reads in a table) and ``apply(x, severity, rng)``, which takes 16 kHz mono float32
speech and returns float32 of the same length, never clipped silently and never changing ``x`` in place.
The unseen noise types (``music``, ``traffic``) are in ``mlkd_lib.data.noise``, beside the training five.

Nothing is imported here, so that a family's library (pyroomacoustics for ``reverb``) loads only when it is used.
"""
