"""Corpora, noise, mixing, folds and the torch dataset."""
