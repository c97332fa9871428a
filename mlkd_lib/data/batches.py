"""Which utterances make a training batch: similar lengths together (little compute on padding), shuffled anew
each epoch from the seed, so a resumed run draws the batches an uninterrupted one would have."""

from __future__ import annotations

import torch


def bucketed_batches(lengths, batch_size: int, generator: torch.Generator, window: int = 8) -> list[list[int]]:
    """Shuffled batches of similar-length utterances, so that little compute goes to padding:
    shuffle, sort within windows of ``window`` batches by length, cut into batches, shuffle those."""
    order = torch.randperm(len(lengths), generator=generator).tolist()
    batches = []
    for s in range(0, len(order), batch_size * window):
        chunk = sorted(order[s:s + batch_size * window], key=lambda i: lengths[i])
        batches += [chunk[j:j + batch_size] for j in range(0, len(chunk), batch_size)]
    return [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]


class EpochBatches:
    """A training loader's batch sampler: each epoch's ``bucketed_batches`` (seeded by the seed and the epoch), its
    items as ``(epoch, index)``, so the dataset draws an item's noise for that epoch in whichever worker reads it."""

    def __init__(self, durations, batch_size: int, seed: int):
        self.durations, self.batch_size, self.seed, self.epoch = durations, batch_size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _batches(self) -> list[list[int]]:
        order = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return bucketed_batches(self.durations, self.batch_size, order)

    def __iter__(self):
        return iter([[(self.epoch, i) for i in batch] for batch in self._batches()])

    def __len__(self) -> int:
        return -(-len(self.durations) // self.batch_size)
