"""Theory: what the formulas predict for gradient noise and weight fluctuations (docs/theory.md §2, §3).

NumPy in, NumPy out, float64.  Never imports :mod:`sgdnoise.dynamics`.

- :mod:`.noise`: gradient-noise covariance and its lag kernel (section 2);
- :mod:`.lyapunov`: stationary covariance near a quadratic minimum for given noise
  (continuum, discrete, detailed-balance, anti-correlated; 3a, 3b, 3e);
- :mod:`.exact`: linear regression, including the exact finite-lr moments with
  state-dependent noise (3c);
- :mod:`.kuehn_rosenow`: per-direction closed form of Kuehn & Rosenow (3d);
- :mod:`.prediction`: the Kuehn-Rosenow prediction from measured per-example noise
  (:func:`predict_fluctuations`, for :class:`sgdnoise.measure.recorder.FluctuationRecorder`);
- :mod:`.epoch_exact`: exact moments of epoch-based SGD on small linear regressions,
  by enumeration of the used sets (docs/theory.md §3f).
- :mod:`.epoch_closure`: the usage-correlation closure for epochs with weight-dependent noise (§3g);
- :mod:`.epoch_compact`: the same closure with one matrix for all examples,
  ``stationary_covariance(..., method="epoch")`` (§3k);
- :mod:`.epoch_kick`: the second-order epoch kick in closed form, exact at leading order in lr (§3h).
"""
from sgdnoise.theory.epoch_exact import EpochMoments, epoch_exact_moments
from sgdnoise.theory.exact import stationary_covariance
from sgdnoise.theory.kuehn_rosenow import KuehnRosenow, kuehn_rosenow, lambda_cross, tau_sgd
from sgdnoise.theory.lyapunov import quadratic_stationary_covariance
from sgdnoise.theory.noise import (
    SAMPLINGS,
    batch_noise_factor,
    least_squares_minimiser,
    linear_regression_gradients,
    noise_covariance,
    noise_kernel,
    per_example_covariance,
)
from sgdnoise.theory.prediction import predict_fluctuations

__all__ = [
    "SAMPLINGS",
    "EpochMoments",
    "KuehnRosenow",
    "batch_noise_factor",
    "epoch_exact_moments",
    "kuehn_rosenow",
    "lambda_cross",
    "least_squares_minimiser",
    "linear_regression_gradients",
    "noise_covariance",
    "noise_kernel",
    "per_example_covariance",
    "predict_fluctuations",
    "quadratic_stationary_covariance",
    "stationary_covariance",
    "tau_sgd",
]
