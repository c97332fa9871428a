"""Speech turns from per-frame VAD decisions, on cases with a known answer."""

from __future__ import annotations

import numpy as np
import pytest

from mlkd_lib.data.vad import TurnSettings, speech_turns

FRAME_S = 0.03


def frames(*spans, total_s=20.0):
    """Per-frame decisions that are True inside the given (start, end) seconds."""
    d = np.zeros(int(total_s / FRAME_S), bool)
    for a, b in spans:
        d[int(round(a / FRAME_S)):int(round(b / FRAME_S))] = True
    return d


def test_short_pauses_are_bridged_short_bursts_dropped_and_turns_padded():
    s = TurnSettings(min_turn_s=0.3, min_pause_s=0.4, padding_s=0.06, max_seconds=8.0)
    d = frames((1.02, 2.01), (2.22, 3.0), (5.01, 5.13), (7.02, 8.01))  # a 0.21 s pause, a 0.12 s click
    turns = speech_turns(d, 20.0, s)
    np.testing.assert_allclose(turns, [(0.96, 3.06), (6.96, 8.07)], atol=1e-9)


def test_a_turn_longer_than_max_seconds_becomes_equal_windows_none_longer():
    s = TurnSettings(padding_s=0.0, max_seconds=2.5)
    turns = speech_turns(frames((3.0, 9.0)), 20.0, s)
    assert len(turns) == 3 and turns[0][0] == pytest.approx(3.0) and turns[-1][1] == pytest.approx(9.0)
    assert all(b - a <= 2.5 + 1e-9 for a, b in turns)
    assert all(turns[i][1] == turns[i + 1][0] for i in range(2))


def test_padding_stops_at_the_recording_and_at_the_next_turn():
    s = TurnSettings(min_pause_s=0.2, padding_s=0.5)
    turns = speech_turns(frames((0.09, 1.02), (1.32, 2.01), total_s=2.1), 2.1, s)
    assert turns[0][0] == 0.0 and turns[-1][1] == pytest.approx(2.1)
    assert all(turns[i][1] <= turns[i + 1][0] for i in range(len(turns) - 1))
