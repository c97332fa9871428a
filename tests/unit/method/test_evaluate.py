"""UA and WA as the paper defines them: UA the mean of per-class recalls, WA plain accuracy."""

from __future__ import annotations

import pytest

from mlkd_lib.method.evaluate import confusion, ua_wa


def test_ua_weights_classes_equally_and_wa_weights_utterances():
    # 8 neutral (all right), 2 angry (both wrong): WA 0.8, UA (1 + 0) / 2 = 0.5
    y = [0] * 8 + [2] * 2
    p = [0] * 8 + [0] * 2
    assert ua_wa(y, p) == pytest.approx((0.5, 0.8))


def test_classes_absent_from_the_truth_do_not_count():
    ua, wa = ua_wa([0, 0, 1, 1], [0, 3, 1, 1])
    assert ua == pytest.approx((0.5 + 1.0) / 2) and wa == pytest.approx(0.75)
    assert confusion([0, 0, 1, 1], [0, 3, 1, 1])[0, 3] == 1


def test_no_samples_is_an_error():
    with pytest.raises(ValueError, match="no samples"):
        ua_wa([], [])
