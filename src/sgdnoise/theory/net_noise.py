r"""Weight fluctuations of a network with weight-dependent gradient noise in its top-k Hessian subspace.

The network form of the state-dependent noise of docs/theory.md §3g ("What the method keeps",
item 2; there for linear regression, where the per-example Hessian is :math:`z_\mu z_\mu^\top`).
In the span of the top-``k`` Hessian eigenvectors :math:`V` the per-example gradient at weights
:math:`\theta` near the reference :math:`\theta_0` is, to first order,

.. math:: q_n(\theta) = q_n + B_n\,p, \qquad p = V^\top(\theta - \theta_0), \quad
          B_n = V^\top \nabla^2\ell_n V,

so the batch-gradient noise is the noise at the reference weights plus the weight-dependent
part :math:`(\bar B_{\mathcal B} - \bar B)p` whose one-step covariance, averaged over the
stationary state with the fluctuations of different directions taken as uncorrelated, is

.. math:: f\,\mathbb E_n[(D_n C D_n)_{ii}] \approx f \sum_j S_{ij}\,\mathrm{Var}\,\theta_j,
          \qquad S_{ij} = \frac1P\sum_n (D_n)_{ij}^2, \quad D_n = B_n - \bar B,

with the sampler's factor :math:`f` (§2).  The stationary variances solve the linear
self-consistency

.. math:: \mathrm{Var}\,\theta_i = K_i + G_i\, f \sum_j S_{ij}\,\mathrm{Var}\,\theta_j ,

:math:`K_i` the Kühn-Rosenow variance of the noise at the reference weights (§3d, anti-correlated
over an epoch for epoch sampling) and :math:`G_i` the variance per unit one-step noise variance
of the weight-dependent part, whose lag kernel is the open question: ``kernel="white"`` treats
it as uncorrelated from step to step (exact with replacement; for epochs the closure "noise at
w* anti-correlated plus the weight-dependent part uncorrelated" of issue 10), ``kernel="epoch"``
as anti-correlated like the noise at fixed weights (right where :math:`p` hardly moves within an
epoch).  The two bracket the epoch prediction.  Left out: the displacement outside the top-k
subspace (the bulk of the spectrum), the mean displacement, the covariances between directions,
and the usage correlations of §3g's closure.  A spectral radius of :math:`\mathrm{diag}(G) f S`
of 1 or more means no stationary state (multiplicative-noise instability): NaN.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sgdnoise.theory.kuehn_rosenow import kuehn_rosenow

KERNELS = ("white", "epoch")


@dataclass(frozen=True)
class WeightDependentPrediction:
    """Per direction: ``var_theta``, ``var_v``, ``tau``; and the share of Var theta from the weight-dependent part.

    ``spectral_radius`` of the self-consistency map (below 1 for a stationary state).
    """

    var_theta: np.ndarray
    var_v: np.ndarray
    tau: np.ndarray
    weight_dependent_share: np.ndarray
    spectral_radius: float


def relaxation_time(lam: np.ndarray, lr: float, momentum: float) -> np.ndarray:
    r"""Steps over which the mean of :math:`\theta_i` relaxes under heavy-ball SGD: :math:`-1/\ln|z|_{\max}`.

    :math:`z` the roots of :math:`z^2 - (1 + \beta - \eta\lambda_i) z + \beta` (docs/theory.md §3b);
    about :math:`(1 - \beta)/(\eta\lambda_i)` in flat directions, :math:`-2/\ln\beta` when
    underdamped; infinite for :math:`\lambda_i \le 0`.
    """
    lam = np.asarray(lam, np.float64)
    b = 1 + momentum - lr * lam
    disc = b * b - 4 * momentum
    root = np.where(disc >= 0, (np.abs(b) + np.sqrt(np.maximum(disc, 0))) / 2, np.sqrt(momentum))
    with np.errstate(divide="ignore"):
        return np.where((lam > 0) & (root < 1), -1 / np.log(np.minimum(root, 1 - 1e-300)), np.inf)


def hessian_spread(blocks: np.ndarray) -> np.ndarray:
    r""":math:`S_{ij} = \frac1P\sum_n (B_n - \bar B)_{ij}^2` from per-example blocks ``(P, k, k)`` (symmetrised)."""
    B = np.asarray(blocks, np.float64)
    B = 0.5 * (B + np.swapaxes(B, 1, 2))
    D = B - B.mean(axis=0)
    return np.mean(D * D, axis=0)


def weight_dependent_fluctuations(lam: np.ndarray, reference_noise: np.ndarray, spread: np.ndarray,
                                  noise_factor: float, lr: float, momentum: float, batches_per_epoch: int,
                                  kernel: str = "white") -> WeightDependentPrediction:
    r"""Solve the module docstring's self-consistency for Var theta, then Var v and tau.

    Parameters
    ----------
    lam : ndarray (k,)
        Hessian eigenvalues (positive, within the stability limit).
    reference_noise : ndarray (k,)
        One-step noise variance at the reference weights, :math:`f\sigma^2_{1,i}`.
    spread : ndarray (k, k)
        :math:`S_{ij}` (:func:`hessian_spread`).
    noise_factor : float
        The sampler's :math:`f`.
    lr, momentum : float
    batches_per_epoch : int
        ``M`` of the reference noise's kernel (1: uncorrelated, with replacement).
    kernel : {"white", "epoch"}
        Lag kernel of the weight-dependent part (module docstring); ``epoch`` uses ``M``.
    """
    lam = np.asarray(lam, np.float64)
    ref = kuehn_rosenow(lam, reference_noise, lr, momentum, batches_per_epoch)
    unit = kuehn_rosenow(lam, 1.0, lr, momentum, batches_per_epoch if kernel == "epoch" else 1)
    coupling = unit.var_theta[:, None] * noise_factor * np.asarray(spread, np.float64)
    radius = float(np.max(np.abs(np.linalg.eigvals(coupling)))) if lam.size else 0.0
    if radius >= 1:
        nan = np.full(lam.shape, np.nan)
        return WeightDependentPrediction(nan, nan, nan, nan, radius)
    var_theta = np.linalg.solve(np.eye(lam.size) - coupling, ref.var_theta)
    extra = noise_factor * np.asarray(spread, np.float64) @ var_theta
    var_v = ref.var_v + unit.var_v * extra
    return WeightDependentPrediction(var_theta, var_v, 2 * var_theta / var_v,
                                     1 - ref.var_theta / var_theta, radius)
