"""One layer's inverse variance-flatness measurement: PCA, flatness, curvature, fits (docs/theory.md §5).

Model-agnostic: the model enters through a batched loss ``(n, D) -> (n,)`` and a batched
Hessian-vector product of the full-data loss; the layer is a slice of the flat weights.
Each PCA direction of a layer is padded with zeros on the other weights, so its loss
profile moves that layer alone with the others at the window mean (Feng & Tu).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sgdnoise.measure.flatness import HvpFn, LossFn, curvature, flatness
from sgdnoise.measure.pca import aggregate, drift_ranks, projected_variances, trajectory_pca
from sgdnoise.stats.fits import loglog_fit

#: At most this many principal directions per layer get a flatness and a curvature.
MAX_DIRECTIONS = 60


@dataclass
class LayerAnalysis:
    """Measured sigma_i^2, F_i, k_i of one layer for R replicas, and the fits.

    Attributes
    ----------
    name : str
    variances, flatness, curvature, shift, tau : ndarray (R, m)
        Per replica, by rank (flatness ``inf`` where a side of the profile is unbounded).
    asymmetry : ndarray (R, m)
        ``(s_r + s_l) / F`` of each profile.
    drift : list of int
        Ranks flagged as drift in most replicas (excluded from the fits).
    psi, gamma : dict
        :func:`~sgdnoise.stats.fits.loglog_fit` of sigma^2 against F (``psi`` = minus its
        exponent) and against k.
    hessian_view : dict or None
        Kühn & Rosenow's view: curvatures (eigenvalues of the layer's Hessian block at the
        reference point) and the measured variances along those eigenvectors (mean, stderr).
    """

    name: str
    variances: np.ndarray
    flatness: np.ndarray
    curvature: np.ndarray
    shift: np.ndarray
    tau: np.ndarray
    asymmetry: np.ndarray
    drift: list[int]
    psi: dict[str, Any]
    gamma: dict[str, Any]
    hessian_view: dict[str, np.ndarray] | None = None

    def to_summary(self) -> dict[str, Any]:
        mean, se = aggregate(self.variances)
        flat = np.where(np.isfinite(self.flatness), self.flatness, np.nan)
        summary = {
            "pca_variances": mean, "pca_variances_stderr": se,
            "flatness": np.nanmean(flat, axis=0) if np.isfinite(flat).any() else None,
            "flatness_unbounded": int((~np.isfinite(self.flatness)).sum()),
            "curvature": self.curvature.mean(axis=0),
            "asymmetry_max": float(np.nanmax(np.abs(self.asymmetry))) if np.isfinite(self.asymmetry).any()
            else None,
            "psi": None if self.psi["exponent"] is None else -self.psi["exponent"],
            "psi_ci": None if self.psi["ci"] is None else sorted(-c for c in self.psi["ci"]),
            "gamma": self.gamma["exponent"], "gamma_ci": self.gamma["ci"], "points_fitted": self.gamma["n"],
            "drift_mode": self.drift,
            "drift_shift": self.shift.mean(axis=0)[self.drift] if self.drift else [],
        }
        if self.hessian_view is not None:
            summary["hessian_view"] = self.hessian_view
        return summary


def analyse_layer(name: str, snapshots: np.ndarray, layer: slice, loss: LossFn, hvp: HvpFn, kappa: float,
                  hessian_block: np.ndarray | None = None, seed: int = 0,
                  max_directions: int = MAX_DIRECTIONS) -> LayerAnalysis:
    """PCA of ``snapshots[..., layer]`` (R, n, D) per replica, F_i and k_i at each replica's window mean."""
    pca = trajectory_pca(snapshots[..., layer], components=max_directions, seed=seed)
    R, m = pca.variances.shape
    D = snapshots.shape[-1]
    widths, asym, curv = (np.empty((R, m)) for _ in range(3))
    for r in range(R):
        centre = snapshots[r].mean(axis=0)
        dirs = np.zeros((m, D))
        dirs[:, layer] = pca.directions[r]
        k = curvature(hvp, centre, dirs)
        prof = flatness(loss, centre, dirs, kappa,
                        initial=0.1 * np.sqrt(np.maximum(pca.variances[r], 1e-30)))
        widths[r], asym[r], curv[r] = prof.width, prof.asymmetry, k
    drift = drift_ranks(pca)
    use = np.ones((R, m), bool)
    use[:, drift] = False
    view = None
    if hessian_block is not None:
        lam, V = np.linalg.eigh(hessian_block)
        var = projected_variances(snapshots[..., layer], V)
        mean, se = aggregate(var)
        view = {"curvature": lam, "variances": mean, "variances_stderr": se}
    return LayerAnalysis(name, pca.variances, widths, curv, pca.shift, pca.tau, asym, drift,
                         loglog_fit(widths, pca.variances, use & np.isfinite(widths), seed=seed),
                         loglog_fit(curv, pca.variances, use, seed=seed), view)
