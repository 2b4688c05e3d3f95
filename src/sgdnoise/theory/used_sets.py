"""The used sets of an epoch: every union of whole batches, ranked, with their transitions.

Within an epoch of sampling without replacement, the examples used after j steps
form a set U of jS examples.  :func:`layers` enumerates, for j = 0..M, every such
set (ranked in colex order) and the sparse 0/1 maps from each set to the sets one
batch larger, which the exact epoch recursion of :mod:`sgdnoise.theory.epoch_exact`
sums over (docs/theory.md §3f).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from itertools import combinations

import numpy as np
from scipy import sparse


@dataclass(frozen=True)
class Layer:
    """Transitions from the used sets of size j S to those of size (j + 1) S.

    Sets of one size are numbered by their colexicographic rank.  For target set
    U' (sorted elements ``targets[t]``) and each S-subset B of U' (local positions
    ``local[c]``, the same list for every target), the source is ``U' minus B``.
    """

    weight: float  # 1 / C(P - j S, S): probability of each next batch
    targets: np.ndarray  # (n_t, (j+1) S) sorted elements
    pred_sum: sparse.csr_matrix  # (n_t, n_s): sum over the sources of each target
    first: sparse.csr_matrix  # (n_t nloc, n_s P): sum_{B containing a} u_{U' - B}[e_a]
    second: sparse.csr_matrix  # (n_t nloc^2, n_s P^2): sum_{B containing a, b} Y_{U' - B}[e_a, e_b]


def _colex_rank(sets: np.ndarray, binom: np.ndarray) -> np.ndarray:
    """Colexicographic rank of sorted k-subsets (rows of ``sets``) among all k-subsets."""
    k = sets.shape[-1]
    return sum(binom[sets[..., i], i + 1] for i in range(k)) if k else np.zeros(sets.shape[:-1], np.int64)


def _all_sets(P: int, k: int, binom: np.ndarray) -> np.ndarray:
    """All sorted k-subsets of range(P), row i the subset of colex rank i."""
    combos = np.array(list(combinations(range(P), k)), dtype=np.int64).reshape(math.comb(P, k), k)
    out = np.empty_like(combos)
    out[_colex_rank(combos, binom)] = combos
    return out


def _binomials(P: int) -> np.ndarray:
    binom = np.zeros((P + 1, P + 2), dtype=np.int64)
    for n in range(P + 1):
        for k in range(P + 2):
            binom[n, k] = math.comb(n, k)
    return binom


def index_entries(n_examples: int, batch_size: int) -> int:
    """Number of index entries :func:`epoch_exact_moments` stores (its memory and time scale)."""
    P, S = n_examples, batch_size
    total = 0
    for j in range(P // S):
        nloc = (j + 1) * S
        total += math.comb(P, nloc) * math.comb(nloc, S) * (1 + S + S * S)
    return total


@lru_cache(maxsize=4)
def layers(P: int, S: int) -> tuple[Layer, ...]:
    """Index tables of every transition of one epoch (depend on P and S only)."""
    binom = _binomials(P)
    layers = []
    sources = _all_sets(P, 0, binom)
    for j in range(P // S):
        nloc = (j + 1) * S
        targets = _all_sets(P, nloc, binom)
        n_t, n_s = targets.shape[0], sources.shape[0]
        local = np.array(list(combinations(range(nloc), S)), dtype=np.int64)  # (npred, S)
        rest = np.array([[a for a in range(nloc) if a not in c] for c in local], dtype=np.int64).reshape(len(local), -1)
        pred = _colex_rank(targets[:, rest], binom)  # (n_t, npred)
        npred = local.shape[0]
        t = np.arange(n_t)[:, None]
        pred_sum = sparse.csr_matrix(
            (np.ones(pred.size), (np.repeat(np.arange(n_t), npred), pred.ravel())), shape=(n_t, n_s)
        )
        elem = targets[:, local]  # (n_t, npred, S): the examples of batch B
        rows = (t[:, :, None] * nloc + local[None]).ravel()
        cols = (pred[:, :, None] * P + elem).ravel()
        first = sparse.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(n_t * nloc, n_s * P))
        rows = (t[:, :, None, None] * nloc**2 + local[None, :, :, None] * nloc + local[None, :, None, :]).ravel()
        cols = (pred[:, :, None, None] * P**2 + elem[:, :, :, None] * P + elem[:, :, None, :]).ravel()
        second = sparse.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(n_t * nloc**2, n_s * P**2))
        layers.append(Layer(1.0 / math.comb(P - j * S, S), targets, pred_sum, first, second))
        sources = targets
    return tuple(layers)
