"""Finite-window bias of trajectory PCA, measured on the linearised theory itself (docs/theory.md §5b).

Feng & Tu's PCA estimates the eigenvalues of the stationary covariance from n correlated
snapshots of one run, centred on the window mean.  Two biases follow (docs/theory.md §5b):
the window mean takes ``~ 2 tau / n`` of each direction's variance away, and the sample
eigenvalues of a finite, correlated sample spread about the true ones (the largest come
out too large, the smallest too small; Marchenko-Pastur with ``n / (2 tau)`` effective
samples).  Both depend on the autocorrelation of every mode, so instead of a formula this
module applies *the same estimator* to samples of the linearised dynamics whose stationary
covariance is exactly the predicted one, with the same window, snapshot spacing and number
of replicas:

- reduced coordinates on the complement of the symmetry zero modes (basis ``B``);
- the heavy-ball state ``x_t = (delta_t, delta_{t-1})`` with
  ``x_t = M x_{t-1} + (-lr xi_t, 0)``, ``M = [[(1 + beta) I - lr H, -beta I], [I, 0]]``,
  ``xi ~ N(0, C)`` white (docs/theory.md §3b); its stationary covariance ``X`` solves
  ``X = M X M^T + lr^2 diag(C, 0)``;
- snapshots every k steps are exactly the AR(1) chain ``x_{j+1} = M^k x_j + zeta_j``,
  ``zeta ~ N(0, X - M^k X (M^k)^T)``, started from ``N(0, X)``: no discretisation error.

The ratio of the ranked PCA variances of these synthetic windows to the true eigenvalues of
the layer block is the estimator's bias in this setting (white noise at the minimum: the
correlations of epoch sampling (§3e) are not included).
"""
from __future__ import annotations

import numpy as np
from scipy.linalg import solve_discrete_lyapunov

from sgdnoise._spec import rng
from sgdnoise.measure.pca import aggregate, trajectory_pca
from sgdnoise.theory.linear_networks import complement_basis


def _root(cov: np.ndarray) -> np.ndarray:
    """A square root ``L`` with ``L L^T = cov`` of a symmetric PSD matrix (negative rounding clipped)."""
    lam, V = np.linalg.eigh(0.5 * (cov + cov.T))
    return V * np.sqrt(np.clip(lam, 0.0, None))


def window_samples(hessian: np.ndarray, noise: np.ndarray, lr: float, momentum: float,
                   generators: np.ndarray | None, every: int, snapshots: int, replicas: int,
                   seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic windows (R, n, d) of the linearised dynamics and their exact covariance (d, d).

    Parameters as :func:`~sgdnoise.theory.linear_networks.linearised_covariance`; ``every``
    steps between the ``snapshots`` snapshots of each of ``replicas`` independent windows.
    """
    d = hessian.shape[0]
    B = complement_basis(np.zeros((d, 0)) if generators is None else generators, d)
    n = B.shape[1]
    Hr, Cr = B.T @ hessian @ B, B.T @ noise @ B
    eye = np.eye(n)
    M = np.block([[(1 + momentum) * eye - lr * 0.5 * (Hr + Hr.T), -momentum * eye], [eye, 0 * eye]])
    Q = np.zeros((2 * n, 2 * n))
    Q[:n, :n] = lr**2 * 0.5 * (Cr + Cr.T)
    X = solve_discrete_lyapunov(M, Q)
    X = 0.5 * (X + X.T)
    Mk = np.linalg.matrix_power(M, every)
    step, start = _root(X - Mk @ X @ Mk.T), _root(X)
    gen = rng(seed, "window-bias")
    x = gen.normal(size=(replicas, 2 * n)) @ start.T
    out = np.empty((replicas, snapshots, n))
    for j in range(snapshots):
        out[:, j] = x[:, :n]
        x = x @ Mk.T + gen.normal(size=(replicas, 2 * n)) @ step.T
    return out @ B.T, B @ X[:n, :n] @ B.T


def window_bias(samples: np.ndarray, covariance: np.ndarray, layer: slice) -> dict[str, np.ndarray]:
    """Ranked PCA variances of the synthetic windows of one layer against the true eigenvalues.

    Returns ``true`` (descending eigenvalues of the layer block above ``1e-10`` of the largest),
    ``windowed`` and ``windowed_stderr`` (mean and standard error over the replicas of the
    i-th largest PCA variance) and ``bias = windowed / true - 1`` with its ``bias_stderr``.
    """
    true = np.linalg.eigvalsh(covariance[layer, layer])[::-1]
    true = true[true > true[0] * 1e-10]
    pca = trajectory_pca(samples[..., layer], components=true.size)
    mean, se = aggregate(pca.variances)
    m = min(mean.size, true.size)
    return {"true": true[:m], "windowed": mean[:m], "windowed_stderr": se[:m],
            "bias": mean[:m] / true[:m] - 1, "bias_stderr": se[:m] / true[:m]}
