"""What the listening page says of each model's answer: its confidence, and whether it is too unsure to trust."""

from __future__ import annotations

import re

import numpy as np

from mlkd_lib.explore.players import predictions_html


def test_each_models_confidence_is_shown_and_an_answer_below_the_threshold_is_marked_uncertain():
    probs = {"teacher": np.array([0.10, 0.51, 0.20, 0.19]), "student_sup": np.array([0.49, 0.21, 0.20, 0.10]),
             "baseline": None}
    html = predictions_html("hap", probs, [], ("neu", "hap", "ang", "sad"), min_confidence=0.5)
    rows = dict(re.findall(r"data-model='(\w+)'.*?data-uncertain='(\w+)'", html))
    assert rows == {"teacher": "false", "student_sup": "true"}  # 0.51 answers, 0.49 does not
    assert "<th>confidence</th>" in html and ">0.51</td>" in html and ">0.49</td>" in html
    assert re.search(r"data-model='student_sup'.*?neu\?</span> <i>uncertain</i>", html)

