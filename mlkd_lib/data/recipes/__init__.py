"""One module a corpus: each turns a corpus as distributed into the study's manifest (``data/manifest.py``),
encoding the corpus's naming rules and quirks. ``mlkd data NAME --root DIR --out MANIFEST.csv`` runs one."""
