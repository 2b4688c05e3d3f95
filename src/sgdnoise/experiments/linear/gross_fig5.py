"""Gross et al. Fig. 5a and 5c: stationary weight fluctuations against N and against P.

(a) Caption: P = 200, lr = 0.1, sigma_eps^2 = 0.25, S = 10, a single SGD run per N;
    the temporal variance averaged over weights <<delta w_i^2>_t>_i = N^-1 tr M against
    the theory of eq_wts_cov_conv and eq_wts_cov, the variance across the weights at a
    fixed time <delta w_i(t)^2>_i, and the train and test losses.  We implement:
    eq_wts_cov_conv as lr sigma_eps^2 / (2S) (the Hessian approximation, isotropic),
    eq_wts_cov as the continuum Lyapunov solution (docs/theory.md §3a; our reading) and,
    beside it, the exact finite-lr solution (§3c).  "Across weights at a fixed time" is
    (1/N) sum_i (delta w_i - mean_i delta w_i)^2 of the last state of the run, delta = w - w*,
    whose expectation is N^-1 tr M - N^-2 1^T M 1.  Train loss L_min + <L - L*>; test loss
    (1/2)(sigma_x^2 |w - u|^2 + sigma_eps^2) averaged over the run (u the teacher), with
    its data average (sigma_eps^2 / 2)(P - 1)/(P - N - 1) (Wishart mean of (X^T X)^-1)
    plus the fluctuation term sigma_x^2 tr M / 2.
(c) Caption: smallest and largest eigenvalues of M, exact (eq_wts_cov) against detailed
    balance (eq_wts_cov_detbal), and the smallest and largest moduli of the eigenvalues of
    Q, normalised by lr sigma_eps^2 / (2S), against P.  We implement
    :mod:`sgdnoise.theory.detailed_balance`: M the continuum solution (and the exact §3c
    one), detailed balance the eigenvalues of (lr/2) H^-1 C, Q from M = (lr/2) H^-1 (C + Q)
    in the frame of (lr/2) H^-1/2 (C + Q) H^-1/2, averaged over data realisations.
"""
from __future__ import annotations

import numpy as np

from sgdnoise._spec import rng
from sgdnoise.dynamics.simulator import SimulationConfig, simulate
from sgdnoise.experiments.linear.gross import N, S, FigureResult, realisation, stationary_start, sweep_status
from sgdnoise.experiments.linear.gross import teacher_student
from sgdnoise.interrupts import stop_requested
from sgdnoise.progress import progress_bar
from sgdnoise.theory import noise_covariance, stationary_covariance
from sgdnoise.theory.detailed_balance import antisymmetric_spectrum, detailed_balance_spectrum

LR5, LABEL_NOISE5 = 0.1, 0.25
NORM5 = LR5 * LABEL_NOISE5 / (2 * S)
P5A, N5A = 200, (10, 20, 40, 60, 80, 100, 120, 140, 160, 180)
STEPS5A, REPLICAS5A = 200_000, 4
RATIOS5C = (1.05, 1.1, 1.2, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0, 50.0, 100.0)
REALISATIONS5C = 10


def _fig5a_point(n: int, seed: int) -> dict[str, float]:
    problem, teacher = teacher_student(n, P5A, LABEL_NOISE5, seed, "gross-fig5a", n)
    starts, M_exact = stationary_start(problem, LR5, S, REPLICAS5A, rng(seed, "gross-fig5a", "start", n))
    config = SimulationConfig(lr=LR5, batch_size=S, steps=STEPS5A, burn_in=0, replicas=REPLICAS5A,
                              seed=int(rng(seed, "gross-fig5a", "seed", n).integers(2**31)))
    result = simulate(problem, config, start=starts, progress=False)
    M_cont = stationary_covariance(problem.X, problem.Y, LR5, S, method="continuum")
    last = problem.from_eigen(result.final_theta[0])
    ones = np.ones(n)
    gap = problem.minimiser[:, 0] - teacher
    mean_delta = problem.from_eigen(result.mean_theta.value)
    L_min = float(np.mean(problem.residuals**2) / 2)
    sx2 = 1.0 / n
    return {
        "N": n, "time_variance": float(result.var_theta_trace.value / n),
        "time_variance_se": float(result.var_theta_trace.stderr / n),
        "conventional": NORM5, "continuum": float(np.trace(M_cont) / n), "exact": float(np.trace(M_exact) / n),
        "across_weights": float(np.var(last)),
        "across_weights_theory": float(np.trace(M_exact) / n - ones @ M_exact @ ones / n**2),
        "train_loss": L_min + float(result.loss_excess.value),
        "train_loss_theory": L_min + 0.5 * float(np.trace(problem.hessian @ M_exact)),
        "test_loss": 0.5 * (sx2 * (float((gap + mean_delta) @ (gap + mean_delta)) + float(result.var_theta_trace.value))
                            + LABEL_NOISE5),
        "test_loss_theory": 0.5 * (sx2 * (float(gap @ gap) + float(np.trace(M_exact))) + LABEL_NOISE5),
        "test_loss_data_average": 0.5 * LABEL_NOISE5 * (P5A - 1) / (P5A - n - 1) + 0.5 * sx2 * float(np.trace(M_exact)),
    }


def fig5a(seed: int, progress: bool = True) -> FigureResult:
    """Gross et al. Fig. 5a: weight variance, its spread across weights, train and test loss against N."""
    points = []
    for n in progress_bar(progress, iterable=N5A, desc="gross-fig5a"):
        if stop_requested():
            break
        points.append(_fig5a_point(n, seed))
    arrays = {key: np.array([p[key] for p in points]) for key in (points[0] if points else {})}
    z = [(p["time_variance"] - p["exact"]) / p["time_variance_se"] for p in points]
    data = {"points": points, "max_abs_deviation_from_exact_in_se": float(np.max(np.abs(z))) if z else None}
    config = {"P": P5A, "N": N5A, "lr": LR5, "S": S, "label_noise": LABEL_NOISE5, "steps": STEPS5A,
              "replicas": REPLICAS5A, "start": "w* + N(0, M_exact) (docs/theory.md §3c), no burn-in",
              "sampling": "with-replacement", "seed": seed}
    return FigureResult(config, data, arrays, sweep_status(len(points), len(N5A), "values of N"))


def _fig5c_point(ratio: float, seed: int) -> dict[str, np.ndarray]:
    rows = []
    for k in range(REALISATIONS5C):
        problem = realisation(N, int(round(ratio * N)), LABEL_NOISE5, seed, "gross-fig5c", k)
        C = noise_covariance(problem.X, problem.Y, S)
        H = problem.hessian
        M = stationary_covariance(problem.X, problem.Y, LR5, S, method="continuum")
        exact = np.linalg.eigvalsh(stationary_covariance(problem.X, problem.Y, LR5, S, method="exact"))
        cont = np.linalg.eigvalsh(M)
        db = detailed_balance_spectrum(H, C, LR5)
        q = antisymmetric_spectrum(H, C, M, LR5)
        rows.append([cont[-1], cont[0], exact[-1], exact[0], db[0], db[-1], q[0], q[-1]])
    return np.array(rows) / NORM5


COLUMNS5C = ("continuum_max", "continuum_min", "exact_max", "exact_min", "detailed_balance_max",
             "detailed_balance_min", "Q_max", "Q_min")


def fig5c(seed: int, progress: bool = True) -> FigureResult:
    """Gross et al. Fig. 5c: extreme eigenvalues of M, detailed balance and |eig Q| against P/N."""
    values = []
    for ratio in progress_bar(progress, iterable=RATIOS5C, desc="gross-fig5c"):
        if stop_requested():
            break
        values.append(_fig5c_point(ratio, seed))
    table = np.array(values)  # (ratios, realisations, columns)
    arrays = {"P_over_N": np.array(RATIOS5C[:len(values)])}
    for j, name in enumerate(COLUMNS5C):
        arrays[f"{name}_mean"] = table[:, :, j].mean(axis=1) if values else np.array([])
        arrays[f"{name}_sd"] = table[:, :, j].std(axis=1, ddof=1) if values else np.array([])
    data = {"curves": {key: value.tolist() for key, value in arrays.items()},
            "Q_max_over_M_max": (arrays["Q_max_mean"] / arrays["continuum_max_mean"]).tolist()}
    config = {"N": N, "S": S, "lr": LR5, "label_noise": LABEL_NOISE5, "P_over_N": RATIOS5C,
              "realisations": REALISATIONS5C, "normalisation": "lr sigma_eps^2 / (2 S)",
              "exact": "continuum Lyapunov H M + M H = lr C (docs/theory.md §3a); also §3c",
              "detailed_balance": "eigenvalues of (lr/2) H^-1 C", "Q": "moduli of eig of (lr/2) H^-1/2 Q H^-1/2",
              "seed": seed}
    return FigureResult(config, data, arrays, sweep_status(len(values), len(RATIOS5C), "values of P/N"))
