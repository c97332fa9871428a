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


def test_turns_at_their_exact_thresholds_padding_into_the_next_turn_and_speech_to_the_end():
    """Three 0.3 s turns with 0.3 s pauses, the last running to the end of a 1.5 s recording: a pause of exactly
    min_pause_s ends a turn, a turn of exactly min_turn_s is kept; 0.4 s of padding stops at the next turn; each
    padded turn (0.6 s) is exactly two windows of max_seconds, the last (0.3 s) one."""
    s = TurnSettings(min_turn_s=0.3, min_pause_s=0.3, padding_s=0.4, max_seconds=0.3)
    d = np.zeros(50, bool)
    d[0:10] = d[20:30] = d[40:50] = True
    np.testing.assert_allclose(speech_turns(d, 1.5, s), [(0.0, 0.3), (0.3, 0.6), (0.6, 0.9), (0.9, 1.2),
                                                          (1.2, 1.5)], atol=1e-9)


def test_vad_decisions_are_webrtcs_on_the_16_bit_frames_scaled_only_above_full_scale():
    """The reference: WebRTC VAD itself, fed the 30 ms frames of the signal as 16-bit samples (a signal over full
    scale divided by its peak first), the last partial frame dropped."""
    import webrtcvad

    from mlkd_lib.data.vad import speech_seconds, vad_decisions

    def reference(x, aggressiveness):
        vad = webrtcvad.Vad(aggressiveness)
        pcm = (np.clip(x / max(np.max(np.abs(x)), 1.0), -1, 1) * 32767).astype(np.int16)
        return [vad.is_speech(pcm[i:i + 480].tobytes(), 16_000) for i in range(0, len(pcm) - 479, 480)]

    from helpers.corpora import voice
    rng = np.random.default_rng(0)
    x = np.zeros(33 * 480 + 479)  # 33 whole frames and a partial one, a sample short of a frame
    x[4_800:11_200] = 0.5 * rng.standard_normal(6_400)
    talk = np.concatenate([voice(1.3, 16_000, 140.0), 0.02 * rng.standard_normal(8_000), voice(0.9, 16_000, 220.0,
                                                                                                 seed=1)])
    square = np.zeros(16_000)
    square[3_200:9_600] = 2.0 * np.sign(np.sin(2 * np.pi * 180 * np.arange(6_400) / 16_000))  # at its peak throughout
    for signal, aggressiveness in ((x, 3), (x, 0), (4.0 * x, 2), (0.2 * x, 1), (0.01 * talk, 2), (square, 2)):
        got = vad_decisions(signal.astype(np.float32), aggressiveness)
        assert got.dtype == bool and got.tolist() == reference(signal.astype(np.float32), aggressiveness)
        assert speech_seconds(signal, aggressiveness) == pytest.approx(0.03 * sum(got))
    assert len(vad_decisions(x)) == 33 and any(vad_decisions(square, 2))
    assert vad_decisions(talk).tolist() == reference(talk, 2) != reference(talk, 3)  # aggressiveness 2 by default
    assert speech_seconds(talk) == pytest.approx(0.03 * sum(reference(talk, 2)))
    assert vad_decisions(np.zeros(0, np.float32)).tolist() == [] and not vad_decisions(np.zeros(960)).any()


def test_a_pause_of_exactly_min_pause_ends_a_turn_without_padding():
    d = np.zeros(50, bool)
    d[0:10] = d[20:30] = d[40:50] = True
    turns = speech_turns(d, 1.5, TurnSettings(min_turn_s=0.3, min_pause_s=0.3, padding_s=0.0, max_seconds=9.0))
    np.testing.assert_allclose(turns, [(0.0, 0.3), (0.6, 0.9), (1.2, 1.5)], atol=1e-9)
