"""Method ``epoch``: which form of the epoch closure runs, and what corrects it (docs/theory.md §3m).

Method ``epoch`` of :func:`sgdnoise.theory.stationary_covariance` and of ``sgdnoise linear`` is the
usage-correlation closure in one of two forms:

- §3k, the compact closure with the data's own sums over the examples
  (:class:`~sgdnoise.theory.epoch_compact.CompactEpoch`, ~11 P N^2 multiply-adds per step), wherever
  its estimated time (:func:`~sgdnoise.theory.epoch_compact.compact_cost`) is at most
  ``compact_seconds`` (default :data:`COMPACT_SECONDS`);
- beyond that, §3l, the same step with Gaussian data moments
  (:class:`~sgdnoise.theory.epoch_gaussian.GaussianCompactEpoch`, O(N^2) per step), with every
  direction's fluctuations rescaled by the data's own noise strength at w*
  (:func:`noise_strength`), provided the data's fourth moments in the eigenbasis are Gaussian
  within :data:`GAUSSIAN_TOLERANCE` (:func:`moment_deviation`); data that are not (e.g. images)
  get §3k whatever it costs.

Both get §3h's epoch-start correction where the batch size divides P.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from sgdnoise.errors import UsageError
from sgdnoise.theory.epoch_closure import epoch_problem, solve_closure
from sgdnoise.theory.epoch_compact import CompactEpoch, compact_cost, start_correction_applies
from sgdnoise.theory.epoch_exact import EpochMoments
from sgdnoise.theory.epoch_gaussian import GaussianCompactEpoch
from sgdnoise.theory.epoch_start import start_corrected_moments

#: Largest estimated time (s) of §3k's solve for which method epoch uses it (docs/theory.md §3m).
COMPACT_SECONDS = 30.0
#: Largest :func:`moment_deviation` for which method epoch uses §3l (docs/theory.md §3m).
GAUSSIAN_TOLERANCE = 0.02


@dataclass(frozen=True)
class EpochMethod:
    """The result of method ``epoch`` and how it was obtained.

    Attributes
    ----------
    moments : the stationary moments (:class:`~sgdnoise.theory.epoch_exact.EpochMoments`).
    data_moments : ``"empirical"`` (§3k, the data's own sums) or ``"gaussian"`` (§3l, rescaled by
        the noise strength).
    start_correction : whether §3h's epoch-start correction was made (S divides P).
    moment_deviation : :func:`moment_deviation` of the data (computed only when §3k was too costly; else NaN).
    """

    moments: EpochMoments
    data_moments: str
    start_correction: bool
    moment_deviation: float


def moment_deviation(Z: np.ndarray, lam: np.ndarray) -> float:
    """How far the data's fourth moments in the eigenbasis are from Gaussian (docs/theory.md §3m).

    ``max_a |sum_mu z_a^2 (z^T M z) / (P lam_a (tr(Lam M) + 2 lam_a M_aa)) - 1|`` over the directions
    and the two probes M = I and M = Lam^-1 (isotropic fluctuations and fluctuations equal in every
    direction's own units): the Gaussian value of the weight-dependent noise that §3l uses, against
    the data's.  O(P N).
    """
    Z2 = Z * Z
    worst = 0.0
    for weight in (np.ones_like(lam), 1.0 / lam):
        data = Z2.T @ (Z2 @ weight) / Z.shape[0]
        gaussian = lam * (lam @ weight + 2 * lam * weight)
        worst = max(worst, float(np.max(np.abs(data / gaussian - 1))))
    return worst


def noise_strength(Z: np.ndarray, r: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """``nu_a = sum_mu z_mu,a^2 r_mu^2 / (P lam_a <r^2>)``: the data's noise at w* along direction a over its Gaussian value.

    Per direction it scatters about 1 with relative s.d. ~sqrt(8 / P) (docs/theory.md §3l);
    all-zero residuals (interpolation) give ones.
    """
    sigma2 = float(np.mean(r ** 2))
    if sigma2 == 0:
        return np.ones_like(lam)
    return (Z * Z).T @ (r ** 2) / (Z.shape[0] * lam * sigma2)


def rescaled(moments: EpochMoments, V: np.ndarray, nu: np.ndarray) -> EpochMoments:
    """The fluctuations of ``moments`` scaled by ``nu`` along the range eigenvectors ``V`` (N, n) (docs/theory.md §3m).

    Variances per direction times ``nu``; covariance matrices by the congruence ``T C T`` with
    ``T = I + V (diag(sqrt nu) - I) V^T`` (positive semi-definite stays so); the mean is kept.
    """
    n = nu.size
    T = np.eye(V.shape[0]) + (V * (np.sqrt(nu) - 1)) @ V.T

    def scaled(variances: np.ndarray) -> np.ndarray:
        out = np.array(variances, float)
        out[..., out.shape[-1] - n:] *= nu
        return out

    return dataclasses.replace(
        moments, covariance=T @ moments.covariance @ T, velocity_covariance=T @ moments.velocity_covariance @ T,
        covariance_start=T @ moments.covariance_start @ T, var_theta=scaled(moments.var_theta),
        var_v=scaled(moments.var_v), var_theta_start=scaled(moments.var_theta_start),
        position_var_theta=scaled(moments.position_var_theta))


def epoch_method_moments(X, y, lr: float, batch_size: int, momentum: float = 0.0,
                         compact_seconds: float | None = None, max_seconds: float | None = None,
                         gaussian_tolerance: float | None = None, rtol: float = 1e-6) -> EpochMethod:
    """Stationary moments of epoch SGD on linear regression by method ``epoch`` (docs/theory.md §3m).

    §3k where its estimated time is at most ``compact_seconds`` (None: :data:`COMPACT_SECONDS`) and
    ``max_seconds``, else §3l rescaled by
    :func:`noise_strength` if :func:`moment_deviation` is at most ``gaussian_tolerance`` (None:
    :data:`GAUSSIAN_TOLERANCE`), else §3k; then §3h's start correction where ``batch_size`` divides P.  ``max_seconds``: refuse
    (:class:`~sgdnoise.errors.UsageError` naming ``X``) instead of starting a §3k solve estimated
    to take longer.  The eigenbasis is computed once for all of it.
    """
    pb = epoch_problem(X, y, lr, batch_size, momentum)
    (P, N), S = pb.X.shape, int(batch_size)
    Z, r, lam, V = pb.Z, pb.r, pb.lam, pb.V
    seconds = compact_cost(P, N, S)[0]
    limit = min(COMPACT_SECONDS if compact_seconds is None else compact_seconds,
                np.inf if max_seconds is None else max_seconds)
    tolerance = GAUSSIAN_TOLERANCE if gaussian_tolerance is None else gaussian_tolerance
    deviation = moment_deviation(Z, lam) if seconds > limit and lam.size else float("nan")
    gaussian = deviation <= tolerance
    if gaussian:
        moments = rescaled(solve_closure(GaussianCompactEpoch.of(pb, lr, momentum, S), pb, lr, momentum, rtol), V,
                           noise_strength(Z, r, lam))
    else:
        if max_seconds is not None and seconds > max_seconds:
            raise UsageError(f"the compact epoch closure would take about {seconds:.0f} s here (limit "
                             f"{max_seconds:.0f} s, ~11 P N^2 multiply-adds per step), and its Gaussian-moment "
                             f"form does not apply (fourth moments {deviation:.1%} from Gaussian, limit "
                             f"{tolerance:.0%})", name="X")
        moments = solve_closure(CompactEpoch(Z, r, lam, float(lr), float(momentum), S), pb, lr, momentum, rtol)
    corrected = start_correction_applies(P, S)
    if corrected:
        moments = start_corrected_moments(Z, r, lam, V, moments, float(lr), S, float(momentum))
    return EpochMethod(moments, "gaussian" if gaussian else "empirical", corrected, deviation)
