"""Method ``epoch`` with the epoch-start correction of docs/theory.md §3h against the exact reference (§3f).

The problems of benchmarks/epoch_exact_grid.py (teacher-student, P = 12, seed 1).  One JSON line
per case: the relative error of the time-averaged Var theta of the compact closure (method
``epoch``, §3k) and of the closure with its epoch-start variance replaced by §3h's
(``start_corrected_var_theta_momentum``; ``undamped``: pair weights 1 - beta^lag,
``propagated``: the full-batch propagator between the two examples of a pair), in the flattest
and the stiffest direction and the largest over the directions; the epoch-start error of the
two corrections; and ``excess_slow_only``: undamped, plus the weight-dependent noise of the moving
directions (variance: closure minus Kuehn-Rosenow), only where eta lam M / (1 - beta) < 1
(``_target``: the kicks made within the epoch followed to its end by the full-batch map).  About a minute on one idle core.
"""
from __future__ import annotations

import json

import numpy as np

from epoch_exact_grid import CASES
from sgdnoise.dynamics.simulator import SimulationConfig
from sgdnoise.experiments.linear.comparison import predict
from sgdnoise.problems.linear import LinearRegression
from sgdnoise.theory.epoch_compact import compact_closure_moments
from sgdnoise.theory.epoch_exact import epoch_exact_moments
from sgdnoise.theory.epoch_start import start_corrected_var_theta_momentum, start_covariance_momentum
from sgdnoise.theory.regression_basis import _eigenbasis


def _errors(theory: np.ndarray, exact: np.ndarray) -> list[float]:
    rel = theory / exact - 1
    return [round(float(rel[0]), 4), round(float(rel[-1]), 4), round(float(rel[np.argmax(np.abs(rel))]), 4)]


def main() -> None:
    for N, P, S, beta, factors in CASES:
        problem = LinearRegression.teacher_student(N, P, 0.25, seed=1)
        X, y = problem.X, problem.Y[:, 0]
        b = _eigenbasis(X, y.reshape(-1, 1))
        o = np.argsort(b.lam)
        Z, lam = b.Z[:, o], b.lam[o]
        r = (Z @ b.w[o])[:, 0] - y
        for f in factors:
            lr = f * (1 - beta) / lam.max()
            exact = epoch_exact_moments(X, y, lr, S, beta)
            closure = compact_closure_moments(X, y, lr, S, beta, rtol=1e-9)
            row = {"N": N, "P": P, "S": S, "beta": beta, "lr_lam_max_over_1_minus_beta": f,
                   "closure_flat_stiff_max": _errors(closure.var_theta, exact.var_theta)}
            for name, propagated in (("undamped", False), ("propagated", True)):
                res = start_covariance_momentum(Z, r, lam, lr, S, beta, propagated)
                corrected = closure.var_theta + (res["var_theta_start"] - closure.var_theta_start) * res["carry"]
                row[f"{name}_flat_stiff_max"] = _errors(corrected, exact.var_theta)
                row[f"{name}_start_flat_stiff_max"] = _errors(res["var_theta_start"], exact.var_theta_start)
            config = SimulationConfig(lr=lr, batch_size=S, momentum=beta, sampling="epoch")
            kr = predict(problem, config, only=("kuehn-rosenow",))["methods"]["kuehn-rosenow"]["var_theta"]
            excess = np.clip(closure.var_theta - kr, 0, None)
            for name, target in (("excess_slow_only", False), ("excess_slow_only_target", True)):
                row[f"{name}_flat_stiff_max"] = _errors(start_corrected_var_theta_momentum(
                    closure.var_theta, closure.var_theta_start, Z, r, lam, lr, S, beta, fluctuation_var=excess,
                    slow_only=True, target=target), exact.var_theta)
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
