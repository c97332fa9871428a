"""A researcher's own manifest: checked whole (every problem at once, each naming its lines), then completed
into the study's manifest; labels merged and picked by the study; folds for any number of speakers."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from mlkd_lib.config import make_config
from mlkd_lib.data.folds import kfold_folds, make_folds, speaker_groups, split
from mlkd_lib.data.prepare import prepare_data, study_manifest
from mlkd_lib.data.user_manifest import complete_manifest, manifest_problems


def wav(path, seconds=0.2, rate=16_000, channels=1):
    path.parent.mkdir(parents=True, exist_ok=True)
    x = 0.1 * np.random.default_rng(len(str(path))).standard_normal((int(seconds * rate), channels))
    sf.write(str(path), x if channels > 1 else x[:, 0], rate)
    return path


def table(tmp_path, rows, name="corpus.csv"):
    path = tmp_path / name
    if name.endswith(".jsonl"):
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    else:
        pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_a_minimal_table_is_completed_ids_durations_and_unknown_speakers(tmp_path):
    for i in range(3):
        wav(tmp_path / "audio" / f"u{i}.wav", seconds=0.1 * (i + 1), rate=48_000 if i == 2 else 16_000,
            channels=2 if i == 2 else 1)
    rows = [dict(path="audio/u0.wav", emotion="ang", speaker="s1"),
            dict(path="audio/u1.wav", emotion="sad", speaker="Unknown"),
            dict(path=str(tmp_path / "audio" / "u2.wav"), emotion="neu", speaker="Unknown")]
    for name in ("corpus.csv", "corpus.jsonl"):
        path = table(tmp_path, rows, name)
        assert manifest_problems(path, progress=False) == []
        df = complete_manifest(path, progress=False)
        assert list(df.utt_id) == ["u0", "u1", "u2"]  # the file stems
        assert df.duration_s.tolist() == pytest.approx([0.1, 0.2, 0.3])
        # each utterance of an unknown speaker is a speaker of its own, never one speaker for all of them
        assert list(df.speaker) == ["s1", "unknown-u1", "unknown-u2"]
        assert df.path.map(lambda p: p.startswith(str(tmp_path))).all() and set(df.corpus) == {"corpus"}


def test_every_problem_is_reported_at_once_naming_its_lines(tmp_path):
    wav(tmp_path / "a.wav")
    (tmp_path / "broken.wav").write_bytes(b"RIFF not really a wav")
    sf.write(str(tmp_path / "empty.wav"), np.zeros(0), 16_000)
    rows = [dict(path="a.wav", emotion="ang", speaker="s1", split="train"),
            dict(path="missing.wav", emotion="sad", speaker="s1", split="test"),      # missing; s1 in two splits
            dict(path="broken.wav", emotion="", speaker="s2", split="train"),         # unreadable; empty label
            dict(path="empty.wav", emotion="neu", speaker="s3", split="holdout"),     # no samples; unknown split
            dict(path="a.wav", emotion="neu", speaker="s3", split="train")]           # duplicate id
    problems = manifest_problems(table(tmp_path, rows), progress=False)
    text = "\n".join(problems)
    assert "1 rows with an empty emotion (line 4)" in text
    assert "1 audio files not found" in text and "missing.wav (line 3)" in text
    assert "not readable" in text and "broken.wav (line 4)" in text
    assert "hold no samples" in text and "(line 5)" in text
    assert "share an utt_id" in text and "line 2, line 6" in text
    assert "'holdout'" in text
    assert len(problems) == 6


def test_a_speaker_in_two_splits_is_a_leak(tmp_path):
    for i in range(3):
        wav(tmp_path / f"{i}.wav")
    rows = [dict(path="0.wav", emotion="ang", speaker="s1", split="Train"),
            dict(path="1.wav", emotion="sad", speaker="s1", split="Test1"),
            dict(path="2.wav", emotion="sad", speaker="Unknown", split="Test1")]
    problems = manifest_problems(table(tmp_path, rows), progress=False)
    assert len(problems) == 1 and "s1" in problems[0] and "line 2, line 3" in problems[0]


def test_missing_columns_are_named(tmp_path):
    path = table(tmp_path, [dict(file="a.wav", label="ang", speaker="s1")])
    (problem,) = manifest_problems(path, progress=False)
    assert "path, emotion" in problem and "file, label, speaker" in problem


def test_labels_are_merged_then_picked_by_the_study(tmp_path):
    rows = []
    for s in range(4):
        for e in ("ang", "exc", "hap", "fru", "sad"):
            rows.append(dict(path=str(wav(tmp_path / f"{s}_{e}.wav")), emotion=e, speaker=f"s{s}"))
    cfg = make_config("micro", corpus="manifest", manifest=str(table(tmp_path, rows)),
                      data_dir=str(tmp_path / "data"), emotions=["sad", "hap", "ang"], label_map=["exc:hap"],
                      conditions=[])  # the labels alone: no test-only banks
    prepare_data(cfg, progress=False)
    df = study_manifest(cfg)
    assert df.emotion.value_counts().to_dict() == {"hap": 8, "ang": 4, "sad": 4}  # fru left out, exc is hap
    with pytest.raises(ValueError, match="no utterance of the class.*fea"):
        study_manifest(make_config("micro", corpus="manifest", manifest=cfg.manifest, data_dir=cfg.data_dir,
                                   emotions=["ang", "fea"]))


def corpus(n_speakers: int, rng) -> pd.DataFrame:
    """Speakers with unequal utterance counts, four classes."""
    rows = []
    for s in range(n_speakers):
        for i in range(int(rng.integers(4, 40))):
            rows.append(dict(utt_id=f"{s:03d}_{i:03d}", speaker=f"{s:03d}", emotion="neu hap ang sad".split()[i % 4]))
    return pd.DataFrame(rows)


def test_kfold_is_speaker_independent_balanced_and_seeded(rng):
    manifest = corpus(91, rng)  # CREMA-D's 91 actors
    folds = kfold_folds(manifest, n_folds=5, seed=3)
    assert [f.name for f in folds] == ["fold1", "fold2", "fold3", "fold4", "fold5"]
    tested = [s for f in folds for s in f.test_speakers]
    assert sorted(tested) == sorted(manifest.speaker.unique())  # each speaker tests exactly once
    sizes = [manifest.speaker.isin(f.test_speakers).sum() for f in folds]
    assert max(sizes) - min(sizes) <= manifest.groupby("speaker").size().max()  # balanced by utterances
    for f in folds:
        parts = split(manifest, f)
        assert not set(parts["test"].speaker) & (set(parts["train"].speaker) | set(parts["val"].speaker))
        assert sum(map(len, parts.values())) == len(manifest)
    assert speaker_groups(manifest, 5, seed=3) == speaker_groups(manifest, 5, seed=3)
    assert speaker_groups(manifest, 5, seed=3) != speaker_groups(manifest, 5, seed=4)


def test_the_split_protocol_reads_the_corpus_sets(rng):
    manifest = corpus(12, rng)
    part = {s: p for s, p in zip(sorted(manifest.speaker.unique()), ["Train"] * 7 + ["Development"] * 2
                                 + ["Test1"] * 2 + ["Test2"])}
    manifest["split"] = manifest.speaker.map(part)
    (fold,) = make_folds(manifest, protocol="split")
    parts = split(manifest, fold)
    assert fold.name == "split"
    assert set(parts["test"].split) == {"Test1", "Test2"} and set(parts["val"].split) == {"Development"}
    assert set(parts["train"].split) == {"Train"} and sum(map(len, parts.values())) == len(manifest)


def test_a_fold_column_is_carried_into_the_study_and_its_folds_are_the_given_ones(tmp_path):
    """A table's own folds (EmoBox's, as `mlkd data emobox` writes them) reach the study's manifest with the raters'
    confidence, and protocol=folds runs them: fold B tests on its four rows; a table without the column is a
    pre-flight problem, not a crash."""
    from mlkd_lib.study.preflight import _fold_problems, study_utterances
    rows = [dict(path=f"a/{k}.wav", emotion=e, speaker=s, fold=f, confidence=c) for k, (e, s, f, c) in enumerate(
        [("ang", "s1", "A", 0.5), ("sad", "s1", "A", 1.0), ("ang", "s2", "B", 0.8), ("sad", "s2", "B", 0.9),
         ("ang", "s3", "", 1.0), ("sad", "s3", "", 0.7)] * 2)]
    for r in rows:
        wav(tmp_path / r["path"])
    path = table(tmp_path, rows)
    df = complete_manifest(path, progress=False)
    assert list(df.fold) == ["A", "A", "B", "B", "", ""] * 2
    assert list(df.confidence) == ["0.5", "1.0", "0.8", "0.9", "1.0", "0.7"] * 2
    cfg = make_config("micro", corpus="manifest", manifest=str(path), emotions=["ang", "sad"], protocol="folds",
                      data_dir=str(tmp_path / "data"))
    assert [f.name for f in make_folds(df, protocol="folds")] == ["A", "B"]
    assert set(split(df, make_folds(df, protocol="folds")[1])["test"].utt_id) == {"2", "3", "8", "9"}
    assert _fold_problems(cfg, study_utterances(cfg)) == []
    path.write_text(path.read_text().replace(",fold,", ",group,"))
    assert _fold_problems(cfg, study_utterances(cfg)) == [
        "protocol=folds: the manifest has no fold column or it is empty (the fold whose test set holds each "
        "utterance; `mlkd data emobox` writes one)"]
