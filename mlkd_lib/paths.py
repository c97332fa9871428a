"""Where relative paths point, and the project root, found once, here.

A path typed on the command line means the current folder (as a shell user means it: ``keys.here``); one in a
setup file, that file's folder (``absolute``). A preset's defaults (``data/demo``, ``results/demo``) and a
notebook's parameters are taken against the project root — a notebook opened in JupyterLab runs in its own
folder, `mlkd study` wherever it was started, and both must mean the same ``data/demo`` (``with_absolute_paths``).
A study records every path absolute in its ``config.json``.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
from pathlib import Path
from typing import Any

ROOT_ENV = "MLKD_ROOT"  # set it to put data/ and results/ somewhere else (tests do)
CACHE_ENV = "MLKD_CACHE"  # where work every setup would repeat is kept (cache_dir); empty: kept nowhere
PACKAGE = Path(__file__).resolve().parent
NOTEBOOKS = PACKAGE / "notebooks"  # package data, so `mlkd study` runs from a wheel too; ./notebooks links here


def project_root() -> Path:
    """``$MLKD_ROOT`` if set; else the checkout this library lives in (the folder holding
    ``pyproject.toml`` beside ``mlkd_lib/``); else, for an installed wheel, the current directory."""
    if os.environ.get(ROOT_ENV):
        return Path(os.environ[ROOT_ENV]).expanduser().resolve()
    if (PACKAGE.parent / "pyproject.toml").is_file():
        return PACKAGE.parent
    return Path.cwd()


def cache_dir() -> Path | None:
    """``$MLKD_CACHE``, else ``$XDG_CACHE_HOME/mlkd-ser`` (``~/.cache/mlkd-ser``): results of pure functions of
    their settings that every setup would otherwise compute again (the simulated rooms). None where
    ``$MLKD_CACHE`` is set empty."""
    if CACHE_ENV in os.environ:
        return Path(os.environ[CACHE_ENV]).expanduser() if os.environ[CACHE_ENV] else None
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mlkd-ser"


def resolve(path: str | os.PathLike) -> Path:
    """``path`` made absolute against the project root (absolute paths are kept)."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else project_root() / p


def results_dir() -> Path:
    return project_root() / "results"


def by_hand_study(preset: str) -> Path:
    """The study folder of notebooks run one by one with their defaults: 01 → 02 → 02b → 03 → 04 → 05
    all read and write here."""
    return results_dir() / f"{preset}-notebooks"


def newest_study() -> Path:
    """The study under ``results/`` with the most recent activity (a finished step, else its config),
    for notebooks that open a study when none is named."""
    def last_activity(study: Path) -> float:
        stamps = [p.stat().st_mtime for p in study.glob("**/done.json")]
        return max(stamps, default=(study / "config.json").stat().st_mtime)

    studies = [c.parent for c in results_dir().glob("*/config.json")]
    if not studies:
        raise FileNotFoundError(f"no study under {results_dir()} yet: run `make demo`, or the notebooks 01 → 03")
    return max(studies, key=last_activity)


def git_commit() -> str | None:
    """The library's commit, for provenance (None outside a git checkout)."""
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=PACKAGE).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def library_fingerprint() -> str:
    """A short hash of this library's code and notebooks: two processes (a study's driver and a Ray
    node) run the same version exactly when theirs agree."""
    import hashlib
    h = hashlib.sha256()
    for f in sorted(PACKAGE.rglob("*")):
        if f.suffix in (".py", ".ipynb") and "__pycache__" not in f.parts:
            h.update(f.relative_to(PACKAGE).as_posix().encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:12]


# keys that name files or folders: relative ones are taken against the folder they were written from (``absolute``)
PATH_KEYS = ("data_dir", "iemocap_root", "manifest", "noise_dir", "noisex_dir", "rir_dir", "test_manifests")


def absolute(values: dict[str, Any], base: Path) -> dict[str, Any]:
    """``values`` (study keys) with the relative paths of ``PATH_KEYS`` taken against ``base``: the current folder
    for ``--set``, a setup file's own folder for its keys. ``model`` too where ``base`` holds such a folder (else it
    names an architecture or a Hugging Face id)."""
    def one(p):
        p = Path(str(p).strip()).expanduser()
        return str(p if p.is_absolute() else base / p)

    out = dict(values)
    for k in PATH_KEYS:
        v = out.get(k)
        if k == "test_manifests" and isinstance(v, str):  # a list, as --set writes it
            v = [x for x in v.split(",") if x.strip()]
        if isinstance(v, (list, tuple)):
            out[k] = [one(x) for x in v]
        elif v:
            out[k] = one(v)
    model = out.get("model")
    if isinstance(model, str) and model and not Path(model).expanduser().is_absolute() and (base / model).exists():
        out["model"] = str(base / model)
    return out


def with_absolute_paths(cfg):
    """``cfg`` (a ``config.StudyConfig``) with the paths still relative — a preset's defaults, a notebook's
    parameters — taken against the project root, so a notebook's working directory does not move them; the
    command line and setup files have made theirs absolute already (``absolute``)."""
    return dataclasses.replace(cfg, **absolute({k: getattr(cfg, k) for k in (*PATH_KEYS, "model")}, resolve(".")))
