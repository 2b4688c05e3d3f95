"""Mini-batch samplers: which examples each SGD step sees.

Four schemes (docs/theory.md §1):

``with-replacement``
    every example of a batch drawn i.i.d. uniformly from the P examples;
``random-batch``
    each step S distinct examples, steps independent of each other;
``epoch``
    each epoch a fresh random permutation cut into M = P // S batches (SGD
    without replacement).  When S does not divide P, the last P - M S examples
    of each permutation are dropped (PyTorch's ``drop_last=True``), so every
    step has exactly S examples and an epoch has M steps;
``fixed-order``
    one random permutation drawn once and reused every epoch (same M batches in
    the same order, as with an unshuffled data loader); each replica has its own.

A sampler draws indices for many independent replicas and many steps at once
(``draw``), so simulators stay vectorised; ``iter_batches`` and
``torch_batch_sampler`` serve a single training run of a PyTorch model.
Epoch-based samplers remember their position in the epoch between calls.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from sgdnoise.errors import UsageError
from sgdnoise._spec import check_sampling


def _index_dtype(n_examples: int) -> type:
    """int32 indices where they fit (half the memory traffic, twice as fast to draw)."""
    return np.int32 if n_examples < 2**31 else np.int64


@dataclass
class Sampler:
    """Draws mini-batch indices for ``replicas`` independent SGD runs.

    Parameters
    ----------
    sampling : str
        One of ``SAMPLINGS``.
    n_examples : int
        P, the size of the data set.
    batch_size : int
        S, examples per step (1 <= S <= P).
    replicas : int
        Number of independent runs served at once.
    rng : numpy.random.Generator
        Source of randomness; the same seed gives the same batches.
    """

    sampling: str
    n_examples: int
    batch_size: int
    replicas: int = 1
    rng: np.random.Generator = field(default_factory=np.random.default_rng)
    _order: np.ndarray | None = field(default=None, init=False, repr=False)
    _position: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        check_sampling(self.sampling)
        if not 1 <= self.batch_size <= self.n_examples:
            raise UsageError(
                f"--batch must be between 1 and the number of examples ({self.n_examples}); "
                f"got {self.batch_size}"
            )
        if self.replicas < 1:
            raise UsageError(f"--replicas must be at least 1; got {self.replicas}")
        if self.sampling == "fixed-order":
            self._order = self._new_epochs()  # one order per replica, kept for the whole run

    @property
    def epoch_length(self) -> int:
        """M = P // S, the number of steps in one epoch."""
        return self.n_examples // self.batch_size

    def _new_epochs(self) -> np.ndarray:
        """A fresh permutation per replica, cut to M*S entries: shape (R, M*S)."""
        keys = self.rng.random((self.replicas, self.n_examples))
        return np.argsort(keys, axis=1)[:, : self.epoch_length * self.batch_size]

    def draw(self, steps: int) -> np.ndarray:
        """Indices of the next ``steps`` batches: integer array of shape (steps, R, S).

        The dtype depends on the scheme: int32 (int64 only when P >= 2**31) for
        ``with-replacement`` and for ``random-batch`` with ``S**2 <= P``; int64 for
        ``random-batch`` with ``S**2 > P``, ``epoch`` and ``fixed-order``.
        """
        R, S, P = self.replicas, self.batch_size, self.n_examples
        if self.sampling == "with-replacement":
            return self.rng.integers(0, P, size=(steps, R, S), dtype=_index_dtype(P))
        if self.sampling == "random-batch":
            return self._draw_distinct(steps)
        return self._draw_epochs(steps)

    def _draw_distinct(self, steps: int) -> np.ndarray:
        """S distinct indices per (step, replica), uniformly over subsets.

        For S^2 <= P: draw with replacement and redraw every row that holds a
        repeat (rejection keeps the law uniform over distinct tuples; about
        S^2/(2P) of the rows are redrawn).  Otherwise: the S smallest of P
        uniform keys per row.
        """
        R, S, P = self.replicas, self.batch_size, self.n_examples
        if S * S <= P:
            out = self.rng.integers(0, P, size=(steps * R, S), dtype=_index_dtype(P))
            redo = np.arange(out.shape[0])
            while redo.size:
                rows = np.sort(out[redo], axis=1)
                redo = redo[np.any(rows[:, 1:] == rows[:, :-1], axis=1)]
                out[redo] = self.rng.integers(0, P, size=(redo.size, S), dtype=out.dtype)
            return out.reshape(steps, R, S)
        out = np.empty((steps, R, S), dtype=np.int64)
        chunk = max(1, 2_000_000 // (R * P))
        for start in range(0, steps, chunk):
            n = min(chunk, steps - start)
            keys = self.rng.random((n, R, P))
            out[start : start + n] = np.argpartition(keys, S - 1, axis=2)[..., :S]
        return out

    def _draw_epochs(self, steps: int) -> np.ndarray:
        R, S, M = self.replicas, self.batch_size, self.epoch_length
        pieces = []
        needed = steps
        while needed > 0:
            if self._order is None or (self._position == 0 and self.sampling == "epoch"):
                self._order = self._new_epochs()
            take = min(needed, M - self._position)
            block = self._order[:, self._position * S : (self._position + take) * S]
            pieces.append(block.reshape(R, take, S).transpose(1, 0, 2))
            self._position = (self._position + take) % M
            needed -= take
        return np.concatenate(pieces, axis=0) if pieces else np.empty((0, R, S), np.int64)

    def iter_batches(self, steps: int, chunk: int = 1024) -> Iterator[np.ndarray]:
        """Yield the index arrays (shape (S,)) of the next ``steps`` batches of replica 0."""
        done = 0
        while done < steps:
            n = min(chunk, steps - done)
            yield from self.draw(n)[:, 0, :]
            done += n

    def torch_batch_sampler(self, steps: int) -> "TorchBatchSampler":
        """This sampler as a PyTorch ``batch_sampler`` yielding ``steps`` batches."""
        return TorchBatchSampler(self, steps)


class TorchBatchSampler:
    """Adapter: ``torch.utils.data.DataLoader(dataset, batch_sampler=...)``.

    Yields lists of example indices of replica 0 of ``sampler``; its length is
    the number of steps.
    """

    def __init__(self, sampler: Sampler, steps: int) -> None:
        self.sampler = sampler
        self.steps = steps

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self.sampler.iter_batches(self.steps):
            yield batch.tolist()

