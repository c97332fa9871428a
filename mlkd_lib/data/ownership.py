"""A data folder holds one setup's data, and a study reads it only while it holds the data the study was made from.

A study's corpus listing, converted audio, noise bank, rooms and test corpora live under its ``data_dir``. Two
setups that point at one folder would overwrite each other's files, and a step, a sweep, an export or the listening
page would then read the other setup's utterances without a word. So:

- an identity (``prepare.data_identity``): what a folder holds, by what it was made from (the corpus and its table's
  content, the classes, the noise, the rooms, the test corpora); the folder says it in ``data.json``, the study's
  data step records it in ``<study>/data/done.json``.
- ``DataClaim``: a running study holds its data folder for the whole run — shared with other runs of the same data,
  alone while it (re)builds it; a run of other data is refused in one line while the folder is in use.
- a reader of a study's data (``prepare.check_study_data``) refuses, naming both, when the folder now holds other
  data (``mismatch`` says it).

A study made before folders said what they hold (no identity in its data step's marker) is read against the
identity its ``config.json`` names now; a folder that does not say (an older one) is taken as it is.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import socket
import time
import warnings
from pathlib import Path

HOLDS = "data.json"  # what the folder holds: {"identity", "state": building | ready, "study", "since"}
USERS = ".users.lock"  # shared by every run reading the folder, exclusive while one (re)builds it
READY, BUILDING = "ready", "building"


class DataMismatch(RuntimeError):
    """A study's data folder holds other data than the study was made from (the message names both)."""


class DataFolderInUse(RuntimeError):
    """A run of other data holds the folder (the message names it)."""


def file_digest(path: str | Path) -> str | None:
    """SHA-256 of a file's bytes (a table written again with the same rows is the same table); None if absent."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    except OSError:
        return None


def describe(ident: dict | None) -> str:
    """A line a person recognises their data by: the corpus, its classes, its noise."""
    if not ident:
        return "nothing yet"
    corpus = {"synthetic": f"the synthetic corpus (seed {ident.get('synth_seed')}, {ident.get('synth_per_class')} "
                           f"per class)",
              "iemocap": f"IEMOCAP at {ident.get('iemocap_root')}"}.get(ident.get("corpus"),
                                                                          f"the manifest {ident.get('manifest')}")
    noise = ident.get("noise_dir") or ident.get("noisex_dir") or "the synthetic noises"
    return f"{corpus}, classes {','.join(ident.get('emotions', []))}, noise {noise}"


def differences(a: dict, b: dict) -> list[str]:
    """The inputs two identities differ in (a table's content shows as its digest)."""
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


def holds(data_dir: str | Path) -> dict | None:
    """The folder's ``data.json`` (None: it says nothing — new, or made before folders said what they hold)."""
    try:
        return json.loads((Path(data_dir) / HOLDS).read_text())
    except (OSError, ValueError):
        return None


def write_holds(data_dir: str | Path, ident: dict, state: str, study: str | Path | None = None) -> None:
    """Say what the folder holds, whole or not at all (readers may be looking)."""
    path = Path(data_dir) / HOLDS
    path.parent.mkdir(parents=True, exist_ok=True)
    old = holds(data_dir) or {}
    record = {"identity": ident, "state": state, "study": str(study) if study else old.get("study"),
              "since": time.strftime("%Y-%m-%dT%H:%M:%S"), "host": socket.gethostname(), "pid": os.getpid()}
    tmp = path.with_name(f".{HOLDS}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record, indent=2))
    os.replace(tmp, path)


def holds_ready(data_dir: str | Path, ident: dict) -> bool:
    """Whether the folder holds exactly ``ident``'s data, made to the end."""
    h = holds(data_dir)
    return h is not None and h.get("state") == READY and h.get("identity") == ident


def _made_for(h: dict | None) -> str:
    return f" (made for {h['study']})" if h and h.get("study") else ""


def mismatch(study: str | Path, want: dict, data_dir: str | Path) -> DataMismatch:
    """The one-line refusal: what ``study`` was made from, and what its folder holds now."""
    h = holds(data_dir)
    now = "nothing (the folder is empty or gone)" if h is None else (
        f"{describe(h.get('identity'))}{_made_for(h)}" + (", half made" if h.get("state") != READY else ""))
    return DataMismatch(f"{study} was made from {describe(want)}, but its data folder {data_dir} now holds {now}; "
                        f"nothing was read")


def recorded_identity(study: str | Path) -> dict | None:
    """The identity a study's data step recorded (through a link for an ablation or a sweep point); None before."""
    try:
        return json.loads((Path(study) / "data" / "done.json").read_text()).get("data")
    except (OSError, ValueError):
        return None


CANNOT_LOCK = (errno.ENOLCK, errno.EOPNOTSUPP)  # what flock says on a file system that cannot lock


class DataClaim:
    """A run's hold on a data folder (``flock`` on ``.users.lock``): shared by runs of the same data once it is made;
    exclusive while one run makes it (the folder then says it is building that run's data). A run of other data is
    refused while anyone holds the folder. The kernel lets go when the holder dies, however it dies."""

    def __init__(self, data_dir: str | Path, ident: dict, study: str | Path, say=print):
        self.data_dir, self.ident, self.study, self.say = Path(data_dir), ident, study, say
        self.fh, self.exclusive = None, False

    def _try(self, mode) -> bool:
        import fcntl
        try:
            fcntl.flock(self.fh, mode | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def acquire(self, poll_s: float = 0.5, wait_s: float | None = None) -> DataClaim:
        """Hold the folder: shared where it holds this data already, else alone (and say it builds it). A run of
        other data holding it: ``DataFolderInUse`` at once; one building this data: wait for it (``wait_s`` at
        most; None: as long as it takes)."""
        import fcntl
        if self.fh is not None:
            return self
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.fh = open(self.data_dir / USERS, "a+")
        waiting, deadline = False, None if wait_s is None else time.monotonic() + wait_s
        try:
            while True:
                h = holds(self.data_dir)
                if holds_ready(self.data_dir, self.ident):
                    if self._try(fcntl.LOCK_SH):
                        return self
                elif self._try(fcntl.LOCK_EX):
                    self.exclusive = True
                    write_holds(self.data_dir, self.ident, BUILDING, self.study)
                    return self
                elif h is not None and h.get("identity") != self.ident:
                    raise DataFolderInUse(
                        f"data folder {self.data_dir} is in use by a running study of other data: it holds "
                        f"{describe(h.get('identity'))}{_made_for(h)}; this setup's data ({describe(self.ident)}) "
                        f"differs in {', '.join(differences(h.get('identity') or {}, self.ident))}. Give this setup "
                        f"its own data_dir (a setup file's default, data/<its name> beside it, is its own)")
                if deadline is not None and time.monotonic() > deadline:
                    raise DataFolderInUse(f"data folder {self.data_dir} is still being made by another run after "
                                          f"{wait_s:.0f} s ({describe((h or {}).get('identity'))})")
                if not waiting:
                    self.say(f"waiting for the run that is making the data in {self.data_dir}")
                    waiting = True
                time.sleep(poll_s)
        except OSError as err:
            if err.errno not in CANNOT_LOCK:  # e.g. data.json not writable: that error, not a lock's
                self.release()
                raise
            warnings.warn(f"{self.data_dir}: cannot take a lock here ({err.strerror}); nothing stops a run of "
                          f"other data on this folder", stacklevel=2)
            self.release()
            return self
        except BaseException:
            self.release()
            raise

    def share(self) -> None:
        """The data is made: other runs of it may join."""
        if self.fh is not None and self.exclusive:
            import fcntl
            fcntl.flock(self.fh, fcntl.LOCK_SH)
            self.exclusive = False

    def release(self) -> None:
        if self.fh is not None:
            self.fh.close()
            self.fh = None

    def __enter__(self) -> DataClaim:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def in_use_by_other(data_dir: str | Path, ident: dict) -> str | None:
    """The pre-flight's look (nothing kept): why a run of ``ident`` could not use ``data_dir`` now, or None."""
    h = holds(data_dir)
    if h is None or h.get("identity") == ident or not (Path(data_dir) / USERS).is_file():
        return None
    import fcntl
    with open(Path(data_dir) / USERS, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return None  # nobody holds it: a run may make its own data there
        except BlockingIOError:
            pass
        except OSError:
            return None
    return (f"data_dir {data_dir} is in use by a running study of other data ({describe(h.get('identity'))}"
            f"{_made_for(h)}): give this setup its own data_dir")
