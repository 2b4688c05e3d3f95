"""Reproductions of Kühn & Rosenow (arXiv 2306.05300) on quadratic problems: epoch vs with replacement.

``kuehn-rosenow-quadratic``
    additive per-example noise, where the closed form (docs/theory.md §3d) is exact;
``kuehn-rosenow-linear``
    teacher-student linear regression, where the noise depends on the weights.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from sgdnoise.dynamics.simulator import SimulationConfig
from sgdnoise.experiments.linear.demo import SamplerComparison
from sgdnoise.experiments.linear.run import run_problem
from sgdnoise.interrupts import stop_requested
from sgdnoise.problems.linear import AdditiveNoiseQuadratic, LinearRegression, QuadraticProblem

SAMPLERS = ("epoch", "with-replacement")


def compare_samplers(problem: QuadraticProblem, base: dict[str, Any], seed: int,
                     progress: bool = True) -> SamplerComparison:
    """Run ``SAMPLERS`` on ``problem`` with the simulator settings ``base``."""
    runs = {}
    for sampling in SAMPLERS:
        if stop_requested() and runs:
            break
        runs[sampling] = run_problem(problem, SimulationConfig(**base, sampling=sampling, seed=seed), progress)
    return SamplerComparison(runs, {**base, "seed": seed, "samplings": list(SAMPLERS)})


def var_theta_ratio(comparison: SamplerComparison) -> dict[str, float | None]:
    """Mean of Var theta (epoch) / Var theta (with replacement) below and above lambda_cross."""
    if set(SAMPLERS) - set(comparison.runs):  # stopped before both samplers ran
        return {"below_lambda_cross_mean": None, "above_lambda_cross_mean": None}
    epoch, wr = comparison.runs["epoch"].measured, comparison.runs["with-replacement"].measured
    below = epoch.hessian_eigenvalues < comparison.markers["lambda_cross"]
    ratio = epoch.var_theta.value / wr.var_theta.value
    return {"below_lambda_cross_mean": float(ratio[below].mean()) if below.any() else None,
            "above_lambda_cross_mean": float(ratio[~below].mean()) if (~below).any() else None}


def quadratic(seed: int, progress: bool = True) -> SamplerComparison:
    """Closed form vs simulation where it is exact: additive per-example noise (d = 40, P = 1000)."""
    lam = np.logspace(-4, 0, 40)
    problem = AdditiveNoiseQuadratic.gaussian(lam, 1000, offset_variance=0.1 / lam, seed=seed)
    base = dict(lr=0.5, batch_size=10, momentum=0.9, steps=200_000, burn_in=20_000, replicas=16, max_lag=40)
    return compare_samplers(problem, base, seed, progress)


def linear(seed: int, progress: bool = True) -> SamplerComparison:
    """The same comparison on teacher-student linear regression (N = 100, P = 200; weight-dependent noise)."""
    problem = LinearRegression.teacher_student(100, 200, 0.25, seed=seed)
    base = dict(lr=1.0, batch_size=10, momentum=0.9, steps=200_000, burn_in=10_000, replicas=16,
                max_lag=40, full_covariance=True, covariance_every=10)
    return compare_samplers(problem, base, seed, progress)
