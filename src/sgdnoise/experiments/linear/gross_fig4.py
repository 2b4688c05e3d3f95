"""Gross et al. Fig. 4: relaxation of the loss and of the modes z_k towards z_k*.

Caption parameters: N = 50, P = 52 (P/N ~ 1.04), lr = 0.1, S = 10, sigma_eps^2 = 1e-2;
modes ``z_k = V^T_kj w_j`` for k = 1, 5, 25, a single SGD run against the noise-averaged
prediction <z_k(t)> (their eq_LR_modes_dyn, not available to us), an inset with the loss
and a mode on log-log axes, and the theoretical final loss L*.

What we implement: SGD with replacement from w = 0 (the caption does not say the
start); modes numbered by descending eigenvalue of H (k = 1 the stiffest; the caption's
convention is not stated).  The prediction is the exact first/second-moment recursion of
:func:`sgdnoise.theory.relaxation.moment_trajectory` (docs/theory.md §3c iterated from the
start): <z_k(t)> = z_k* + (1 - lr lambda_k)^t (z_k(0) - z_k*) and E L(t) = L_min + 1/2 tr(Lambda M_t).
L* is drawn twice: L_min = L(w*) and the stationary mean loss of SGD (§3c), L_min + lr tr(...)
-type excess; which one the paper means is not known.  Beside the single run, the mean of
``REPLICAS`` runs with its standard error checks the prediction.
"""
from __future__ import annotations

import numpy as np

from sgdnoise._spec import rng
from sgdnoise.experiments.linear.gross import FigureResult, realisation
from sgdnoise.interrupts import stop_requested
from sgdnoise.problems.linear import LinearRegression
from sgdnoise.progress import progress_bar
from sgdnoise.theory import stationary_covariance
from sgdnoise.theory.relaxation import moment_trajectory

N4, P4, LR4, S4, LABEL_NOISE4 = 50, 52, 0.1, 10, 1e-2
MODES = (1, 5, 25)
T_MAX, REPLICAS = 100_000, 16


def time_grid(t_max: int = T_MAX, per_decade: int = 20) -> np.ndarray:
    """0 and log-spaced integer steps up to ``t_max``."""
    grid = np.unique(np.round(np.logspace(0, np.log10(t_max), int(per_decade * np.log10(t_max)) + 1)))
    return np.concatenate([[0], grid.astype(np.int64)])


def sgd_trajectories(problem: LinearRegression, w0: np.ndarray, times: np.ndarray, replicas: int,
                     generator: np.random.Generator, progress: bool) -> tuple[np.ndarray, np.ndarray, int]:
    """Weights (T, R, N) and loss (T, R) of ``replicas`` SGD runs (with replacement) at ``times``; steps reached."""
    X, y = problem.X, problem.Y[:, 0]
    P = X.shape[0]
    w = np.tile(w0, (replicas, 1))
    weights, loss, t = [], [], 0
    bar = progress_bar(progress, total=int(times[-1]), desc="gross-fig4 SGD", unit="step")
    for target in times:
        while t < target:
            if t % 1000 == 0 and stop_requested():
                bar.close()
                return np.array(weights), np.array(loss), t
            idx = generator.integers(0, P, size=(replicas, S4))
            Xb = X[idx]
            w = w - LR4 / S4 * np.einsum("rsn,rs->rn", Xb, np.einsum("rsn,rn->rs", Xb, w) - y[idx])
            t += 1
            bar.update(1)
        weights.append(w.copy())
        loss.append(0.5 * np.mean((w @ X.T - y) ** 2, axis=1))
    bar.close()
    return np.array(weights), np.array(loss), t


def fig4(seed: int, progress: bool = True) -> FigureResult:
    """Gross et al. Fig. 4: single SGD run and replica mean against the moment recursion."""
    problem = realisation(N4, P4, LABEL_NOISE4, seed, "gross-fig4", "data")
    times = time_grid()
    w0 = np.zeros(N4)
    weights, loss, reached = sgd_trajectories(problem, w0, times, REPLICAS, rng(seed, "gross-fig4", "sgd"),
                                              progress)
    theory = moment_trajectory(problem.X, problem.Y, LR4, S4, w0, times[:len(loss)])
    n = len(theory.times)
    V = theory.eigenvectors[:, ::-1]  # descending eigenvalues: k = 1 the stiffest
    lam = theory.eigenvalues[::-1]
    w_star = problem.minimiser[:, 0]
    z = weights[:n] @ V  # (T, R, N)
    z_star = w_star @ V
    mean_theory = theory.mean[:, ::-1] + z_star
    sd_theory = np.sqrt(np.clip(theory.variance[:, ::-1], 0, None))
    z_mean, z_se = z.mean(axis=1), z.std(axis=1, ddof=1) / np.sqrt(REPLICAS)
    loss_se = loss[:n].std(axis=1, ddof=1) / np.sqrt(REPLICAS)
    M = stationary_covariance(problem.X, problem.Y, LR4, S4, method="exact")
    stationary_loss = theory.loss_minimum + 0.5 * float(np.trace(problem.hessian @ M))
    z_dev = np.abs(z_mean - mean_theory) / np.where(z_se > 0, z_se, np.inf)
    loss_dev = np.abs(loss[:n].mean(axis=1) - theory.loss) / np.where(loss_se > 0, loss_se, np.inf)
    modes = [k - 1 for k in MODES]
    data = {
        "modes": {f"k={k}": {"eigenvalue": float(lam[k - 1]), "z_star": float(z_star[k - 1]),
                             "relaxation_steps": float(1 / (LR4 * lam[k - 1])),
                             "max_deviation_replica_mean_in_se": float(z_dev[1:, k - 1].max())}
                  for k in MODES},
        "max_deviation_loss_replica_mean_in_se": float(loss_dev[1:].max()),
        "max_deviation_all_modes_in_se": float(z_dev[1:].max()),
        "L_min": theory.loss_minimum, "L_stationary_sgd": stationary_loss,
        "loss_at_t_max": {"single_run": float(loss[n - 1, 0]), "replica_mean": float(loss[n - 1].mean()),
                          "theory": float(theory.loss[-1])},
        "steps_reached": reached,
    }
    arrays = {"t": theory.times, "eigenvalues_descending": lam, "z_star": z_star,
              "z_single": z[:, 0, modes], "z_mean": z_mean[:, modes], "z_se": z_se[:, modes],
              "z_theory": mean_theory[:, modes], "z_theory_sd": sd_theory[:, modes],
              "loss_single": loss[:n, 0], "loss_mean": loss[:n].mean(axis=1), "loss_se": loss_se,
              "loss_theory": theory.loss}
    config = {"N": N4, "P": P4, "lr": LR4, "S": S4, "label_noise": LABEL_NOISE4, "modes": list(MODES),
              "mode_order": "descending eigenvalue of H (k = 1 the stiffest)", "start": "w = 0",
              "sampling": "with-replacement", "replicas": REPLICAS, "t_max": T_MAX, "seed": seed}
    status = "completed" if reached == times[-1] else f"interrupted after {reached} of {times[-1]} steps"
    return FigureResult(config, data, arrays, status)
