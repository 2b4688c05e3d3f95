"""The compact closure with Gaussian data moments (docs/theory.md §3l): speed and accuracy.

Default: times ``theory.epoch_gaussian.gaussian_closure_moments`` at N = 500, P = 1000, S = 10,
lr = 0.1, momentum 0 and 0.9 on ``benchmarks/theory.py``'s data (x ~ N(0, I/N), y = u.x + eps,
sigma_eps^2 = 0.25), between rounds of ``scipy.linalg.solve_continuous_lyapunov`` on the same N
(the best round is the reference), and one step of the epoch map (best of 20).  Prints one JSON
line: ``gauss_beta0_s``, ``gauss_beta09_s``, the epoch passes, ``step_ms``, ``lyapunov_s``,
``basis_s`` (the data's SVD, part of every solve; slow under load with two BLAS threads) and the
ratios (issue 10 target: <= 50).

``--accuracy``: against ``compact_closure_moments`` (§3k, the same closure with the data's own
sums; no start correction in either) on Gaussian teacher-student problems; one JSON line each
with the relative difference of the Var theta trace, the largest per-direction relative
difference (signed), both solve times, and the same after dividing the compact Var theta of each
direction by that direction's noise strength ``sum_mu z_a^2 r^2 / (P lam_a <r^2>)`` (the data's own
value of what §3l replaces by 1; docs/theory.md §3l).  ``--accuracy --large`` adds N = 500, P = 1000 (the
compact solve takes minutes).
"""
from __future__ import annotations

import json
import sys

import numpy as np
from scipy.linalg import solve_continuous_lyapunov

from sgdnoise.problems.linear import LinearRegression
from sgdnoise.theory import noise_covariance
from sgdnoise.theory.epoch_closure import _residuals, _sorted_basis
from sgdnoise.theory.epoch_compact import compact_closure_moments
from sgdnoise.theory.epoch_gaussian import GaussianCompactEpoch, gaussian_closure_moments
from theory import LR, N, NOISE_VAR, P, S, seconds

#: (N, P, S, lr, momentum, seed) of ``--accuracy``: the demo problem, then the isotropic cases.
PROBLEMS = [(100, 200, 10, 1.0, 0.9, 0), (200, 400, 10, 0.1, 0.0, 0), (200, 400, 10, 0.1, 0.9, 0)]
LARGE = [(500, 1000, 10, 0.1, 0.0, 0)]


def counted_solve(X: np.ndarray, y: np.ndarray, momentum: float) -> tuple[float, int]:
    """Seconds of one Gaussian solve and the epoch passes it made."""
    calls = []
    epoch = GaussianCompactEpoch.epoch

    def counted(self, *args, **kwargs):
        calls.append(1)
        return epoch(self, *args, **kwargs)

    GaussianCompactEpoch.epoch = counted
    try:
        return seconds(lambda: gaussian_closure_moments(X, y, LR, S, momentum)), len(calls)
    finally:
        GaussianCompactEpoch.epoch = epoch


def step_ms(X: np.ndarray, momentum: float) -> float:
    """Milliseconds of one step of the epoch map at the middle of an epoch (best of 20)."""
    lam = np.linalg.eigvalsh(X.T @ X / X.shape[0])
    ep = GaussianCompactEpoch(lam, NOISE_VAR, 3 * NOISE_VAR ** 2, LR, momentum, S, X.shape[0])
    rng = np.random.default_rng(1)
    m = rng.normal(size=(ep.D, ep.D)) * 1e-3
    m = m @ m.T
    m[-1, -1] = 1.0
    W = m * 1e-2
    return 1e3 * min(seconds(lambda: ep.step(ep.M // 2, m, W)) for _ in range(20))


def timing() -> dict:
    rng = np.random.default_rng(0)
    X = rng.normal(scale=np.sqrt(1 / N), size=(P, N))
    y = X @ rng.normal(size=N) + np.sqrt(NOISE_VAR) * rng.normal(size=P)
    H, C = X.T @ X / P, noise_covariance(X, y, S)

    def lyapunov() -> float:
        return seconds(lambda: solve_continuous_lyapunov(H, LR * C))

    rounds = [lyapunov() for _ in range(3)]
    s0, n0 = counted_solve(X, y, 0.0)
    rounds += [lyapunov() for _ in range(3)]
    s9, n9 = counted_solve(X, y, 0.9)
    rounds += [lyapunov() for _ in range(3)]
    best = min(rounds)
    basis_s = seconds(lambda: _sorted_basis(X, y, LR, 0.0))  # the SVD every solve starts with (shared with §3k)
    return {"benchmark": "epoch_gaussian", "N": N, "P": P, "S": S, "lr": LR, "lyapunov_s": round(best, 4),
            "basis_s": round(basis_s, 3),
            "gauss_beta0_s": round(s0, 2), "passes_beta0": n0, "gauss_beta09_s": round(s9, 2), "passes_beta09": n9,
            "step_ms_beta0": round(step_ms(X, 0.0), 2), "step_ms_beta09": round(step_ms(X, 0.9), 2),
            "ratio_beta0": round(s0 / best, 1), "ratio_beta09": round(s9 / best, 1)}


def accuracy(problem: tuple) -> dict:
    n, p, s, lr, beta, seed = problem
    pr = LinearRegression.teacher_student(n, p, 0.25, seed=seed)
    X, y = pr.X, pr.Y[:, 0]
    out = {}
    t_c = seconds(lambda: out.setdefault("c", compact_closure_moments(X, y, lr, s, beta)))
    t_g = seconds(lambda: out.setdefault("g", gaussian_closure_moments(X, y, lr, s, beta)))
    vc, vg = out["c"].var_theta, out["g"].var_theta
    rel = vg / vc - 1
    worst = int(np.argmax(np.abs(rel)))
    basis, order = _sorted_basis(X, y, lr, beta)
    Z, r = basis.Z[:, order], _residuals(basis, order, y)
    strength = (Z * Z).T @ (r * r) / (p * basis.lam[order] * np.mean(r * r))  # per-direction noise / Gaussian value
    corrected = vg / (vc / strength) - 1
    return {"N": n, "P": p, "S": s, "lr": lr, "momentum": beta, "seed": seed,
            "trace_rel_diff": round(float(vg.sum() / vc.sum() - 1), 5),
            "max_dir_rel_diff": round(float(rel[worst]), 5), "max_dir_index": worst,
            "median_abs_dir_rel_diff": round(float(np.median(np.abs(rel))), 5),
            "corr_rel_diff_noise_strength": round(float(np.corrcoef(rel, strength)[0, 1]), 3),
            "noise_strength_rms": round(float(np.sqrt(np.mean((strength - 1) ** 2))), 4),
            "corrected_rms_dir_rel_diff": round(float(np.sqrt(np.mean(corrected ** 2))), 5),
            "corrected_max_dir_rel_diff": round(float(np.abs(corrected).max()), 5),
            "compact_s": round(t_c, 2), "gauss_s": round(t_g, 2)}


if __name__ == "__main__":
    if "--accuracy" in sys.argv:
        for problem in PROBLEMS + (LARGE if "--large" in sys.argv else []):
            print(json.dumps(accuracy(problem)), flush=True)
    else:
        print(json.dumps(timing()))
