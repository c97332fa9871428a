"""The docs' commands as a user types them: the shell blocks of a README or docs page, cut into commands and run
one by one in bash, from a folder of the test's (never the checkout), with only the data roots replaced.

A command that would start a full-scale study (``mlkd study`` without ``--plan``, ``--trial`` or ``--preset micro``:
hours on a GPU) runs with ``--plan`` added: its inputs pass the pre-flight and it is priced, but nothing trains."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

BIN = Path(sys.executable).parent  # the venv's `mlkd`
FULL_STUDY = re.compile(r"^mlkd study (?!.*--plan)(?!.*--trial)(?!.*--preset micro)")


@dataclass
class Ran:
    command: str  # as run
    code: int
    out: str
    err: str


def shell_blocks(page: Path, heading: str) -> list[str]:
    """The fenced blocks without a language under the ``## heading`` of ``page`` (up to the next heading)."""
    text = page.read_text()
    start = text.index(heading)
    following = re.search(r"^#{1,3} ", text[start + len(heading):], flags=re.M)
    section = text[start:start + len(heading) + following.start()] if following else text[start:]
    return re.findall(r"^```\n(.*?)^```", section, flags=re.M | re.S)


def commands(block: str) -> list[str]:
    """A block's commands: one a line, a here-document with its lines, a trailing ``\\`` joining lines."""
    out, lines = [], block.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip() or line.lstrip().startswith("#"):
            i += 1
            continue
        here = re.search(r"<<'?(\w+)'?", line)
        if here:
            end = lines.index(here.group(1), i + 1)
            out.append("\n".join(lines[i:end + 1]))
            i = end + 1
            continue
        while line.endswith("\\"):
            i += 1
            line = line[:-1] + lines[i]
        out.append(line)
        i += 1
    return out


def run_block(block: str, cwd: Path, roots: dict[str, Path], env: dict | None = None,
              timeout: int = 600) -> list[Ran]:
    """Each command of ``block`` in bash in ``cwd``, ``roots`` (e.g. ``/corpora`` → a test folder) replaced, the venv
    first on the PATH; stops at the first that fails (its ``Ran`` is the last)."""
    env = {**os.environ, **(env or {}), "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    done = []
    for command in commands(block):
        for root, folder in roots.items():
            command = command.replace(f"{root}/", f"{folder}/")
        bare = re.sub(r"\s+#[^'\"]*$", "", command) if "\n" not in command else command  # a comment after it
        if FULL_STUDY.match(bare):
            command = bare + " --plan"
        run = subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True,
                             timeout=timeout)
        done.append(Ran(command, run.returncode, run.stdout, run.stderr))
        if run.returncode:
            break
    return done


ROOT = Path(__file__).resolve().parents[2]  # the checkout, whose docs are read (commands run elsewhere)


def block(page: str, heading: str, index: int = 0) -> str:
    """The ``index``-th shell block under ``heading`` of ``page`` (relative to the checkout)."""
    return shell_blocks(ROOT / page, heading)[index]


def finished(ran: list[Ran]) -> list[Ran]:
    """The commands' outcomes, every one a success; else the test fails naming the first command that failed."""
    last = ran[-1]
    assert last.code == 0, f"{last.command}\n--- exit {last.code}\n{last.out[-3000:]}\n{last.err[-3000:]}"
    return ran


def of(ran: list[Ran], words: str) -> Ran:
    """The outcome of the command that holds ``words``."""
    return next(r for r in ran if words in r.command)


def tiny_wav2vec2(folder: Path) -> Path:
    """wav2vec2-base's twelve layers (a layer-norm encoder), narrow (random weights)."""
    from transformers import Wav2Vec2Config, Wav2Vec2Model
    config = Wav2Vec2Config(hidden_size=16, num_hidden_layers=12, num_attention_heads=2, intermediate_size=32,
                            conv_dim=(8,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
                            feat_extract_norm="layer", do_stable_layer_norm=True, mask_time_prob=0.0)
    Wav2Vec2Model(config).save_pretrained(folder)
    return folder
