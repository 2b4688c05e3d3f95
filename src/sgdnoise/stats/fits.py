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


def _weighted_slopes(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Least-squares slopes of ``y`` on ``x`` over the last two axes with 0/1 weights ``w``."""
    n = w.sum(axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        xm = (w * x).sum(axis=(-2, -1)) / n
        ym = (w * y).sum(axis=(-2, -1)) / n
        xc = x - xm[..., None, None]
        return (w * xc * (y - ym[..., None, None])).sum(axis=(-2, -1)) / (w * xc * xc).sum(axis=(-2, -1))


def loglog_fit(x: np.ndarray, y: np.ndarray, use: np.ndarray | None = None, n_boot: int = 1000,
               seed: int = 0) -> dict[str, float | list[float] | int | None]:
    """Exponent ``a`` of ``y ~ x^a``: least squares of ``log y`` on ``log x``, with a bootstrap 95 % interval.

    ``x``, ``y`` are (R, m): m directions (ranked) of R independent replicas; ``use`` (R, m)
    selects the points fitted (e.g. drift modes and unbounded profiles excluded); points with a
    non-positive or non-finite ``x`` or ``y`` are left out too.  The bootstrap resamples the
    replicas and, independently, the direction ranks (both with replacement), so the interval
    covers the spread over runs and over directions; it is the 2.5 and 97.5 percentiles of
    ``n_boot`` refits.  Fewer than 3 usable points give ``None``.
    """
    x, y = np.atleast_2d(np.asarray(x, np.float64)), np.atleast_2d(np.asarray(y, np.float64))
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    if use is not None:
        ok &= np.asarray(use, bool)
    result: dict[str, float | list[float] | int | None] = {"exponent": None, "ci": None, "n": int(ok.sum())}
    if ok.sum() < 3:
        return result
    lx, ly = np.log(np.where(ok, x, 1.0)), np.log(np.where(ok, y, 1.0))
    w = ok.astype(float)
    slope = float(_weighted_slopes(lx, ly, w))
    rng = np.random.default_rng(seed)
    R, m = x.shape
    rows = rng.integers(0, R, size=(n_boot, R)) if R > 1 else np.zeros((n_boot, 1), int)
    cols = rng.integers(0, m, size=(n_boot, m))
    take = (rows[:, :, None], cols[:, None, :])
    boots = _weighted_slopes(lx[take], ly[take], w[take])
    boots = boots[np.isfinite(boots)]
    result.update(exponent=slope, ci=[float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))]
                  if boots.size else None)
    return result
