"""Test conditions: what every trained model is scored under, beyond the clean speech and the trained noise,
without retraining. ``families.py`` holds ``Condition``, the registry of families and the audio a condition
makes; each family is one module here, found by the registry (a module with a ``FAMILY`` name), with the same
small interface:

- ``FAMILY`` (its name in ``conditions`` and metrics.csv), ``RANK`` (its place in tables and plots), ``UNIT`` (how a
  severity reads), ``WORSE`` ("higher" or "lower": which way the severity gets worse; None with one severity);
- a signal family: ``SEVERITIES`` (its default levels, defined in its docstring) and ``apply(x, severity, rng)``,
  16 kHz mono float32 in and out, the same length, never clipped silently, ``x`` never changed in place
  (``audio(...)`` instead, where it needs the study's rooms or noise);
- a family that mixes a noise into speech instead (``MIXES = True``: unseen noise types, another corpus):
  ``conditions(cfg, levels)``, what it scores;
- optionally ``ROOMS = True`` (it draws from the study's room impulse responses) and ``CHOSEN_BY`` (the study key
  that turns it on, ``conditions`` unless it says otherwise).

Adding a family is one module (``docs/robustness.md``, "Adding a test condition"). Nothing is imported here, so
that a family's library (pyroomacoustics for ``reverb``) loads only when it is used.
"""
