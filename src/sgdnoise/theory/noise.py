"""Gradient-noise covariance of mini-batch SGD (docs/theory.md §2).

Notation: per-example losses l_n, P examples, batch size S, M = P // S
batches per epoch.  Per-example covariance
``Sigma_1 = (1/P) sum_n (grad l_n - grad L)(grad l_n - grad L)^T``; the
one-step covariance of the batch gradient is ``C = f Sigma_1`` with
``f = 1/S`` (with replacement) or ``f = (P - S)/(S (P - 1))`` (S distinct
examples: ``random-batch``, ``epoch``, ``fixed-order``).
"""
from __future__ import annotations

import numpy as np

from sgdnoise._spec import SAMPLINGS
from sgdnoise.errors import UsageError
from sgdnoise.problems.linear import least_squares_minimiser, linear_regression_gradients



def batch_noise_factor(sampling: str, n_examples: int, batch_size: int) -> float:
    """Factor f in C = f Sigma_1 for one step of ``sampling`` (docs/theory.md §2).

    Parameters
    ----------
    sampling : str
        One of ``SAMPLINGS``.
    n_examples, batch_size : int
        P and S.

    Returns
    -------
    float
        ``1/S`` for ``with-replacement``; ``(P - S)/(S (P - 1))`` otherwise (a
        batch of S distinct examples drawn uniformly: finite-population correction).
    """
    if sampling not in SAMPLINGS:
        raise UsageError(f"sampling must be one of {', '.join(SAMPLINGS)}; got {sampling!r}")
    P, S = n_examples, batch_size
    if sampling == "with-replacement":
        return 1.0 / S
    return (P - S) / (S * (P - 1)) if P > 1 else 0.0


def per_example_covariance(per_example_gradients: np.ndarray) -> np.ndarray:
    """Sigma_1 = (1/P) sum_n (g_n - mean g)(g_n - mean g)^T for gradients of shape (P, d)."""
    G = np.asarray(per_example_gradients, dtype=np.float64)
    centred = G - G.mean(axis=0)
    return centred.T @ centred / G.shape[0]


def noise_kernel(sampling: str, epoch_length: int, max_lag: int) -> np.ndarray:
    """Lag kernel kappa_h (h = 0..max_lag) with cov(dg_k, dg_{k+h}) = kappa_h C.

    Kuehn & Rosenow (arXiv 2306.05300) eq. 2, averaged over the position in the
    epoch: for ``epoch`` sampling ``kappa_0 = 1`` and
    ``kappa_h = -(M - h) / (M (M - 1))`` for ``1 <= h <= M``, zero beyond, so
    that ``sum_{h=-M}^{M} kappa_h = 0`` (an epoch's noise adds up to nothing).
    Samplers that draw each step independently have ``kappa_h = delta_{h0}``.
    ``fixed-order`` sampling is periodic, not stationary, and is refused.
    """
    if sampling not in SAMPLINGS:
        raise UsageError(f"sampling must be one of {', '.join(SAMPLINGS)}; got {sampling!r}")
    if sampling == "fixed-order":
        raise UsageError("noise_kernel: fixed-order sampling has no stationary noise kernel; "
                         "use epoch, random-batch or with-replacement")
    kappa = np.zeros(max_lag + 1)
    kappa[0] = 1.0
    M = epoch_length
    if sampling == "epoch" and M > 1:
        h = np.arange(1, min(M, max_lag) + 1)
        kappa[h] = -(M - h) / (M * (M - 1))
    return kappa


def noise_covariance(
    X: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    sampling: str = "with-replacement",
    w: np.ndarray | None = None,
    approx: str = "exact",
) -> np.ndarray:
    """One-step gradient-noise covariance C of linear regression at ``w`` (docs/theory.md §2).

    ``C = f Sigma_1(w)`` with ``Sigma_1(w) = (1/P) sum_mu x_mu x_mu^T (x_mu . delta + r_mu)^2
    - H delta delta^T H`` (one output), ``r = X w* - y``, ``delta = w - w*``, and
    ``f`` from :func:`batch_noise_factor`.  ``approx="hessian"`` returns the
    Hessian approximation of Gross et al. (arXiv 2311.14120), ``C ~ f sigma_r^2 H``
    with ``sigma_r^2`` the mean squared residual at ``w`` (docs/theory.md §2);
    it neglects the correlation between ``r_mu^2`` and the leverage of ``x_mu``.

    Parameters
    ----------
    X : array (P, N)
    y : array (P,) or (P, K)
    batch_size : int
        S.
    sampling : str
        One of ``SAMPLINGS``.
    w : array (N,) or (N, K), optional
        Where to evaluate; default the least-squares minimiser w*.
    approx : {"exact", "hessian"}

    Returns
    -------
    ndarray (N K, N K)
        Flattened N-major (output index fastest); (N, N) for one output.
    """
    X = np.asarray(X, dtype=np.float64)
    P = X.shape[0]
    if not 1 <= batch_size <= P:
        raise UsageError(f"batch_size must be between 1 and P = {P}; got {batch_size}")
    if approx not in ("exact", "hessian"):
        raise UsageError(f"approx must be 'exact' or 'hessian'; got {approx!r}")
    factor = batch_noise_factor(sampling, P, batch_size)
    if w is None:
        w = least_squares_minimiser(X, y)
    if approx == "exact":
        return factor * per_example_covariance(linear_regression_gradients(X, y, w))
    Y = np.asarray(y, dtype=np.float64).reshape(P, -1)
    residual = X @ np.asarray(w, np.float64).reshape(X.shape[1], -1) - Y
    sigma_r2 = float(np.mean(residual**2))
    H = X.T @ X / P
    return factor * sigma_r2 * np.kron(H, np.eye(Y.shape[1]))
