"""Drift removal of the recorded window (measure/window.py, stats/trend.py).

A synthetic series, recorded through ProjectedFluctuations exactly as the late phase of ``net``
records a network: direction 0 stationary AR(1) noise, direction 1 the same noise plus a steady
drift.  With the drift removed Var theta agrees with the stationary variance at every window
length (within 4 batch-means standard errors); without removal the drifting direction grows like
the square of the window.  The streamed numbers equal those of the stored series.
"""
from __future__ import annotations

import numpy as np
import torch

from sgdnoise.measure.recorder import ProjectedFluctuations
from sgdnoise.stats.trend import TrendMoments

RHO, SIGMA, DRIFT = 0.9, 1.0, 2e-3
STATIONARY_VAR = SIGMA**2 / (1 - RHO**2)


def series(steps: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.zeros((steps, 2))
    noise = rng.normal(0.0, SIGMA, size=steps)
    for t in range(1, steps):
        x[t] = RHO * x[t - 1] + noise[t]
    x[:, 1] += DRIFT * np.arange(steps)
    return x


def record(x: np.ndarray) -> ProjectedFluctuations:
    recorder = ProjectedFluctuations(torch.eye(2, dtype=torch.float64), torch.zeros(2, dtype=torch.float64),
                                     len(x), n_blocks=20, resolution=8)
    for row in torch.as_tensor(x):
        recorder.update(row)
    return recorder


def test_detrended_variance_does_not_depend_on_the_window_length():
    raw = []
    for steps in (2000, 8000):
        found = record(series(steps, seed=steps)).detrended()
        for i in range(2):
            z = (found.var_theta.value[i] - STATIONARY_VAR) / found.var_theta.stderr[i]
            assert abs(z) < 4, (steps, i, found.var_theta.value[i], found.var_theta.stderr[i])
        # integrated autocorrelation time (1 + rho) / (2 (1 - rho)) = 9.5 steps, blocks at least that long
        assert np.all(np.abs(found.autocorrelation_time / 9.5 - 1) < 0.6)
        assert (found.block_length >= found.autocorrelation_time).all()
        raw.append(found.var_theta_raw.value[1])
        # the drift: found, significant, right size; none where there is none
        assert abs(found.trend.value[1] - DRIFT) < 4 * found.trend.stderr[1]
        assert found.trend.value[1] / found.trend.stderr[1] > 5
        assert abs(found.trend.value[0] / found.trend.stderr[0]) < 4
    # without removal: stationary variance + (b T)^2 / 12, i.e. it grows with the window
    for steps, value in zip((2000, 8000), raw):
        expected = STATIONARY_VAR + (DRIFT * steps) ** 2 / 12
        assert abs(value / expected - 1) < 0.25
    assert raw[1] > 3 * raw[0]


def test_streamed_sums_equal_the_stored_series():
    x = series(1600, seed=1)
    found = record(x).detrended()
    t = np.arange(len(x))
    for i in range(2):
        slope, intercept = np.polyfit(t, x[:, i], 1)
        residual = x[:, i] - intercept - slope * t
        assert np.isclose(found.var_theta.value[i], np.mean(residual**2), rtol=1e-9)
        assert np.isclose(found.var_theta_raw.value[i], x[:, i].var(), rtol=1e-9)
        u = np.diff(np.concatenate([[0.0], x[:, i]]))
        assert np.isclose(found.var_v.value[i], u.var(), rtol=1e-9)


def test_trend_of_segment_means_is_the_least_squares_slope():
    moments = TrendMoments(10, (1,))
    rng = np.random.default_rng(3)
    x = 0.5 + 0.01 * np.arange(100) + rng.normal(0, 0.1, 100)
    for t, value in enumerate(x):
        moments.add(t // 10, float(t), np.array([value]))
    means, times = x.reshape(10, 10).mean(1), np.arange(100).reshape(10, 10).mean(1)
    fit, cov = np.polyfit(times, means, 1, cov="unscaled")
    residual = means - np.polyval(fit, times)
    se = np.sqrt(cov[0, 0] * residual @ residual / 8)
    found = moments.trend()
    assert np.isclose(found.value[0], fit[0]) and np.isclose(found.stderr[0], se)
    assert np.isclose(moments.line()[1][0], np.polyfit(np.arange(100), x, 1)[0])
