"""The teacher's targets for MLKD, against the teacher itself run on each utterance alone: the layers asked for (and
no other) and the logits, stored in memory, on disk (fp16) or computed live per batch — for a layer-norm teacher,
which batches with an attention mask, and a group-norm one (wav2vec2-base's kind), which the study runs one
utterance at a time — padded with zeros and cut to the student's frames; a complete disk store reused, an incomplete
or another layers' one filled anew."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from transformers import Wav2Vec2Config

from mlkd_lib.method.models import MICRO, EmotionClassifier
from mlkd_lib.method.teacher_cache import INDEX, TeacherTargets

LENGTHS = {"a": 6400, "b": 4000, "c": 4800, "d": 4000}  # samples: three lengths, one repeated


def micro_teacher(norm: str) -> EmotionClassifier:
    torch.manual_seed(0)
    model = EmotionClassifier(Wav2Vec2Config(**dict(MICRO, feat_extract_norm=norm))).eval()
    assert model.uses_attention_mask() == (norm == "layer")
    return model


@pytest.fixture(scope="module", params=["layer", "group"])
def teacher(request):
    return micro_teacher(request.param)


@pytest.fixture(scope="module")
def waves():
    rng = np.random.default_rng(0)
    return {u: (0.1 * rng.standard_normal(n)).astype(np.float32) for u, n in LENGTHS.items()}


def alone(teacher, wave):
    """The teacher on one unpadded utterance: its hidden states (HF indexing) and logits."""
    with torch.no_grad():
        out = teacher(torch.from_numpy(wave)[None], output_hidden_states=True)
    return [h[0] for h in out.hidden_states], out.logits[0]


@pytest.mark.parametrize("storage, tol", [("memory", 1e-5), ("disk", 2e-3)])
def test_stored_targets_are_the_teachers_own_layers_and_logits(teacher, waves, tmp_path, storage, tol):
    targets = TeacherTargets(teacher, [4, 2, 4], torch.device("cpu"), storage, tmp_path / "cache")
    assert targets.layers == [2, 4]
    targets.fill(waves.items(), progress=False)
    for u, x in waves.items():
        hidden, logits = targets.get(u)
        ref_hidden, ref_logits = alone(teacher, x)
        assert sorted(hidden) == [2, 4]  # the layers asked for, each once
        for t in (2, 4):
            assert hidden[t].shape == ref_hidden[t].shape
            torch.testing.assert_close(hidden[t], ref_hidden[t], atol=tol, rtol=tol)
        torch.testing.assert_close(logits, ref_logits, atol=1e-5, rtol=1e-5)
    if storage == "disk":
        assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["h2.npy", "h4.npy", INDEX, "logits.npy"]


def test_a_batch_is_padded_and_cut_to_the_students_frames_and_live_targets_agree(teacher, waves):
    """Three utterances (14, 12 and 19 frames): from the store into 16 frames, the short ones zero-padded, the long
    one cut; computed live from the padded clean batch (19 frames, the student's too), the same on every real frame
    (the loss reads no other: ``losses.masked_mse``)."""
    ids = ["c", "b", "a"]
    stored = TeacherTargets(teacher, [1, 3], torch.device("cpu"), "memory")
    stored.fill(waves.items(), progress=False)
    live = TeacherTargets(teacher, [1, 3], torch.device("cpu"), "off")
    live.fill(waves.items(), progress=False)  # nothing kept: computed batch by batch
    clean = torch.zeros(3, 6400)
    for i, u in enumerate(ids):
        clean[i, :LENGTHS[u]] = torch.from_numpy(waves[u])
    lengths = torch.tensor([LENGTHS[u] for u in ids])
    refs = {u: alone(teacher, waves[u]) for u in ids}
    assert {u: refs[u][0][1].shape[0] for u in ids} == {"a": 19, "b": 12, "c": 14}  # (samples − 400) // 320 + 1
    for targets, frames in ((stored, 16), (stored, 19), (live, 19)):
        hidden, logits = targets.batch(ids, frames, clean, lengths)
        assert sorted(hidden) == [1, 3] and logits.shape == (3, 4)
        for i, u in enumerate(ids):
            ref_hidden, ref_logits = refs[u]
            n = min(ref_hidden[1].shape[0], frames)
            for t in (1, 3):
                assert hidden[t].shape[1] == frames
                torch.testing.assert_close(hidden[t][i, :n], ref_hidden[t][:n], atol=1e-4, rtol=1e-4)
                if targets is stored:
                    assert not hidden[t][i, n:].any()  # padding is zero
            torch.testing.assert_close(logits[i], ref_logits, atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="computed from the clean batch"):
        live.batch(ids, 19)


def test_a_complete_disk_store_is_reused_and_an_incomplete_one_filled_again(waves, tmp_path, monkeypatch):
    teacher = micro_teacher("layer")
    cache = tmp_path / "cache"
    TeacherTargets(teacher, [2], torch.device("cpu"), "disk", cache).fill(waves.items(), progress=False)
    index = json.loads((cache / INDEX).read_text())
    assert index["layers"] == [2] and sorted(index["utterances"]) == sorted(LENGTHS)
    starts = sorted(tuple(v) for v in index["utterances"].values())  # (row, first frame, frames), one after another
    assert [s[1] for s in starts] == list(np.cumsum([0] + [s[2] for s in starts[:-1]]))
    computed = []
    compute = TeacherTargets.compute_many
    monkeypatch.setattr(TeacherTargets, "compute_many", lambda self, c, *a: computed.append(len(c)) or compute(self, c))
    again = TeacherTargets(teacher, [2], torch.device("cpu"), "disk", cache)
    again.fill(waves.items(), progress=False)
    assert computed == []  # every utterance there: nothing computed
    torch.testing.assert_close(again.get("a")[0][2], alone(teacher, waves["a"])[0][2], atol=2e-3, rtol=2e-3)
    TeacherTargets(teacher, [3], torch.device("cpu"), "disk", cache).fill(waves.items(), progress=False)
    assert computed == [4]  # another layer: filled anew
    (cache / INDEX).unlink()  # a run killed while filling: no index, filled again
    TeacherTargets(teacher, [3], torch.device("cpu"), "disk", cache).fill(waves.items(), progress=False)
    assert computed == [4, 4]
    memory = TeacherTargets(teacher, [2], torch.device("cpu"), "memory")
    memory.fill(list(waves.items())[:2], progress=False)
    memory.fill(list(waves.items())[:2], progress=False)
    memory.fill(waves.items(), progress=False)  # a new utterance: the store is made again, whole
    assert computed == [4, 4, 2, 4] and sorted(memory._index) == sorted(LENGTHS)


def test_bad_settings_are_refused():
    teacher = micro_teacher("layer")
    with pytest.raises(ValueError, match="storage must be one of"):
        TeacherTargets(teacher, [2], torch.device("cpu"), "ram")
    with pytest.raises(ValueError, match="needs cache_dir"):
        TeacherTargets(teacher, [2], torch.device("cpu"), "disk")


def test_the_store_keeps_fp32_in_memory_and_fp16_on_disk_under_a_new_folder(waves, tmp_path):
    teacher = micro_teacher("layer")
    moved = []
    to = teacher.to
    teacher.to = lambda device: moved.append(device) or to(device)
    memory = TeacherTargets(teacher, [2], torch.device("cpu"))  # memory, the default
    assert memory.storage == "memory" and moved == [torch.device("cpu")]  # the teacher goes where inputs are sent
    memory.fill(waves.items(), progress=False)
    assert memory._hidden[2].dtype == np.float32 and memory._logits.dtype == np.float32
    disk = TeacherTargets(teacher, [2], torch.device("cpu"), "disk", tmp_path / "run" / "fold" / "cache")
    disk.fill(waves.items(), progress=False)
    assert np.load(tmp_path / "run" / "fold" / "cache" / "h2.npy").dtype == np.float16
    assert np.load(tmp_path / "run" / "fold" / "cache" / "logits.npy").dtype == np.float32


def test_a_teacher_that_gives_other_frames_and_a_live_batch_without_lengths_are_refused(waves, monkeypatch):
    teacher = micro_teacher("layer")
    targets = TeacherTargets(teacher, [2], torch.device("cpu"))
    monkeypatch.setattr(targets, "_frames", lambda samples: 20)  # the store expects 20 frames for a; 19 come
    with pytest.raises(RuntimeError, match=r"^teacher gave 19 frames for a, expected 20$"):
        targets.fill([("a", waves["a"])], progress=False)
    live = TeacherTargets(teacher, [2], torch.device("cpu"), "off")
    clean = torch.from_numpy(waves["a"])[None]
    for args in ((clean, None), (None, torch.tensor([6400]))):
        with pytest.raises(ValueError, match=r"^teacher targets with storage 'off' are computed from the clean batch$"):
            live.batch(["a"], 19, *args)
    with pytest.raises(ValueError, match="^a disk teacher cache needs cache_dir$"):
        TeacherTargets(teacher, [2], torch.device("cpu"), "disk")
