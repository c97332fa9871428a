"""UA and WA as the paper defines them: UA the mean of per-class recalls, WA plain accuracy."""

from __future__ import annotations

import types

import numpy as np
import pandas as pd
import pytest
import torch

from mlkd_lib.method.evaluate import confusion, metrics_from_predictions, ua_wa


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


def test_the_confusion_matrix_is_as_large_as_the_largest_class_seen_and_counts():
    m = confusion([0, 2, 2], [1, 2, 0])
    assert m.shape == (3, 3) and m.dtype.kind == "i" and m[2, 2] == 1 and m[2, 0] == 1 and m[0, 1] == 1
    assert confusion([0], [0]).shape == (1, 1) and confusion([], []).shape == (0, 0)
    assert confusion([0], [0], n=4).shape == (4, 4)
    with pytest.raises(ValueError, match="^no samples to score$"):
        ua_wa([], [])


class ByLength(torch.nn.Module):
    """Stands in for a model: class (samples of the utterance heard // 6000) % 4; it says where it was sent."""

    labels = ("neu", "hap", "ang", "sad")

    def __init__(self, mask: bool = True):
        super().__init__()
        self.mask, self.sent = mask, []
        self.unused = torch.nn.Linear(1, 1)

    def uses_attention_mask(self) -> bool:
        return self.mask

    def to(self, device):
        self.sent.append(device)
        return self

    def forward(self, x, lengths, output_hidden_states=False):
        logits = torch.zeros(len(x), 4)
        logits[torch.arange(len(x)), (lengths // 6000) % 4] = 1.0
        return types.SimpleNamespace(logits=logits, hidden_states=None, frame_mask=None)


def test_batches_group_similar_lengths_and_a_model_without_a_mask_same_lengths_only():
    from mlkd_lib.method.evaluate import exact_batches
    lengths = [5, 3, 5, 9, 3, 5, 1]
    assert exact_batches(ByLength(), lengths, 3) == [[6, 1, 4], [0, 2, 5], [3]]  # by length, 3 at a time
    assert exact_batches(object(), lengths, 3) == [[6, 1, 4], [0, 2, 5], [3]]  # a model that does not say: masks
    assert exact_batches(ByLength(mask=False), lengths, 2) == [[6], [1, 4], [0, 2], [5], [3]]


def test_evaluate_conditions_cuts_sends_transforms_and_reads_kept_audio(tmp_path):
    """Three utterances of 0.3, 0.7 and 1.2 s, cut at 1 s as in training: the stand-in predicts neu, hap, ang
    (4800, 11200, 16000 samples; uncut, the last would be sad); a transform that keeps the first half: neu, neu,
    hap. Under the telephone channel the audio is kept for the fold's other steps."""
    import soundfile as sf

    from mlkd_lib.data.conditions.families import Condition
    from mlkd_lib.data.kept_audio import KeptAudio
    from mlkd_lib.method.evaluate import evaluate_conditions
    rows = []
    for i, s in enumerate((0.3, 0.7, 1.2)):
        path = tmp_path / f"u{i}.wav"
        sf.write(path, 0.1 * np.sin(np.arange(int(s * 16_000)) / 5.0), 16_000)
        rows.append(dict(utt_id=f"u{i}", path=str(path), emotion="hap"))
    test = pd.DataFrame(rows)
    model = ByLength()
    out = evaluate_conditions({"m": model}, test, [Condition("clean")], {}, 0, device=torch.device("cpu"),
                              progress=False, max_seconds=1.0)["m"]
    assert out.pred.tolist() == [0, 1, 2] and model.sent == [torch.device("cpu")]
    halves = evaluate_conditions({"m": ByLength()}, test, [Condition("clean")], {}, 0, progress=False,
                                 max_seconds=1.0, transform=lambda xs: [x[: len(x) // 2] for x in xs])["m"]
    assert halves.pred.tolist() == [0, 0, 1]
    kept = KeptAudio(tmp_path / "kept", 0, "p56", 1.0)
    phone = Condition("telephone", None, "telephone", 1.0)
    both = evaluate_conditions({"m": ByLength()}, test, [Condition("clean"), phone], {}, 0, progress=False,
                               max_seconds=1.0, kept=kept)["m"]
    assert list(both.index) == list(range(6)) and both.condition.tolist() == ["clean"] * 3 + ["telephone"] * 3
    assert kept.load(phone, ["u0", "u1", "u2"]) is not None  # kept for the fold's next model


def test_metrics_of_predictions_made_before_the_test_only_conditions():
    noises = ["factory", "factory", "clean", "clean", "babble", "babble"]
    pred = pd.DataFrame({"utt_id": list("abcdef"), "noise": noises,
                         "snr_db": [0.0, 0.0, None, None, 5.0, 5.0], "label": [0, 1, 0, 1, 0, 0],
                         "pred": [0, 0, 0, 1, 1, 0]})
    m = metrics_from_predictions(pred, "teacher", "S1")
    assert list(m.columns) == ["model", "condition", "severity", "noise", "snr_db", "fold", "ua", "wa", "n"]
    assert m.noise.tolist() == ["factory", "clean", "babble"]  # in the order they come
    assert m.condition.tolist() == ["noise", "clean", "noise"] and m.severity.tolist()[0] == 0.0
    assert pd.isna(m.severity.iloc[1]) and pd.isna(m.snr_db.iloc[1]) and m.snr_db.iloc[2] == 5.0
    assert m.ua.tolist() == pytest.approx([0.5, 1.0, 0.5]) and m.wa.tolist() == pytest.approx([0.5, 1.0, 0.5])
    assert set(m.model) == {"teacher"} and set(m.fold) == {"S1"} and m.n.tolist() == [2, 2, 2]


def test_a_transform_that_shortens_the_audio_changes_no_prediction_by_its_batch(tmp_path):
    """The baseline's front-end drops non-speech frames: what the model hears is shorter than the utterance. Its mask
    must follow what it hears, so that an utterance's prediction is the same alone as beside a longer one."""
    import soundfile as sf

    from mlkd_lib.data.conditions.families import Condition
    from mlkd_lib.method.evaluate import evaluate_conditions
    from mlkd_lib.method.models import build_teacher
    rng = np.random.default_rng(0)
    rows = []
    for i, s in enumerate((0.6, 1.4)):
        sf.write(tmp_path / f"u{i}.wav", 0.1 * rng.standard_normal(int(s * 16_000)), 16_000)
        rows.append(dict(utt_id=f"u{i}", path=str(tmp_path / f"u{i}.wav"), emotion="hap"))
    torch.manual_seed(0)
    model = build_teacher("micro").eval()
    assert model.uses_attention_mask()
    runs = [evaluate_conditions({"m": model}, pd.DataFrame(rows), [Condition("clean")], {}, 0, batch_size=b,
                                progress=False, transform=lambda xs: [x[: len(x) * 2 // 3] for x in xs])["m"]
            for b in (1, 2)]
    cols = [f"p_{e}" for e in model.labels]
    np.testing.assert_allclose(runs[0][cols].to_numpy(), runs[1][cols].to_numpy(), atol=1e-5)


def test_evaluate_conditions_attaches_shared_features_feeds_the_layer_distance_and_passes_the_rooms(tmp_path):
    import contextlib

    import soundfile as sf

    from mlkd_lib.data.conditions.families import Condition
    from mlkd_lib.method.evaluate import evaluate_conditions
    sf.write(tmp_path / "u.wav", 0.1 * np.sin(np.arange(8_000) / 5.0), 16_000)
    test = pd.DataFrame([dict(utt_id="u", path=str(tmp_path / "u.wav"), emotion="hap")])
    attached = []

    class Features:
        @contextlib.contextmanager
        def attached(self, *models):
            attached.append(models)
            yield self

    class Distance:
        seen = []

        def covers(self, utt):
            return True

        def add(self, condition, utt_ids, hidden, mask):
            self.seen.append((condition.noise, utt_ids))

    class WithStates(ByLength):
        def forward(self, x, lengths, output_hidden_states=False):
            out = super().forward(x, lengths)
            out.hidden_states, out.frame_mask = (x,) if output_hidden_states else None, None
            return out

    model, distance = WithStates(), Distance()
    room = Condition("reverb", None, "reverb", 0.3)
    out = evaluate_conditions({"m": model}, test, [Condition("clean"), room], {}, 0, progress=False,
                              features=Features(), distance=distance, rirs={0.3: [np.array([1.0, 0.0, 0.5])]})["m"]
    assert attached == [(model,)] and distance.seen == [("clean", ["u"]), ("reverb", ["u"])]
    assert out.condition.tolist() == ["clean", "reverb"]
