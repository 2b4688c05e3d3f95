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


def impulse_autocovariance(lam: np.ndarray, lr: float, momentum: float, max_lag: int) -> tuple[np.ndarray, np.ndarray]:
    r"""Lag sums of the heavy-ball impulse response, :math:`\Gamma_i(h) = \sum_t a_{i,t} a_{i,t+h}`, h = 0..max_lag.

    :math:`a_{i,t}` is the response of :math:`\theta_i` (first array) or of the velocity
    :math:`\theta_t - \theta_{t-1}` (second) ``t`` steps after a unit gradient kick, divided by
    :math:`-\eta`: :math:`a_1 = 1`, :math:`a_{t+1} = (1 + \beta - \eta\lambda_i) a_t - \beta a_{t-1}`
    (docs/theory.md §3b).  A noise of lag covariance :math:`K(h)` then gives
    :math:`\mathrm{Var}\,\theta_i = \eta^2 \sum_h K(h) \Gamma_i(|h|)` and the lag covariance of
    :math:`\theta_i`, :math:`\eta^2\sum_u K(u)\Gamma_i(|h + u|)` (§3d's double sum).  Summed until
    the response has decayed below 1e-9 of its size.
    """
    lam = np.asarray(lam, np.float64)
    steps = int(min(2e5, np.nanmax(np.where(np.isfinite(t := relaxation_time(lam, lr, momentum)), t, 0)) * 21 + 4
                    * max_lag + 50))
    a = np.zeros((lam.size, steps + max_lag + 1))
    a[:, 1] = 1.0
    c = 1 + momentum - lr * lam
    for t in range(1, steps + max_lag):
        a[:, t + 1] = c * a[:, t] - momentum * a[:, t - 1]
    v = np.diff(a, axis=1, prepend=0.0)
    gamma = np.stack([np.einsum("it,it->i", a[:, :steps], a[:, h: h + steps]) for h in range(max_lag + 1)], axis=1)
    gamma_v = np.stack([np.einsum("it,it->i", v[:, :steps], v[:, h: h + steps]) for h in range(max_lag + 1)], axis=1)
    return gamma, gamma_v


def _lag_sum(kernel: np.ndarray, gamma: np.ndarray, lags: int) -> np.ndarray:
    """``sum_{|u| <= L} K(|u|) Gamma(|h + u|)`` for h = 0..lags-1: ``kernel`` (k, L + 1), ``gamma`` (k, >= lags + L)."""
    L = kernel.shape[1] - 1
    out = np.zeros((kernel.shape[0], lags))
    for h in range(lags):
        for u in range(-L, L + 1):
            out[:, h] += kernel[:, abs(u)] * gamma[:, abs(h + u)]
    return out


def lagged_weight_dependent_fluctuations(lam: np.ndarray, reference_noise: np.ndarray, spread: np.ndarray,
                                         noise_factor: float, lr: float, momentum: float, batches_per_epoch: int,
                                         iterations: int = 500, rtol: float = 1e-10) -> dict[str, np.ndarray]:
    r"""The self-consistency of :func:`weight_dependent_fluctuations` with the weight-dependent part's lag kernel
    following the lag covariance of the weights (a two-time closure).

    For epoch sampling the batch Hessians are anti-correlated over an epoch like the noise,
    :math:`\mathrm{cov}((D_{\mathcal B_t})_{ij}, (D_{\mathcal B_{t+h}})_{ij}) = f S_{ij}\kappa_h`
    (§2), so with the displacements independent of the coming batches the weight-dependent
    noise along :math:`v_i` has lag covariance :math:`K_i(h) = f\kappa_h \sum_j S_{ij} C_j(h)`,
    :math:`C_j(h)` the lag covariance of :math:`\theta_j`: white where :math:`\theta_j`
    decorrelates within a step, epoch-anti-correlated where it stays put over an epoch.
    :math:`C_j(h) = \eta^2[\sigma^2_{{\rm ref},j}\sum_u \kappa_u\Gamma_j(|h+u|) + \sum_u K_j(u)
    \Gamma_j(|h+u|)]` (:func:`impulse_autocovariance`) is solved for ``h < M`` by fixed-point
    iteration.  With replacement (:math:`\kappa_h = \delta_{h0}`) it is the white prediction.

    Returns ``var_theta``, ``var_v``, ``tau`` and ``low_frequency_ratio``: per direction
    :math:`\sum_h K_i(h) / K_i(0)` (1 white, 0 fully anti-correlated), to hold against the
    ``fluctuation`` part measured along the trajectory (:mod:`sgdnoise.experiments.net.mechanism`).
    """
    from sgdnoise.theory.noise import noise_kernel

    M = int(batches_per_epoch)
    L = M - 1 if M > 1 else 0
    kappa = noise_kernel("epoch" if M > 1 else "with-replacement", max(M, 1), L)
    gamma, gamma_v = impulse_autocovariance(lam, lr, momentum, 2 * L + 1)
    reference = np.asarray(reference_noise, np.float64)[:, None] * kappa[None, :]
    base = lr**2 * _lag_sum(reference, gamma, L + 1)
    F = noise_factor * np.asarray(spread, np.float64)
    C = base.copy()
    for _ in range(iterations):
        wd = (F @ C) * kappa[None, :]
        new = base + lr**2 * _lag_sum(wd, gamma, L + 1)
        done = np.max(np.abs(new - C)) <= rtol * np.max(np.abs(new))
        C = new
        if done:
            break
    wd = (F @ C) * kappa[None, :]
    var_v = lr**2 * (_lag_sum(reference, gamma_v, 1) + _lag_sum(wd, gamma_v, 1))[:, 0]
    total = wd[:, 0] + 2 * wd[:, 1:].sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"var_theta": C[:, 0], "var_v": var_v, "tau": 2 * C[:, 0] / var_v,
                "low_frequency_ratio": total / wd[:, 0], "noise_lag_covariance": wd}
