"""Linear regression in the eigenbasis of its Hessian, shared by the linear-regression theories (docs/theory.md §3c, §3f, §3g)."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from sgdnoise.errors import UsageError


class _Eigenbasis(NamedTuple):
    """Linear regression rotated into the eigenbasis of H, restricted to its range (rank r)."""

    lam: np.ndarray  # (r,) positive eigenvalues of H
    V: np.ndarray  # (N, r) eigenvectors
    Z: np.ndarray  # (P, r) = X V
    w: np.ndarray  # (r, K) minimiser in the eigenbasis


def _eigenbasis(X: np.ndarray, Y: np.ndarray) -> _Eigenbasis:
    """Thin SVD of X; singular values below ``max(P, N) eps s_max`` (matrix_rank's rule) count as zero."""
    U, s, Vt = np.linalg.svd(X, full_matrices=False)
    r = int(np.sum(s > s[0] * max(X.shape) * np.finfo(np.float64).eps)) if s.size else 0
    U, s, V = U[:, :r], s[:r], Vt[:r].T
    return _Eigenbasis(s**2 / X.shape[0], V, U * s, (U.T @ Y) / s[:, None])


def _mean_square_unstable(lr: float) -> UsageError:
    return UsageError(
        f"lr = {lr:g} is at or beyond the mean-square stability limit of SGD with state-dependent noise: "
        f"the exact second moments diverge (the batch-Hessian fluctuations, of size ~ lr^2 / batch_size, "
        f"outgrow the contraction). Choose a smaller lr or a larger batch_size"
    )
