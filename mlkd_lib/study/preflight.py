"""Before a study starts: every problem with its inputs at once (``preflight``), and what it will
cost (``plan``: steps, disk, hours). Pre-flight reads files only (no torch unless the config asks
for a GPU), so a missing corpus, noise file or model is reported in a second or two, not after a
notebook kernel has started."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

from ..arms import study_arms
from ..config import StudyConfig
from ..data.conditions import unseen_noise
from ..data.conditions.families import needs_rirs
from ..data.folds import planned_fold_names, validation_strata
from ..data.noise.collection import noise_problems
from ..names import ENCODER_TYPES, NAMED_MODELS

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
# config.json model_types the study's encoder may be (method.models.ENCODERS, named here without importing torch)
FRAMES_PER_S = 50  # wav2vec 2.0's CNN: one frame per 20 ms
IEMOCAP_4CLASS_S = 25_200  # the 5531 utterances of the paper's 4-class set: about 7 h


def disk_need(cfg: StudyConfig, p_teacher: float, p_student: float, hidden: int, train_s: float, n_folds: int,
              jobs: int, arms: int = 3, test_s: float = 0.0, cnn_channels: int = 0) -> tuple[float, float]:
    """(peak, final) bytes of a study: each fold keeps an fp32 checkpoint of its teacher and of each
    student arm; while a step runs its last.pt (weights and AdamW's two moments) and, for MLKD on disk,
    the fp16 teacher cache of the fold's training audio exist too, and stay only with ``keep_checkpoints``.
    A fold's test audio under the signal conditions (``test_s`` seconds each, float32) and its shared CNN outputs
    (``cnn_channels``: the CNN's) stay until the fold is done; every teacher runs first, so every fold's may exist
    at once."""
    final = n_folds * 4 * (p_teacher + arms * p_student) + n_folds * 4 * 2**20  # + predictions, metrics, notebooks
    layers = cfg.student_layers  # one teacher layer per student layer
    cache = train_s * FRAMES_PER_S * layers * hidden * 2 if cfg.teacher_cache == "disk" else 0.0
    running = 3 * 4 * p_teacher + cache
    kept = (kept_audio_bytes(cfg, test_s) + cnn_feature_bytes(cfg, cnn_channels, test_s, train_s)) * n_folds
    return final + kept + (n_folds if cfg.keep_checkpoints else min(jobs, n_folds)) * running, final


def kept_audio_bytes(cfg: StudyConfig, test_s: float) -> float:
    """A fold's kept test audio (``data/kept_audio.py``): float32 samples of ``test_s`` seconds per signal condition."""
    if not cfg.keep_test_audio:
        return 0.0
    from ..data.audio import SAMPLE_RATE
    from ..data.conditions.families import family_conditions
    from ..data.kept_audio import keeps
    return sum(map(keeps, family_conditions(cfg))) * test_s * SAMPLE_RATE * 4


def cnn_feature_bytes(cfg: StudyConfig, channels: int, test_s: float, train_s: float) -> float:
    """A fold's shared frozen-CNN outputs (``method/cnn_features.py``): float32 frames of its test audio under every
    condition, and of the students' training audio (``train_s``, validation included) each epoch."""
    if not cfg.share_cnn_features:
        return 0.0
    from ..data.conditions.families import condition_count
    return FRAMES_PER_S * channels * 4 * (condition_count(cfg) * test_s + cfg.student_epochs * train_s)


def _disk_need_from_files(cfg: StudyConfig, n_folds: int, jobs: int, utterances) -> float | None:
    """The peak disk need of a study on a model folder, from its weights' size and config alone (``utterances``: the
    study's, with their durations; None: IEMOCAP's size)."""
    folder = Path(cfg.model).expanduser()
    weights = [folder / w for w in WEIGHT_FILES if (folder / w).is_file()]
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return None
    if not weights:
        return None
    p_teacher = weights[0].stat().st_size / 4
    layers = config.get("num_hidden_layers", 12)
    p_student = p_teacher * (1 - 0.9 * (layers - cfg.student_layers) / layers)  # ~90 % of it is the transformer
    if utterances is not None:
        train_s = utterances.duration_s.clip(upper=cfg.max_seconds).sum() * 0.9
    else:
        train_s = IEMOCAP_4CLASS_S * 0.9  # 9 of the 10 speakers train (an upper bound: validation is part of them)
    return disk_need(cfg, p_teacher, p_student, config.get("hidden_size", 768), train_s, n_folds, jobs,
                     len(study_arms(cfg)), test_s=train_s / 0.9 / max(1, n_folds),
                     cnn_channels=config.get("conv_dim", [512])[-1])[0]


def _corpus_problems(cfg: StudyConfig) -> list[str]:
    if cfg.corpus == "synthetic":
        if not cfg.manifest_path.is_file() and shutil.which("espeak-ng") is None:
            return ["espeak-ng is not installed: the synthetic corpus cannot be made (apt-get install espeak-ng)"]
        return []
    if cfg.corpus == "manifest":
        if not cfg.manifest:
            return ["corpus=manifest needs manifest=FILE (a CSV or JSON Lines table: path, emotion, speaker)"]
        from ..data.user_manifest import manifest_problems
        return manifest_problems(cfg.manifest, progress=False)
    root = Path(cfg.iemocap_root)
    if not cfg.iemocap_root or not root.is_dir():
        return [f"IEMOCAP root not found: {root} (set iemocap_root to .../IEMOCAP_full_release)"]
    missing = [f"Session{s}/{sub}" for s in range(1, 6) for sub in ("dialog/EmoEvaluation", "sentences/wav")
               if not (root / f"Session{s}" / sub).is_dir()]
    return [f"IEMOCAP root {root} lacks {', '.join(missing)}"] if missing else []


def study_utterances(cfg: StudyConfig):
    """The utterances the study will use (``label_map`` merged, the classes of ``emotions`` kept), as the data step
    will list them, before it runs; None for a synthetic corpus not made yet. Raises where a class is empty."""
    from ..data.prepare import pick_classes, planned_corpus
    listing = planned_corpus(cfg)
    return None if listing is None else pick_classes(listing, cfg, cfg.manifest or cfg.iemocap_root or cfg.corpus)


def _label_problems(cfg: StudyConfig) -> tuple[list[str], object]:
    """An empty class, or a corpus that cannot be listed; and the study's utterances (None where there are none)."""
    try:
        return [], study_utterances(cfg)
    except (OSError, ValueError) as err:
        return [" ".join(str(err).split())], None


def _noise_problems(cfg: StudyConfig) -> list[str]:
    """The noise collection (or, without one, the synthetic noises) lacks none of ``noise_types`` nor of the unseen
    types; no type is both; a folder of real room impulse responses is there."""
    from ..data.prepare import bank_types
    out = noise_problems(cfg.noise_source, bank_types(cfg))
    both = sorted(set(cfg.noise_types) & set(cfg.unseen_noise_types))
    if both and unseen_noise.FAMILY in cfg.conditions:
        out.append(f"unseen_noise_types {', '.join(both)} are also noise_types the students train on: an unseen "
                   f"type must be one no model hears in training")
    if cfg.rir_dir and needs_rirs(cfg):
        if not Path(cfg.rir_dir).is_dir():
            out.append(f"rir_dir {cfg.rir_dir}: no such folder (of room impulse response wavs)")
        else:
            from ..data.conditions.reverb import rir_files
            from ..data.ingest import survey
            try:
                bad = survey(rir_files(cfg.rir_dir)).unreadable
            except FileNotFoundError as err:
                bad, out = [], out + [str(err)]
            if bad:
                out.append(f"rir_dir {cfg.rir_dir}: {len(bad)} unreadable or empty files, e.g. {bad[0]}")
    return out


def _test_corpus_problems(cfg: StudyConfig) -> list[str]:
    """Each other corpus (``test_manifests``): its table checked whole, as the study's own, and holding one of the
    study's classes; never the study's own corpus."""
    from ..data.prepare import test_classes
    from ..data.user_manifest import manifest_problems, read_table
    out = []
    for path in cfg.test_manifests:
        if cfg.corpus == "manifest" and Path(path).resolve() == Path(cfg.manifest).resolve():
            out.append(f"test_manifests names the study's own corpus {path}: a test corpus is one no fold trains on")
            continue
        problems = manifest_problems(path, progress=False)
        if not problems:
            try:
                test_classes(read_table(path).assign(emotion=lambda t: t.emotion.str.strip()), cfg, path)
            except ValueError as err:
                problems = [str(err)]
        out += problems
    return out


def _source_files(cfg: StudyConfig) -> dict[str, list[str]]:
    """The audio files the data step reads as they ship, by what they are: the corpus (its classes), the noise
    collection's files of the bank's types, the room impulse responses, each other corpus."""
    from ..data.noise.collection import collection_types
    from ..data.prepare import bank_types, test_classes
    from ..data.user_manifest import complete_manifest
    utterances = study_utterances(cfg)
    files = {cfg.corpus: [] if utterances is None else list(utterances.path)}
    if cfg.noise_source:
        files["noise"] = [str(p) for ps in collection_types(cfg.noise_source, bank_types(cfg)).values() for p in ps]
    if cfg.rir_dir and needs_rirs(cfg):
        from ..data.conditions.reverb import rir_files
        files["room impulse responses"] = [str(p) for p in rir_files(cfg.rir_dir)]
    for path in cfg.test_manifests:
        files[f"test corpus {Path(path).stem}"] = list(test_classes(complete_manifest(path, False), cfg, path).path)
    return files


def _safetensors_readable(path: Path) -> bool:
    """The header parses: an 8-byte little-endian length, then that much JSON."""
    try:
        with open(path, "rb") as fh:
            (n,) = struct.unpack("<Q", fh.read(8))
            return n <= path.stat().st_size - 8 and isinstance(json.loads(fh.read(n)), dict)
    except (OSError, ValueError, struct.error):
        return False


def _model_problems(cfg: StudyConfig) -> list[str]:
    if cfg.model in NAMED_MODELS:
        return []
    folder = Path(cfg.model).expanduser()
    if not folder.is_dir():
        from huggingface_hub import try_to_load_from_cache
        if isinstance(try_to_load_from_cache(cfg.model, "config.json"), str):
            return []
        return [f"model {cfg.model}: no such folder, not in the local Hugging Face cache, and not one of "
                f"{sorted(NAMED_MODELS)}"]
    out = []
    try:
        config = json.loads((folder / "config.json").read_text())
        if config.get("model_type") not in ENCODER_TYPES:
            out.append(f"model folder {folder}: config.json is a {config.get('model_type')!r} model; the study's "
                       f"encoder is one of {', '.join(ENCODER_TYPES)}")
        layers = int(config.get("num_hidden_layers", 12))
        if layers % cfg.student_layers:  # student layer k starts from, and learns from, teacher layer k·L/N
            fits = [n for n in range(1, layers + 1) if layers % n == 0]
            out.append(f"student_layers={cfg.student_layers}: the encoder in {folder} has {layers} layers, which "
                       f"the student's must divide (one of {', '.join(map(str, fits))})")
    except (OSError, ValueError) as err:
        out.append(f"model folder {folder}: no readable config.json ({err.__class__.__name__})")
    weights = [folder / w for w in WEIGHT_FILES if (folder / w).is_file()]
    if not weights:
        out.append(f"model folder {folder}: no weights ({' or '.join(WEIGHT_FILES)})")
    elif weights[0].suffix == ".safetensors" and not _safetensors_readable(weights[0]):
        out.append(f"model folder {folder}: {weights[0].name} is not a readable safetensors file")
    return out


def _device_problems(cfg: StudyConfig) -> list[str]:
    if cfg.device != "cuda":
        return []
    import torch  # only here: the one check that needs it
    return [] if torch.cuda.is_available() else ["device=cuda, but torch sees no GPU on this machine"]


def _disk_problems(study_dir: Path, need_bytes: float | None) -> list[str]:
    if need_bytes is None:
        return []
    where = next(p for p in [study_dir, *study_dir.parents] if p.exists())
    free = shutil.disk_usage(where).free
    if free < need_bytes:
        return [f"{where}: {free / 2**30:.1f} GiB free, the study needs about {need_bytes / 2**30:.1f} GiB "
                f"(`mlkd study --plan`; --set keep_checkpoints=false keeps it small)"]
    return []


def corpus_speakers(utterances) -> list[str]:
    """The study's speakers: its utterances', or the synthetic corpus' ten voices before it is made."""
    if utterances is None:
        from ..data.synthetic import SPEAKERS
        return sorted(s.speaker_id for s in SPEAKERS)
    return sorted(utterances.speaker.unique())


def first_fold(cfg: StudyConfig) -> list[str]:
    """The study's first fold (a trial runs it alone), named before the data step has run."""
    utterances = study_utterances(cfg)
    return planned_fold_names(cfg.protocol, corpus_speakers(utterances), cfg.n_folds,
                              given_folds_of(cfg, utterances))[:1]


def given_folds_of(cfg: StudyConfig, utterances) -> list[str]:
    """The values of the study's fold column (protocol=folds), empty where it has none."""
    if cfg.protocol != "folds" or utterances is None or "fold" not in utterances:
        return []
    return sorted(set(utterances["fold"].astype(str).str.strip()) - {""})


def _fold_problems(cfg: StudyConfig, utterances) -> list[str]:
    speakers = corpus_speakers(utterances)
    if not speakers:
        return []
    out = []
    if utterances is not None and cfg.validation == "fraction" and cfg.protocol != "split":
        groups = utterances.groupby(validation_strata(utterances)).size()
        if (groups < 2).all():  # data.folds.validation_mask holds out a share of each group of two or more
            out.append("validation=fraction: every speaker has at most one utterance of each class, so model "
                       "selection would have no validation utterance; use validation=speaker")
    if cfg.protocol == "kfold" and len(speakers) < cfg.n_folds:
        out.append(f"protocol=kfold with n_folds={cfg.n_folds}: the corpus has only {len(speakers)} speakers")
    given = given_folds_of(cfg, utterances)
    if cfg.protocol == "folds" and utterances is not None and not given:
        return out + ["protocol=folds: the manifest has no fold column or it is empty (the fold whose test set holds "
                      "each utterance; `mlkd data emobox` writes one)"]
    names = planned_fold_names(cfg.protocol, speakers, cfg.n_folds, given)
    unknown = sorted(set(cfg.folds) - set(names))
    if unknown:
        out.append(f"folds {', '.join(unknown)}: not folds of the study ({', '.join(names)})")
    return out


def preflight(cfg: StudyConfig, study_dir: Path, jobs: int = 1) -> list[str]:
    """Every problem that would stop the study, all at once (empty: good to go)."""
    model = _model_problems(cfg)
    corpus = _corpus_problems(cfg)
    data, utterances = ([], None) if corpus else _label_problems(cfg)
    if not corpus and not data:
        data = _fold_problems(cfg, utterances)
    readable = not corpus and not data and (utterances is not None or cfg.corpus == "synthetic")
    n_folds = len(cfg.folds) or (len(planned_fold_names(cfg.protocol, corpus_speakers(utterances), cfg.n_folds,
                                                        given_folds_of(cfg, utterances))) if readable else 10)
    need = None if model or cfg.model in NAMED_MODELS else _disk_need_from_files(cfg, n_folds, jobs, utterances)
    return (corpus + data + _noise_problems(cfg) + _test_corpus_problems(cfg) + model + _device_problems(cfg)
            + _disk_problems(study_dir, need) + ([] if corpus else _data_folder_problems(cfg, study_dir)))


def _data_folder_problems(cfg: StudyConfig, study_dir: Path) -> list[str]:
    """The data folder: in use by a running study of other data, or no longer holding what the study was made from
    and its settings no longer making it (``data/ownership.py``)."""
    from ..data.ownership import DataMismatch, in_use_by_other
    from ..data.prepare import own_data
    try:
        why = in_use_by_other(cfg.data_dir, own_data(study_dir, cfg))
    except DataMismatch as err:
        return [str(err)]
    return [why] if why else []


def data_notes(cfg: StudyConfig) -> list[str]:
    """What the data step will do that a user should know before it starts: the files it will convert to 16 kHz
    mono (corpus, noise, room impulse responses: how many, from which rates, how long), and a test family the
    data leaves out. Headers only, and one timed conversion per kind of file."""
    from ..data.ingest import estimate_seconds, survey
    from ..data.prepare import no_unseen_noise
    notes = []
    for what, paths in _source_files(cfg).items():
        found = survey(paths)
        if found.to_convert:
            notes.append(found.describe(what, estimate_seconds(found)))
    return notes + [n for n in (no_unseen_noise(cfg),) if n]
