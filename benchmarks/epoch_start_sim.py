"""Method ``epoch`` with and without the epoch-start correction (docs/theory.md §3h) against simulation.

The demo cell and the small case of the epoch accuracy map (sgdnoise.experiments.linear.epoch_map,
same problems, same simulation settings, seed 0).  Prints one JSON line per cell and method: the
trace error, the flattest and stiffest directions' errors, the largest and median |error| over
the equilibrated directions, and the fraction of directions within 10 %, each with the
simulation's standard error (2 s.e. columns ``*_2se``).  The simulations are cached in
``--cache`` (npz) so that the theory can be rerun alone.  A few minutes on two idle cores.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from sgdnoise.dynamics.simulator import simulate
from sgdnoise.experiments.linear.comparison import predict
from sgdnoise.experiments.linear.epoch_map import GRID, LABEL_NOISE, simulation_config
from sgdnoise.problems.linear import LinearRegression
from sgdnoise.theory.epoch_compact import compact_closure_moments
from sgdnoise.theory.epoch_start import start_corrected_var_theta_momentum
from sgdnoise.theory.regression_basis import _eigenbasis


def _measure(cell, cache: str):
    path = os.path.join(cache, f"sim_{cell.name}.npz")
    problem = LinearRegression.teacher_student(cell.N, cell.P, LABEL_NOISE, seed=0)
    if os.path.exists(path):
        d = np.load(path)
        return problem, d["value"], d["stderr"], d["equilibrated"]
    measured = simulate(problem, simulation_config(problem, cell, 0), progress=False)
    v = measured.var_theta
    np.savez(path, value=v.value, stderr=v.stderr, equilibrated=measured.equilibrated)
    return problem, v.value, v.stderr, measured.equilibrated


def _row(name, cell, theory, value, stderr, ok, seconds):
    rel = theory / value - 1
    se = theory * stderr / value ** 2
    a = np.abs(rel[ok])
    return {"cell": cell.name, "method": name, "seconds": round(seconds, 3),
            "trace_error": round(float(theory.sum() / value.sum() - 1), 4),
            "trace_2se": round(float(2 * theory.sum() * np.sqrt(np.sum(stderr ** 2)) / value.sum() ** 2), 4),
            "flattest": round(float(rel[0]), 4), "flattest_2se": round(float(2 * se[0]), 4),
            "stiffest": round(float(rel[-1]), 4), "stiffest_2se": round(float(2 * se[-1]), 4),
            "max_abs": round(float(a.max()), 4), "median_abs": round(float(np.median(a)), 4),
            "within_10pct": round(float(np.mean(a < 0.1)), 3), "directions": int(ok.sum())}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cache", default="/tmp")
    parser.add_argument("--cells", default="demo,small")
    args = parser.parse_args()
    for cell in [c for c in GRID if c.name in args.cells.split(",")]:
        problem, value, stderr, ok = _measure(cell, args.cache)
        X, y = problem.X, problem.Y[:, 0]
        t0 = time.perf_counter()
        closure = compact_closure_moments(X, y, cell.lr, cell.S, cell.beta)
        t1 = time.perf_counter()
        b = _eigenbasis(X, y.reshape(-1, 1))
        o = np.argsort(b.lam)
        Z, lam = b.Z[:, o], b.lam[o]
        r = (Z @ b.w[o])[:, 0] - y
        corrected = start_corrected_var_theta_momentum(closure.var_theta, closure.var_theta_start, Z, r, lam,
                                                       cell.lr, cell.S, cell.beta)
        t2 = time.perf_counter()
        propagated = start_corrected_var_theta_momentum(closure.var_theta, closure.var_theta_start, Z, r, lam,
                                                        cell.lr, cell.S, cell.beta, propagated=True)
        t3 = time.perf_counter()
        weights = start_corrected_var_theta_momentum(closure.var_theta, closure.var_theta_start, Z, r, lam,
                                                     cell.lr, cell.S, cell.beta, weight_dependent=True)
        t4 = time.perf_counter()
        fluct = start_corrected_var_theta_momentum(closure.var_theta, closure.var_theta_start, Z, r, lam,
                                                   cell.lr, cell.S, cell.beta, fluctuation_var=closure.var_theta)
        t5 = time.perf_counter()
        kr = predict(problem, simulation_config(problem, cell, 0), only=("kuehn-rosenow",))["methods"]
        excess = np.clip(closure.var_theta - kr["kuehn-rosenow"]["var_theta"], 0, None)
        base = (closure.var_theta, closure.var_theta_start, Z, r, lam, cell.lr, cell.S, cell.beta)
        rows = [("epoch+start(excess)", start_corrected_var_theta_momentum(*base, fluctuation_var=excess)),
                ("epoch+start(excess, slow only)",
                 start_corrected_var_theta_momentum(*base, fluctuation_var=excess, slow_only=True)),
                ("epoch+start(propagated, excess, slow only)",
                 start_corrected_var_theta_momentum(*base, propagated=True, fluctuation_var=excess, slow_only=True)),
                ("epoch+start(target, excess, all)",
                 start_corrected_var_theta_momentum(*base, target=True, fluctuation_var=excess)),
                ("epoch+start(target, excess, slow only) = start_correction",
                 start_corrected_var_theta_momentum(*base, target=True, fluctuation_var=excess, slow_only=True))]
        t6 = time.perf_counter()
        for name, theory, sec in (("epoch", closure.var_theta, t1 - t0),
                                  ("epoch+start", corrected, t2 - t1),
                                  ("epoch+start(propagated)", propagated, t3 - t2),
                                  ("epoch+start(weight-dependent)", weights, t4 - t3),
                                  ("epoch+start(all fluctuations)", fluct, t5 - t4),
                                  *[(n, v, (t6 - t5) / len(rows)) for n, v in rows]):
            print(json.dumps(_row(name, cell, theory, value, stderr, ok, sec)), flush=True)


if __name__ == "__main__":
    main()
