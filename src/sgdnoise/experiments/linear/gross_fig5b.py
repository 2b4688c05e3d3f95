"""Gross et al. Fig. 5b: eigenvalues of the stationary weight covariance M against theory.

Caption parameters: N = 100, lr = 0.1, S = 10, P/N = 1.05 ... 10, eigenvalues normalised by
lr sigma_eps^2 / (2S); sigma_eps^2 = 0.25 from Fig. 5a.  Lines: SGD (measured), the exact
result (eq_wts_cov), the straight line of the conventional prediction (eq_wts_cov_conv) and
the detailed-balance eigenvalues (eq_wts_cov_detbal).  The equations are not available to
us; we implement (docs/theory.md §3a-§3c, :mod:`sgdnoise.theory.detailed_balance`):

- exact: the finite-lr second moments of §3c (and the continuum Lyapunov solution of §3a);
- conventional: M = (lr/2) H^-1 C with C = sigma_eps^2 H / S (the Hessian approximation),
  i.e. M = lr sigma_eps^2 / (2S) I: the line at 1;
- detailed balance: the eigenvalues of (lr/2) H^-1 C (C the noise at w*), computed from the
  similar symmetric (lr/2) H^-1/2 C H^-1/2, so real and positive.  (The symmetrised
  (lr/4)(H^-1 C + C H^-1) of ``stationary_covariance(method="detailed-balance")``, plotted
  before, has negative eigenvalues near P = N; its smallest eigenvalue is kept in the summary.)

Measurement: ``REPLICAS`` SGD runs (with replacement) per P/N started at w* + N(0, M_exact)
(stationary second moments, :func:`stationary_start`, so no burn-in is needed), sample
covariance of every 10th state.  Finite-sample bias: the sample covariance of a finite
correlated run spreads the spectrum (largest up, smallest down).  To size it we apply the
same estimator to ``SURROGATES`` Gaussian surrogate runs with the theoretical covariance
and the same time correlations: in the eigenbasis, x_{j+1} = A x_j + xi_j with A = (1 - lr
Lambda)^10 and cov xi = M - A M A, started from N(0, M), M the exact covariance; SGD has
the same autocovariance D^h M (E[delta_{t+h} | delta_t] = D^h delta_t), only its higher
moments differ.  The band of their ordered eigenvalues is what the estimator alone makes
of the theory.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy.signal import lfilter

from sgdnoise._spec import rng
from sgdnoise.dynamics.simulator import SimulationConfig, relaxation_steps, simulate
from sgdnoise.experiments.linear.gross import N, S, FigureResult, realisation, stationary_start, sweep_status
from sgdnoise.interrupts import stop_requested
from sgdnoise.progress import progress_bar
from sgdnoise.stats.streaming import CovarianceAccumulator
from sgdnoise.theory import noise_covariance, stationary_covariance
from sgdnoise.theory.detailed_balance import detailed_balance_spectrum

LR, LABEL_NOISE = 0.1, 0.25
RATIOS = (1.05, 1.1, 1.2, 1.5, 2.0, 4.0, 10.0)
NORM = LR * LABEL_NOISE / (2 * S)
REPLICAS, EVERY, SURROGATES = 8, 10, 3
MIN_STEPS, MAX_STEPS, STEPS_AT_1_05 = 100_000, 1_000_000, 2_000_000


def surrogate_spectrum(M_eigen: np.ndarray, lam: np.ndarray, steps: int, replicas: int,
                       generator: np.random.Generator) -> np.ndarray:
    """Eigenvalues (descending) of the sample covariance of a Gaussian surrogate run (see the module docstring).

    ``M_eigen`` is the covariance in the eigenbasis of H (eigenvalues ``lam``); one sample every
    ``EVERY`` steps for ``steps`` steps on each of ``replicas`` runs, pooled as the simulator does.
    """
    A = (1 - LR * lam) ** EVERY
    noise = M_eigen - A[:, None] * M_eigen * A[None, :]
    w, U = np.linalg.eigh((noise + noise.T) / 2)
    root = U * np.sqrt(np.clip(w, 0, None))
    start_w, start_U = np.linalg.eigh(M_eigen)
    start_root = start_U * np.sqrt(np.clip(start_w, 0, None))
    n = -(-steps // EVERY)
    acc = CovarianceAccumulator(lam.size)
    for _ in range(replicas):
        shocks = generator.normal(size=(n, lam.size)) @ root.T
        shocks[0] = start_root @ generator.normal(size=lam.size)
        path = np.empty_like(shocks)
        for i in range(lam.size):
            path[:, i] = lfilter([1.0], [1.0, -A[i]], shocks[:, i])
        acc.add(path)
    return np.linalg.eigvalsh(acc.covariance())[::-1]


def run_steps(ratio: float, slowest: float) -> int:
    """Steps per replica: 30 slowest relaxation times within [MIN_STEPS, MAX_STEPS]; longer at P/N = 1.05."""
    if ratio <= 1.05:
        return STEPS_AT_1_05
    return int(np.clip(30 * slowest, MIN_STEPS, MAX_STEPS))


def _theory(problem) -> dict[str, Any]:
    exact = stationary_covariance(problem.X, problem.Y, LR, S, method="exact")
    cont = stationary_covariance(problem.X, problem.Y, LR, S, method="continuum")
    sym = stationary_covariance(problem.X, problem.Y, LR, S, method="detailed-balance")
    C = noise_covariance(problem.X, problem.Y, S)
    return {"M_exact": exact,
            "exact": np.linalg.eigvalsh(exact)[::-1] / NORM, "continuum": np.linalg.eigvalsh(cont)[::-1] / NORM,
            "detailed_balance": detailed_balance_spectrum(problem.hessian, C, LR) / NORM,
            "symmetrised_min": float(np.linalg.eigvalsh(sym)[0] / NORM)}


def _point(ratio: float, seed: int) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    problem = realisation(N, int(round(ratio * N)), LABEL_NOISE, seed, "gross-fig5b", f"{ratio:g}")
    lam = problem.hessian_eigenvalues
    relax = relaxation_steps(lam, LR, 0.0)
    steps = run_steps(ratio, float(relax.max()))
    starts, _ = stationary_start(problem, LR, S, REPLICAS, rng(seed, "gross-fig5b", "start", f"{ratio:g}"))
    config = SimulationConfig(lr=LR, batch_size=S, steps=steps, burn_in=0, replicas=REPLICAS,
                              full_covariance=True, covariance_every=EVERY,
                              seed=int(rng(seed, "gross-fig5b", "seed", f"{ratio:g}").integers(2**31)))
    result = simulate(problem, config, start=starts, progress=False)
    measured = np.linalg.eigvalsh(result.covariance)[::-1] / NORM
    theory = _theory(problem)
    V = problem.feature_eigenvectors
    M_eigen = V.T @ theory.pop("M_exact") @ V
    gen = rng(seed, "gross-fig5b", "surrogate", f"{ratio:g}")
    surrogates = np.array([surrogate_spectrum(M_eigen, lam, steps, REPLICAS, gen) for _ in range(SURROGATES)]) / NORM
    low, high = surrogates.min(axis=0), surrogates.max(axis=0)
    short = relax * 50 > steps
    point = {
        "P_over_N": ratio, "steps": steps, "replicas": REPLICAS, "slowest_relaxation_steps": float(relax.max()),
        "symmetrised_detailed_balance_min": theory.pop("symmetrised_min"),
        "detailed_balance_min": float(theory["detailed_balance"].min()),
        "edges": {"measured": [float(measured[0]), float(measured[-1])],
                  "exact": [float(theory["exact"][0]), float(theory["exact"][-1])],
                  "estimator_on_exact_band_largest": [float(low[0]), float(high[0])],
                  "estimator_on_exact_band_smallest": [float(low[-1]), float(high[-1])],
                  "estimator_bias_largest": float(surrogates[:, 0].mean() / theory["exact"][0] - 1),
                  "estimator_bias_smallest": float(surrogates[:, -1].mean() / theory["exact"][-1] - 1),
                  "measured_over_exact": [float(measured[0] / theory["exact"][0]),
                                          float(measured[-1] / theory["exact"][-1])]},
        "trace_measured_over_exact": float(measured.sum() / theory["exact"].sum()),
        "trace_relative_stderr": float(result.var_theta_trace.stderr / result.var_theta_trace.value),
        "directions_measured_under_50_relaxation_times": int(short.sum()),
        "relaxation_times_covered_min": float(steps / relax.max()),
    }
    arrays = {"measured": measured, **theory, "estimator_band_low": low, "estimator_band_high": high,
              "estimator_mean": surrogates.mean(axis=0)}
    return point, arrays


def fig5b(seed: int, progress: bool = True) -> FigureResult:
    """Gross et al. Fig. 5b: measured weight-covariance spectra, theory, and the estimator's own spread."""
    points, arrays = [], {}
    for ratio in progress_bar(progress, iterable=RATIOS, desc="gross-fig5b"):
        if stop_requested():
            break
        point, curves = _point(ratio, seed)
        points.append(point)
        arrays.update({f"P/N={ratio:g}_{key}": value for key, value in curves.items()})
    config = {"N": N, "S": S, "lr": LR, "label_noise": LABEL_NOISE, "P_over_N": RATIOS, "seed": seed,
              "sampling": "with-replacement", "normalisation": "lr sigma_eps^2 / (2 S)",
              "start": "w* + N(0, M_exact) per replica (docs/theory.md §3c), no burn-in",
              "covariance_every": EVERY, "surrogates": SURROGATES,
              "conventional": "lr sigma_eps^2 / (2S) I (Hessian approximation, eq_wts_cov_conv): 1",
              "detailed_balance": "eigenvalues of (lr/2) H^-1 C = those of (lr/2) H^-1/2 C H^-1/2"}
    return FigureResult(config, {"points": points}, arrays, sweep_status(len(points), len(RATIOS), "values of P/N"))
