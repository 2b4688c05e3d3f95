"""Gross et al. Fig. 2: the projector X^+X and the diagonal matrix K of the noise correction.

The caption (the paper's equations are not available to us) says: (a) the variance of
the matrix elements of X^+X, which enters their eq_noise_correct, collapses as
N^-1 s^-1.8 (s = P/N); (b) the entries of the diagonal matrix K that fixes the noise
covariance, ordered by magnitude, for P = 70 ... 10000 at N = 50, averaged over 100
realisations, approach the i.i.d. approximation K^mumu = eps_mu^2 (eps ~ N(0, sigma_eps^2)).

What we implement.  The paper's X holds samples as columns, so X^+X is the P x P
projector onto the span of the samples; with our P x N data matrix (docs/theory.md §1)
it is the hat matrix Pi = X (X^T X)^-1 X^T (our X^+ X would be I_N).  The residuals at
w* are r = -(I - Pi) eps, and docs/theory.md §2 writes the noise at w* as
C = f X^T K X / P with K = diag(r_mu^2): K^mumu = ((I - Pi) eps)_mu^2, which tends to
eps_mu^2 when the elements of Pi vanish.  For (a) we report the variance of the
off-diagonal elements and of the diagonal elements of Pi, averaged over realisations,
computed without forming Pi: Pi_mumu = |Q_mu|^2 (Q orthonormal, from a Cholesky factor), sum_{mu != nu} Pi_munu^2 =
N - sum_mu Pi_mumu^2 (Pi is a rank-N projector) and sum_{mu != nu} Pi_munu = |Q^T 1|^2 - N.
The random-projector values E Pi_munu^2 = N (P - N) / (P (P^2 - 1)) (mu != nu) and
Var Pi_mumu = 2 N (P - N) / (P^2 (P + 2)) (a uniformly random N-dimensional subspace)
are drawn for comparison; both are N^-1 times a function of s.
"""
from __future__ import annotations

import numpy as np
from scipy.linalg import solve_triangular
from scipy.stats import chi2

from sgdnoise._spec import rng
from sgdnoise.experiments.linear.gross import FigureResult, sweep_status
from sgdnoise.interrupts import stop_requested
from sgdnoise.progress import progress_bar

FIG2A_N = (20, 50, 100)
FIG2A_S = (1.1, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0, 50.0, 100.0)
FIG2A_REALISATIONS = 10
FIG2B_N, FIG2B_P = 50, (70, 100, 200, 500, 1000, 2000, 5000, 10000)
FIG2B_REALISATIONS = 100


def orthonormal_basis(X: np.ndarray) -> np.ndarray:
    """Q = X L^-T with X^T X = L L^T: orthonormal columns spanning range(X) (Cholesky; faster than QR here)."""
    L = np.linalg.cholesky(X.T @ X)
    return solve_triangular(L, X.T, lower=True).T


def projector_element_variances(X: np.ndarray) -> tuple[float, float]:
    """(variance of the off-diagonal, variance of the diagonal elements) of Pi = X (X^T X)^-1 X^T."""
    P, N = X.shape
    Q = orthonormal_basis(X)
    diag = np.einsum("pi,pi->p", Q, Q)
    off_sq = N - diag @ diag
    ones = Q.sum(axis=0)
    off_mean = (ones @ ones - N) / (P * (P - 1))
    return float(off_sq / (P * (P - 1)) - off_mean**2), float(diag.var())


def random_projector_variances(P: np.ndarray, N: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """E of the two variances for a uniformly random rank-N projector in R^P (see the module docstring)."""
    P, N = np.asarray(P, float), np.asarray(N, float)
    return N * (P - N) / (P * (P**2 - 1)), 2 * N * (P - N) / (P**2 * (P + 2))


def residual_weights(X: np.ndarray, eps: np.ndarray) -> np.ndarray:
    """K^mumu = r_mu^2 with r = (I - Pi) eps (label noise projected off the span of X), unsorted."""
    Q = orthonormal_basis(X)
    r = eps - Q @ (Q.T @ eps)
    return r**2


def _fig2a(seed: int, progress: bool) -> dict[str, np.ndarray]:
    shape = (len(FIG2A_N), len(FIG2A_S))
    off, diag = np.full(shape, np.nan), np.full(shape, np.nan)
    cells = [(i, j) for i in range(shape[0]) for j in range(shape[1])]
    for i, j in progress_bar(progress, iterable=cells, desc="gross-fig2a"):
        if stop_requested():
            break
        n = FIG2A_N[i]
        p = int(round(FIG2A_S[j] * n))
        gen = rng(seed, "gross-fig2a", n, p)
        values = [projector_element_variances(gen.normal(0, np.sqrt(1 / n), size=(p, n)))
                  for _ in range(FIG2A_REALISATIONS)]
        off[i, j], diag[i, j] = np.mean(values, axis=0)
    return {"offdiagonal_variance": off, "diagonal_variance": diag}


def fit_exponent(s: np.ndarray, scaled: np.ndarray) -> float:
    """Least-squares slope of log(N var) against log s over the finite points with s >= 2."""
    ok = np.isfinite(scaled) & (np.broadcast_to(s, scaled.shape) >= 2)
    return float(np.polyfit(np.log(np.broadcast_to(s, scaled.shape)[ok]), np.log(scaled[ok]), 1)[0])


def fig2(seed: int, progress: bool = True) -> FigureResult:
    """Gross et al. Fig. 2a (variances of the projector's elements) and 2b (ordered entries of K)."""
    a = _fig2a(seed, progress)
    s = np.array(FIG2A_S)
    n_col = np.array(FIG2A_N, float)[:, None]
    sorted_k = np.full((len(FIG2B_P), max(FIG2B_P)), np.nan)
    done = 0
    for row, p in enumerate(progress_bar(progress, iterable=FIG2B_P, desc="gross-fig2b")):
        if stop_requested():
            break
        gen = rng(seed, "gross-fig2b", p)
        acc = np.zeros(p)
        for _ in range(FIG2B_REALISATIONS):
            X = gen.normal(0, np.sqrt(1 / FIG2B_N), size=(p, FIG2B_N))
            acc += np.sort(residual_weights(X, gen.normal(size=p)))[::-1]
        sorted_k[row, :p] = acc / FIG2B_REALISATIONS
        done += 1
    fraction = {p: (np.arange(1, p + 1) - 0.5) / p for p in FIG2B_P}
    iid = {p: chi2.isf(fraction[p], df=1) for p in FIG2B_P}
    at_half = {str(p): float(np.interp(0.5, fraction[p], sorted_k[k, :p]) / chi2.isf(0.5, 1))
               for k, p in enumerate(FIG2B_P[:done])}
    config = {"fig2a": {"N": FIG2A_N, "P_over_N": FIG2A_S, "realisations": FIG2A_REALISATIONS,
                        "feature_variance": "1/N"},
              "fig2b": {"N": FIG2B_N, "P": FIG2B_P, "realisations": FIG2B_REALISATIONS, "label_noise": 1.0,
                        "normalisation": "K / sigma_eps^2 (K scales with sigma_eps^2)"},
              "seed": seed, "projector": "Pi = X (X^T X)^-1 X^T (the paper's X^+X, samples as columns)"}
    data = {
        "fig2a": {"scaled_offdiagonal_variance": (n_col * a["offdiagonal_variance"]).tolist(),
                  "scaled_diagonal_variance": (n_col * a["diagonal_variance"]).tolist(),
                  "fitted_exponent_offdiagonal": fit_exponent(s, n_col * a["offdiagonal_variance"]),
                  "fitted_exponent_diagonal": fit_exponent(s, n_col * a["diagonal_variance"]),
                  "caption_exponent": -1.8,
                  "collapse_spread_offdiagonal_max": float(np.nanmax(np.nanstd(np.log(n_col * a[
                      "offdiagonal_variance"]), axis=0)))},
        "fig2b": {"median_entry_over_iid_median": at_half,
                  "largest_entry_mean": {str(p): float(sorted_k[k, 0]) for k, p in enumerate(FIG2B_P[:done])},
                  "largest_entry_iid": {str(p): float(np.mean(np.sort(rng(seed, "iid", p).normal(size=(200, p))**2,
                                                                       axis=1)[:, -1])) for p in FIG2B_P}},
    }
    arrays = {"s": s, "N": np.array(FIG2A_N), **a, "P": np.array(FIG2B_P), "sorted_K": sorted_k,
              **{f"iid_{p}": iid[p] for p in FIG2B_P}}
    status = sweep_status(done, len(FIG2B_P), "values of P")
    return FigureResult(config, data, arrays, status)
