"""Tiny notebooks for executor tests: a parameters cell, then one code cell."""

from __future__ import annotations

import nbformat


def tiny_notebook(path, code: str) -> str:
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                           "language": "python"}})
    params = nbformat.v4.new_code_cell("done_dir = ''")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(code)]
    nbformat.write(nb, path)
    return str(path)


def marking_notebook(path) -> str:
    """A notebook that only writes ``done_dir/done.json``: a step that succeeds."""
    return tiny_notebook(path, "import pathlib\np = pathlib.Path(done_dir); p.mkdir(parents=True)\n"
                               "(p / 'done.json').write_text('{}')")


def failing_notebook(path) -> str:
    return tiny_notebook(path, "raise RuntimeError('the corpus is on fire')")
