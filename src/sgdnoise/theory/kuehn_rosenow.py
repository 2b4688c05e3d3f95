"""Weight and velocity variances under epoch-based SGD: Kuehn & Rosenow (docs/theory.md §3d).

Kuehn & Rosenow, "Correlated noise in epoch-based stochastic gradient descent:
implications for weight variances", arXiv 2306.05300 (eqs. 14-20 as numbered in
the authors' presentation of it; docs/theory.md §3d).  Per common eigen-direction i
of H and C (assumes [C, H] = 0 and noise independent of the weights),

    (var_theta_i, var_v_i) = eta^2 sigma_i^2 F_i [e1 - (E_i + E_i^T) e1],

with ``v_k = theta_k - theta_{k-1}`` and F_i, E_i, D_i of eqs. 15-17.  That closed
form is the double sum ``eta^2 sigma^2 sum_{j,l} a_j a_l kappa(j - l)`` over the
impulse response ``a_j = (D^j)_11`` and the epoch kernel kappa (docs/theory.md §3d);
here it is evaluated in a form without its cancellations: eq. 14 subtracts two
terms of size 1/(eta lambda) and eq. 16 divides ``D^M + (1 - D) M - 1`` (a
difference of O(1) terms that is O((eta lambda M)^2)) by ``(1 - D)^2``.  Using
that the kernel sums to zero (derived here; see
:func:`sgdnoise.theory.lyapunov.epoch_green`),

    var_theta = eta^2 sigma^2 2 c (w_1 - w_2),      c = 1 / ((1 - beta)(2 (1 + beta) - eta lambda)),
    var_v     = eta^2 sigma^2 c [2 - 2 (e1 - e2)^T A1 (e1 - e2) / (M (M - 1))],

where ``w = e1^T A2 / (M (M - 1))`` and A1, A2 are positive-weight power sums of D
(:func:`sgdnoise.theory.lyapunov.epoch_sums`, matrix power by squaring).  Both
stay finite and accurate as lambda -> 0 (the flat-direction limit is
``var_theta -> eta^2 sigma^2 (M + 1) / 6`` at beta = 0) and for large M.
``batches_per_epoch = 1`` gives the uncorrelated (with-replacement) result, where
``var_theta = eta sigma^2 (1 + beta) / (lambda (1 - beta)(2 (1 + beta) - eta lambda))`` (3b).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sgdnoise.errors import UsageError
from sgdnoise._spec import check_int, check_momentum, check_positive, check_stable
from sgdnoise.theory.lyapunov import epoch_sums, white_green


@dataclass(frozen=True)
class KuehnRosenow:
    """Per-direction stationary moments of epoch-based SGD with momentum (docs/theory.md §3d).

    Attributes
    ----------
    var_theta : ndarray
        Weight variance sigma^2_theta,i along each eigen-direction.
    var_v : ndarray
        Velocity variance sigma^2_v,i, ``v_k = theta_k - theta_{k-1}``.
    tau : ndarray
        Velocity-correlation time ``2 var_theta / var_v`` (eq. 18); independent of
        the noise variance, so defined where it is zero.
    """

    var_theta: np.ndarray
    var_v: np.ndarray
    tau: np.ndarray


def _non_negative(name: str, values: np.ndarray) -> np.ndarray:
    """float64 copy of ``values``; round-off negatives (above -1e-12 max|values|) become 0, others raise."""
    x = np.array(values, dtype=np.float64)
    if not np.all(np.isfinite(x)):
        raise UsageError(f"{name} must be finite and >= 0")
    if x.size and x.min() < 0:
        if x.min() < -1e-12 * np.abs(x).max():
            raise UsageError(f"{name} must be >= 0; got {x.min():.6g}")
        x[x < 0] = 0.0
    return x


def kuehn_rosenow(
    hessian_eigenvalues: np.ndarray,
    noise_variances: np.ndarray,
    lr: float,
    momentum: float,
    batches_per_epoch: int,
) -> KuehnRosenow:
    """Kuehn & Rosenow's stationary weight and velocity variances, eqs. 14-17 (docs/theory.md §3d).

    Parameters
    ----------
    hessian_eigenvalues : array_like
        lambda_i >= 0 with ``lr lambda_i < 2 (1 + momentum)``.
    noise_variances : array_like
        sigma^2_dg,i >= 0, the eigenvalues of the one-step noise covariance C along
        the same directions (broadcast against ``hessian_eigenvalues``).
        In both, negatives from round-off (above ``-1e-12`` times the largest
        magnitude) count as zero.
    lr : float
        eta > 0.
    momentum : float
        beta in [0, 1).
    batches_per_epoch : int
        M >= 1; M = 1 gives uncorrelated noise (E_i = 0), where ``var_theta`` is
        infinite at lambda = 0.

    Returns
    -------
    KuehnRosenow
        Arrays of the broadcast shape.

    Examples
    --------
    Flat directions have tau ~ tau_SGD = M/3, sharp ones tau ~ 1/(lr lambda) = 10:

    >>> kr = kuehn_rosenow([1e-6, 1.0], 1.0, lr=0.1, momentum=0.0, batches_per_epoch=1000)
    >>> kr.tau.round(1)
    array([333.7,   9.8])
    """
    lam, sigma2 = np.broadcast_arrays(
        _non_negative("hessian_eigenvalues", hessian_eigenvalues), _non_negative("noise_variances", noise_variances)
    )
    check_positive("lr", lr)
    check_momentum(momentum)
    check_int("batches_per_epoch", batches_per_epoch, 1)
    if lam.size:
        check_stable(lr, lam.max(), momentum)
    M = int(batches_per_epoch)
    eps = (lr * lam).ravel()
    c = 1 / ((1 - momentum) * (2 * (1 + momentum) - eps))
    if M == 1:
        theta, velocity = white_green(eps, eps, momentum), 2 * c
    else:
        A1, A2 = epoch_sums(eps, momentum, M)
        theta = 2 * c * (A2[:, 0, 0] - A2[:, 0, 1]) / (M * (M - 1))
        v_sum = A1[:, 0, 0] - A1[:, 0, 1] - A1[:, 1, 0] + A1[:, 1, 1]
        velocity = c * (2 - 2 * v_sum / (M * (M - 1)))
    theta, velocity = theta.reshape(lam.shape), velocity.reshape(lam.shape)
    scale = lr**2 * sigma2
    with np.errstate(invalid="ignore"):  # 0 * inf: zero noise on a flat direction without epochs
        var_theta = scale * theta
    return KuehnRosenow(var_theta=var_theta, var_v=scale * velocity, tau=2 * theta / velocity)


def lambda_cross(lr: float, momentum: float, batch_size: int, n_examples: int) -> float:
    """Crossover curvature ``lambda_cross = 3 (1 - beta) S / (eta P)`` (Kuehn & Rosenow, eq. 19).

    Above it the epoch anti-correlations are negligible and
    ``tau_i ~ (1 + beta) / (eta lambda_i)``; below it ``tau_i ~ tau_SGD``.
    """
    check_positive("lr", lr)
    check_momentum(momentum)
    if not 1 <= batch_size <= n_examples:
        raise UsageError(f"batch_size must be between 1 and n_examples = {n_examples}; got {batch_size!r}")
    return 3 * (1 - momentum) * batch_size / (lr * n_examples)


def tau_sgd(momentum: float, batches_per_epoch: int) -> float:
    """Flat-direction velocity-correlation time ``tau_SGD = (M / 3)(1 + beta) / (1 - beta)`` (eq. 20)."""
    check_momentum(momentum)
    check_int("batches_per_epoch", batches_per_epoch, 1)
    return batches_per_epoch / 3 * (1 + momentum) / (1 - momentum)
