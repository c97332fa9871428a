"""Noise: a study's noise types as mono 16 kHz recordings, made from any collection (``collection.py``: a folder, a
folder of folders, a CSV; NOISEX-92's files), or, without one, from synthetic noises shaped like their NOISEX
namesakes (``synthetic.py``), and kept as the study's noise bank (``bank.py``), split into the parts that train
and the parts that test."""
