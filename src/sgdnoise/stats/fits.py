"""Fits with standard errors from independent replicas: slopes, rates, power laws, zeros of lines.

NumPy and SciPy only.  Arrays of records have shape (n_times, R): ``R``
independent replicas, records of one replica possibly correlated, so every
standard error comes from the spread over replicas.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.optimize import brentq

from sgdnoise.stats.streaming import segment_mean


def replica_slopes(times: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Least-squares slope of ``values`` (n_times, R) against ``times``, one per replica."""
    tc = times - times.mean()
    return tc @ (values - values.mean(axis=0)) / (tc @ tc)


def log_growth_rate(values: np.ndarray, times: np.ndarray) -> dict[str, float]:
    """Rate of ``log|x|`` between the first and last record, mean and SE over replicas.

    ``rate_r = log|x_r(t_n) / x_r(t_0)| / (t_n - t_0)`` for records ``values`` (n_times, R).
    """
    rate = np.log(np.abs(values[-1] / values[0])) / (times[-1] - times[0])
    est = segment_mean(rate)
    return {"rate": float(est.value), "rate_se": float(est.stderr)}


def line_zero(x: np.ndarray, y: np.ndarray, se: np.ndarray) -> tuple[float, float]:
    """Zero ``x_0 = -a/b`` of the weighted least-squares line ``y = a + b x``, and its SE.

    Weights ``1/se^2``; the standard error is the delta-method one,
    ``grad(x_0)^T Cov(a, b) grad(x_0)`` with ``grad = (-1/b, a/b^2)``.
    """
    X = np.column_stack([np.ones_like(x), x])
    W = 1.0 / se**2
    cov = np.linalg.inv(X.T @ (W[:, None] * X))
    a, b = cov @ X.T @ (W * y)
    grad = np.array([-1.0 / b, a / b**2])
    return float(-a / b), float(math.sqrt(grad @ cov @ grad))


def _truncated_mean_log(e: float, a: float, b: float) -> float:
    """``E[log s]`` for ``p(s) ∝ s^e`` on ``[e^a, e^b]`` (``∝ exp((e+1) x)`` in ``x = log s``)."""
    c = e + 1.0
    if abs(c * (b - a)) < 1e-8:
        return 0.5 * (a + b)
    return (b * math.exp(c * (b - a)) - a) / math.expm1(c * (b - a)) - 1.0 / c


def truncated_power_law_mle(mean_log: float, low: float, high: float) -> tuple[float, float]:
    """Maximum-likelihood exponent of ``p(s) ∝ s^e`` on ``[low, high]`` from ``mean(log s)``.

    Returns ``e`` and ``Var_e[log s]``, the Fisher information per sample (``d E_e[log s] / de``
    for this exponential family), so that ``SE(e) = SE(mean log s) / Var_e[log s]``.
    """
    a, b = math.log(low), math.log(high)
    e = brentq(lambda x: _truncated_mean_log(x, a, b) - mean_log, -60.0, 60.0)
    step = 1e-4
    info = (_truncated_mean_log(e + step, a, b) - _truncated_mean_log(e - step, a, b)) / (2 * step)
    return e, info


def tail_fit(samples: np.ndarray, low: float, high: float) -> dict[str, float | None]:
    """Exponent of ``|v|^e`` on ``[low, high]`` from samples (n_times, R), SE over replicas.

    The maximum-likelihood fit of the truncated power law (:func:`truncated_power_law_mle`)
    to the samples inside the window.  Samples of one replica are correlated in time; the
    replicas are independent, so the standard error of ``mean log|v|`` is that of a ratio
    estimator over replicas.  Fewer than 10 samples in the window give ``None``.
    """
    s = np.abs(samples)
    inside = (s >= low) & (s <= high)
    logs = np.where(inside, np.log(np.where(inside, s, 1.0)), 0.0)
    S_r, N_r = logs.sum(axis=0), inside.sum(axis=0)
    n = int(N_r.sum())
    if n < 10:
        return {"n": n, "exponent": None, "exponent_se": None}
    mean_log = S_r.sum() / n
    R = s.shape[1]
    se_mean_log = math.sqrt(R / (R - 1) * np.sum((S_r - mean_log * N_r) ** 2)) / n
    e, info = truncated_power_law_mle(mean_log, low, high)
    return {"n": n, "exponent": e, "exponent_se": se_mean_log / info}
