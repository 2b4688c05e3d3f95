"""Detailed balance and its breaking for the continuum stationary covariance (docs/theory.md §3a).

For the Ornstein-Uhlenbeck limit ``H M + M H = eta C`` (docs/theory.md §3a) every
solution can be written

    M = (eta / 2) H^-1 (C + Q),     Q = (2 / eta) H M - C,

with Q antisymmetric (``Q + Q^T = (2/eta)(H M + M H) - 2 C = 0``): the decomposition
of Kwon, Ao & Thouless.  Q = 0 iff detailed balance holds, iff [H, C] = 0, and then
``M = M_db = (eta / 2) H^-1 C``.

Gross, Raulf & Räth (arXiv 2311.14120, Fig. 5b/c) compare the eigenvalues of M
with those "under the detailed balance assumption" and with the eigenvalues of
Q.  Their equations (eq_wts_cov, eq_wts_cov_detbal) are not available to us, only
the captions; we implement:

- the detailed-balance spectrum as the eigenvalues of ``(eta / 2) H^-1 C``, which
  is similar to the symmetric positive semi-definite ``(eta / 2) H^-1/2 C H^-1/2``:
  its eigenvalues are real and >= 0.  (The symmetrised ``(eta/4)(H^-1 C + C H^-1)``
  of :func:`sgdnoise.theory.stationary_covariance` ``method="detailed-balance"``
  is a different matrix and can have negative eigenvalues when [H, C] != 0.)
- Q in the same frame and normalisation as M:
  ``H^1/2 M H^-1/2 = (eta/2) H^-1/2 C H^-1/2 + (eta/2) H^-1/2 Q H^-1/2`` has the
  eigenvalues of M; its symmetric part has the detailed-balance eigenvalues and its
  antisymmetric part ``A = (eta/2) H^-1/2 Q H^-1/2`` has eigenvalues ``+- i a_k``.
  We report the a_k (the singular values of A), in the units of M.
"""
from __future__ import annotations

import numpy as np

from sgdnoise.theory.lyapunov import range_eigenbasis


def detailed_balance_spectrum(H: np.ndarray, C: np.ndarray, lr: float) -> np.ndarray:
    """Eigenvalues of ``(lr / 2) H^-1 C`` on range(H), descending (real, >= 0 for PSD C).

    Computed as the eigenvalues of the symmetric ``(lr/2) H^-1/2 C H^-1/2``, to which
    ``(lr/2) H^-1 C`` is similar (docs/theory.md §3a, method ``detailed-balance``).
    """
    lam, V = range_eigenbasis(np.asarray(H, np.float64))
    root = 1 / np.sqrt(lam)
    sym = 0.5 * lr * root[:, None] * (V.T @ C @ V) * root[None, :]
    return np.linalg.eigvalsh((sym + sym.T) / 2)[::-1]


def antisymmetric_part(H: np.ndarray, C: np.ndarray, M: np.ndarray, lr: float) -> np.ndarray:
    """Q = (2 / lr) H M - C (antisymmetric when M solves ``H M + M H = lr C``)."""
    return 2.0 / lr * np.asarray(H) @ np.asarray(M) - np.asarray(C)


def antisymmetric_spectrum(H: np.ndarray, C: np.ndarray, M: np.ndarray, lr: float) -> np.ndarray:
    """Moduli a_k of the eigenvalues +- i a_k of ``(lr / 2) H^-1/2 Q H^-1/2``, descending, in units of M.

    Each modulus appears twice (a pair +- i a_k; one zero for odd rank).
    """
    lam, V = range_eigenbasis(np.asarray(H, np.float64))
    Q = V.T @ antisymmetric_part(H, C, M, lr) @ V
    root = 1 / np.sqrt(lam)
    A = 0.5 * lr * root[:, None] * Q * root[None, :]
    return np.linalg.svd((A - A.T) / 2, compute_uv=False)
