"""Gross et al. Fig. 3: the gradient-noise covariance C of linear regression.

Caption parameters: N = 100, S = 10, sigma_eps^2 = 1e-2, eigenvalues normalised by
sigma_x^2 sigma_eps^2 / S with sigma_x^2 = 1/N.

(a) Eigenvalues of C for several P (P/N = 1.1, 2, 50), "numerical results obtained from
    SGD (single data realisation, lr = 0.1)" against the theory averaged over data
    realisations.  We measure C twice on one realisation: along SGD runs at lr = 0.1
    (the batch gradient minus the full gradient at the current weights, the noise that
    drives the run; runs started at w* + N(0, M) with M the exact stationary covariance,
    docs/theory.md §3c) and from batches drawn at fixed w*.  Theory: C at w*
    (docs/theory.md §2), and the noise averaged over the stationary weights,
    E C(delta) = f [(1/P) sum x x^T (x^T M x + r^2) - H M H] (§3c).
(b) The exact C against the Hessian approximation, which we implement as
    C_H = f sigma_r^2 H (docs/theory.md §2, sigma_r^2 the mean squared residual at w*,
    E sigma_r^2 = sigma_eps^2 (1 - N/P)); the paper's eq_noise_cov_Hess is not available.
    The caption calls its broken lines "essentially the eigenvalues of H", i.e.
    f sigma_eps^2 H, which differs from C_H by sigma_r^2 / sigma_eps^2 ~ 1 - N/P (0.09 at
    P/N = 1.1): both are drawn, with the spread over data realisations.
(c) C~ = <|V^T C V|> over data realisations at N/P ~ 0.67 (P = 150), V the eigenvectors of H.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from sgdnoise._spec import rng
from sgdnoise.experiments.linear.gross import N, S, FigureResult, realisation, stationary_start, sweep_status
from sgdnoise.interrupts import stop_requested
from sgdnoise.problems.linear import LinearRegression
from sgdnoise.progress import progress_bar
from sgdnoise.sampling import Sampler
from sgdnoise.stats.streaming import CovarianceAccumulator
from sgdnoise.theory import noise_covariance
from sgdnoise.theory.relaxation import averaged_noise_covariance

LABEL_NOISE, LR, RATIOS = 1e-2, 0.1, (1.1, 2.0, 50.0)
REALISATIONS = 10
NORM = (1.0 / N) * LABEL_NOISE / S
EXTREME_GRID = (1.05, 1.1, 1.2, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0, 50.0)
PANEL_C_P = 150
SGD_REPLICAS, SGD_STEPS, BATCHES = 20, 5_000, 200_000


def spectrum(C: np.ndarray) -> np.ndarray:
    """Eigenvalues of C, descending, in units of sigma_x^2 sigma_eps^2 / S."""
    return np.linalg.eigvalsh(C)[::-1] / NORM


def fixed_point_noise(problem: LinearRegression, batches: int, generator: np.random.Generator) -> np.ndarray:
    """Covariance of the batch-gradient noise at w*, from ``batches`` sampled mini-batches."""
    G = problem.per_example_gradients()
    centred = G - G.mean(axis=0)
    sampler = Sampler("with-replacement", problem.n_examples, S, replicas=1, rng=generator)
    acc = CovarianceAccumulator(G.shape[1])
    for start in range(0, batches, 20_000):
        acc.add(centred[sampler.draw(min(20_000, batches - start))[:, 0]].mean(axis=1))
    return acc.covariance()


def sgd_run_noise(problem: LinearRegression, generator: np.random.Generator) -> np.ndarray:
    """Covariance of g_batch(w_t) - grad L(w_t) along SGD runs at lr = 0.1 (with replacement).

    ``SGD_REPLICAS`` runs of ``SGD_STEPS`` steps from stationary starts (:func:`stationary_start`);
    every step's noise enters (their mean is zero: the batch is unbiased).
    """
    X, y = problem.X, problem.Y[:, 0]
    P = X.shape[0]
    w, _ = stationary_start(problem, LR, S, SGD_REPLICAS, generator)
    acc = CovarianceAccumulator(X.shape[1])
    for _ in range(SGD_STEPS):
        idx = generator.integers(0, P, size=(SGD_REPLICAS, S))
        Xb = X[idx]
        batch = np.einsum("rsn,rs->rn", Xb, np.einsum("rsn,rn->rs", Xb, w) - y[idx]) / S
        full = (w @ X.T - y) @ X / P
        acc.add(batch - full)
        w = w - LR * batch
    return acc.covariance()


def _panel_a(ratio: float, seed: int) -> dict[str, Any]:
    problem = realisation(N, int(round(ratio * N)), LABEL_NOISE, seed, "gross-fig3", "sgd-realisation")
    exact = noise_covariance(problem.X, problem.Y, S)
    _, M = stationary_start(problem, LR, S, 1, rng(seed, "unused"))
    averaged = averaged_noise_covariance(problem.X, problem.Y, M, S)
    sgd = spectrum(sgd_run_noise(problem, rng(seed, "gross-fig3", "sgd", f"{ratio:g}")))
    fixed = spectrum(fixed_point_noise(problem, BATCHES, rng(seed, "gross-fig3", f"{ratio:g}")))
    exact_s, averaged_s = spectrum(exact), spectrum(averaged)
    return {"sgd": sgd, "fixed_w_star": fixed, "exact_same_realisation": exact_s,
            "averaged_over_stationary_weights": averaged_s,
            "relative_difference_sgd_vs_averaged_max": float(np.max(np.abs(sgd / averaged_s - 1))),
            "relative_difference_fixed_vs_exact_max": float(np.max(np.abs(fixed / exact_s - 1))),
            "trace_ratio_averaged_over_w_star": float(averaged_s.sum() / exact_s.sum()),
            "trace_ratio_sgd_over_fixed": float(sgd.sum() / fixed.sum())}


def _realisation_spectra(ratio: float, seed: int) -> dict[str, np.ndarray]:
    """Spectra of C, of f sigma_r^2 H and of f sigma_eps^2 H over ``REALISATIONS`` data sets, (R, N) each."""
    out: dict[str, list[np.ndarray]] = {"exact": [], "hessian_sigma_r": [], "hessian_sigma_eps": [],
                                        "sigma_r2_over_sigma_eps2": []}
    for k in range(REALISATIONS):
        problem = realisation(N, int(round(ratio * N)), LABEL_NOISE, seed, "gross-fig3", "data", k)
        hess = noise_covariance(problem.X, problem.Y, S, approx="hessian")
        sigma_r2 = float(np.mean(problem.residuals**2))
        out["exact"].append(spectrum(noise_covariance(problem.X, problem.Y, S)))
        out["hessian_sigma_r"].append(spectrum(hess))
        out["hessian_sigma_eps"].append(spectrum(hess) * LABEL_NOISE / sigma_r2)
        out["sigma_r2_over_sigma_eps2"].append(np.array([sigma_r2 / LABEL_NOISE]))
    return {key: np.array(value) for key, value in out.items()}


def _band(values: np.ndarray) -> dict[str, np.ndarray]:
    return {"mean": values.mean(axis=0), "low": np.percentile(values, 5, axis=0),
            "high": np.percentile(values, 95, axis=0)}


def panel_c(seed: int, P: int = PANEL_C_P) -> np.ndarray:
    """C~ = <|V^T C V|> over ``REALISATIONS`` data sets, normalised to its largest entry (descending lambda)."""
    total = np.zeros((N, N))
    for k in range(REALISATIONS):
        problem = realisation(N, P, LABEL_NOISE, seed, "gross-fig3", "data", k)
        V = problem.feature_eigenvectors[:, ::-1]
        total += np.abs(V.T @ noise_covariance(problem.X, problem.Y, S) @ V)
    return total / total.max()


def offdiagonal_fraction(C_tilde: np.ndarray) -> float:
    """Frobenius weight of the off-diagonal part of C~: |offdiag|_F / |C~|_F."""
    off = C_tilde - np.diag(np.diag(C_tilde))
    return float(np.linalg.norm(off) / np.linalg.norm(C_tilde))


def _extremes(seed: int) -> dict[str, list[float]]:
    """Inset of (b): largest and smallest eigenvalue of C and of f sigma_r^2 H over P/N, mean over realisations."""
    ext: dict[str, list[float]] = {"P_over_N": list(EXTREME_GRID)}
    for ratio in EXTREME_GRID:
        spectra = _realisation_spectra(ratio, seed)
        for key in ("exact", "hessian_sigma_r"):
            ext.setdefault(f"{key}_max", []).append(float(spectra[key][:, 0].mean()))
            ext.setdefault(f"{key}_min", []).append(float(spectra[key][:, -1].mean()))
    return ext


def fig3(seed: int, progress: bool = True) -> FigureResult:
    """Gross et al. Fig. 3a/3b/3c (see the module docstring for what each panel holds)."""
    data: dict[str, Any] = {"panel_a": {}, "panel_b": {}}
    arrays: dict[str, np.ndarray] = {}
    done = 0
    for ratio in progress_bar(progress, iterable=RATIOS, desc="gross-fig3"):
        if stop_requested():
            break
        key = f"P/N={ratio:g}"
        a = _panel_a(ratio, seed)
        spectra = _realisation_spectra(ratio, seed)
        bands = {name: _band(values) for name, values in spectra.items() if name != "sigma_r2_over_sigma_eps2"}
        for name in ("sgd", "fixed_w_star", "exact_same_realisation", "averaged_over_stationary_weights"):
            arrays[f"a_{key}_{name}"] = a.pop(name)
        for name, band in bands.items():
            for stat, values in band.items():
                arrays[f"b_{key}_{name}_{stat}"] = values
        data["panel_a"][key] = a
        ratio_r = spectra["sigma_r2_over_sigma_eps2"][:, 0]
        data["panel_b"][key] = {
            "sigma_r2_over_sigma_eps2_mean": float(ratio_r.mean()), "one_minus_N_over_P": 1 - 1 / ratio,
            "trace_exact_over_hessian_sigma_r": float((spectra["exact"].sum(1) / spectra["hessian_sigma_r"].sum(1)
                                                       ).mean()),
            "trace_exact_over_hessian_sigma_eps": float((spectra["exact"].sum(1)
                                                         / spectra["hessian_sigma_eps"].sum(1)).mean()),
            "relative_spread_exact_top_eigenvalue": float(spectra["exact"][:, 0].std() / spectra["exact"][:, 0].mean()),
        }
        done += 1
    C_tilde = panel_c(seed)
    arrays["c_C_tilde"] = C_tilde
    fractions = {f"{r:g}": offdiagonal_fraction(panel_c(seed, int(round(r * N)))) for r in (1.2, 1.5, 3.0, 10.0)}
    data["panel_c"] = {"P": PANEL_C_P, "N_over_P": N / PANEL_C_P, "offdiagonal_fraction": fractions,
                       "smallest_entry_relative": float(C_tilde.min())}
    data["inset_b"] = _extremes(seed)
    config = {"N": N, "S": S, "label_noise": LABEL_NOISE, "lr": LR, "P_over_N": RATIOS, "seed": seed,
              "sampling": "with-replacement", "realisations": REALISATIONS, "sgd_replicas": SGD_REPLICAS,
              "sgd_steps": SGD_STEPS, "fixed_w_star_batches": BATCHES,
              "normalisation": "sigma_x^2 sigma_eps^2 / S, sigma_x^2 = 1/N",
              "hessian_approximation": "C_H = f sigma_r^2 H, f = 1/S, sigma_r^2 = |r|^2 / P at w* "
                                       "(E sigma_r^2 = sigma_eps^2 (1 - N/P)); also f sigma_eps^2 H"}
    return FigureResult(config, data, arrays, sweep_status(done, len(RATIOS), "values of P/N"))
