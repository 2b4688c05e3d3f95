"""Time averages over the positions of an epoch, kept as sums linear in the epoch-start moment.

Every epoch method (the exact reference §3f, the closures §3g/§3k) steps the augmented second
moment ``m = E[x~ x~^T]``, ``x~ = (delta_k, delta_{k-1}, 1)``, through the M positions of an epoch.
What :class:`~sgdnoise.theory.epoch_exact.EpochMoments` reports of them (the time average, the
epoch start, the mean and variance per position) is a sum over positions of quantities linear
in ``m``, hence linear in the epoch-start moment: the sums of a linear combination of epoch
passes are the same combination of their sums.  :func:`sgdnoise.theory.epoch_closure.solve_epoch_map`
uses this to obtain the time averages at the fixed point from the GMRES passes, without a
further pass (docs/theory.md §3k, *Cost*).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class EpochMoments:
    """Stationary moments of epoch-based SGD (``w - w*``), exact over all orders of the examples.

    Vectors and matrices are in weight coordinates (N,) / (N, N), except the
    ``var_*`` arrays, which are per eigendirection of ``H = X^T X / P`` in
    ascending order of ``hessian_eigenvalues`` (the simulator's convention).
    Time averages run over the M positions of the epoch (the state after each
    step, all steps weighted alike); ``*_start`` are the moments at the start of
    an epoch (after the last step of the previous one).

    Attributes
    ----------
    hessian_eigenvalues : (N,) ascending eigenvalues of H.
    batches_per_epoch : M = P // S.
    mean : (N,) time-averaged E[delta] (not zero: O(lr), from an O(lr^2) drift per epoch).
    covariance : (N, N) time-averaged ``E[delta delta^T] - E[delta] E[delta]^T``.
    var_theta : (N,) diagonal of ``covariance`` in the eigenbasis of H.
    velocity_covariance : (N, N) the same for ``v_k = delta_k - delta_{k-1}``.
    var_v : (N,) its diagonal in the eigenbasis.
    mean_start, covariance_start, var_theta_start : the same at the start of an epoch.
    position_mean : (M, N) E[delta] after j steps of the epoch, j = 0..M-1 (eigen coordinates).
    position_var_theta : (M, N) variance per eigendirection after j steps.
    residual : relative residual of the stationarity condition (epoch map fixed point).
    """

    hessian_eigenvalues: np.ndarray
    batches_per_epoch: int
    mean: np.ndarray
    covariance: np.ndarray
    var_theta: np.ndarray
    velocity_covariance: np.ndarray
    var_v: np.ndarray
    mean_start: np.ndarray
    covariance_start: np.ndarray
    var_theta_start: np.ndarray
    position_mean: np.ndarray
    position_var_theta: np.ndarray
    residual: float


class PositionSums:
    """Accumulates, pass by pass, the position sums of an epoch in the eigenbasis ``V`` (N, n) of the data X.

    Call :meth:`add` with the moment at each position (the epoch start first), :meth:`take` at the
    end of the pass; :meth:`moments` turns sums (of one pass or a combination) into EpochMoments.
    """

    def __init__(self, X: np.ndarray, V: np.ndarray) -> None:
        self.V, self.n = V, V.shape[1]
        self.lam_all, self.V_all = np.linalg.eigh(X.T @ X / X.shape[0])
        self.to_all = self.V_all.T @ V  # (N, n): range eigenvectors in all N ascending ones
        # with distinct eigenvalues the two bases agree up to order and sign: then a diagonal maps to a diagonal
        weight = self.to_all ** 2
        self._permutation = weight if np.all(np.abs(weight.sum(1) - weight.max(1)) < 1e-12) else None
        self._reset()

    def _reset(self) -> None:
        self._total, self._start, self._cols, self._diag = None, None, [], []

    def diag_all(self, c: np.ndarray) -> np.ndarray:
        """Diagonal of ``c`` (n, n) along all N ascending eigenvectors of H (one GEMM, not an N^3 loop)."""
        return np.einsum("ij,ij->i", self.to_all @ c, self.to_all)

    def add(self, m: np.ndarray) -> None:
        """Adds the moment (D, D) at the next position."""
        n = self.n
        if self._start is None:
            self._start, self._total = m.copy(), np.zeros_like(m)
        self._total += m
        self._cols.append(m[:n, -1].copy())
        c = m[:n, :n]
        self._diag.append(self.diag_all(c) if self._permutation is None else self._permutation @ np.diagonal(c))

    def take(self) -> dict[str, np.ndarray]:
        """The sums of the pass so far (``total``, ``start``, per-position ``cols`` and ``diag``); resets."""
        out = {"total": self._total, "start": self._start, "cols": np.array(self._cols),
               "diag": np.array(self._diag)}
        self._reset()
        return out

    def moments(self, sums: dict[str, np.ndarray], residual: float) -> EpochMoments:
        """Means, covariances and per-direction variances (docs/theory.md §3f) from position sums."""
        n, V = self.n, self.V
        M = sums["cols"].shape[0]

        def split(m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            mean = m[:n, -1]
            cov = m[:n, :n] - np.outer(mean, mean)
            jv = np.hstack([np.eye(n), -np.eye(n)])
            vmean = jv @ m[:2 * n, -1]
            vcov = jv @ m[:2 * n, :2 * n] @ jv.T - np.outer(vmean, vmean)
            return mean, cov, vcov

        mean, cov, vcov = split(sums["total"] / M)
        mean0, cov0, _ = split(sums["start"])
        weights = lambda c: V @ c @ V.T  # noqa: E731 (eigen -> weight coordinates)
        pmean = sums["cols"] @ self.to_all.T
        return EpochMoments(
            hessian_eigenvalues=self.lam_all,
            batches_per_epoch=M,
            mean=V @ mean,
            covariance=weights(cov),
            var_theta=self.diag_all(cov),
            velocity_covariance=weights(vcov),
            var_v=self.diag_all(vcov),
            mean_start=V @ mean0,
            covariance_start=weights(cov0),
            var_theta_start=self.diag_all(cov0),
            position_mean=pmean,
            position_var_theta=sums["diag"] - pmean ** 2,
            residual=residual,
        )


def combine(sums: list[dict[str, np.ndarray]], weights: np.ndarray) -> dict[str, np.ndarray]:
    """``sum_k weights_k sums_k`` entry by entry (the sums of the same combination of epoch passes)."""
    return {key: sum(w * s[key] for w, s in zip(weights, sums)) for key in sums[0]}
