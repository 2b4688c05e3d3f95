r"""GD, PGD and Anti-PGD replicas in the widening valley against the theory of docs/theory.md §7a.

:func:`run_valley` steps ``replicas`` independent valleys per method at once
(:func:`sgdnoise.dynamics.injection.valley_replicas`: the torch wrappers ``PerturbedGD``,
``AntiPGD``; GD is deterministic and runs once) and sets the replica means beside the two
predictions of :mod:`sgdnoise.theory.anti_pgd`: gradient descent on
:math:`L + \frac{\sigma^2}{2}\operatorname{tr}\nabla^2 L` (leading order) and the moment
recursion that keeps the scatter of :math:`z = \theta - \xi`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from sgdnoise._spec import torch_seed
from sgdnoise.dynamics.injection import INJECTIONS, valley_replicas
from sgdnoise.theory import anti_pgd as theory

#: What the figure and summary call each method.
OBSERVABLES = ("loss", "hessian_trace", "u_norm", "v_abs")


@dataclass(frozen=True)
class ValleySettings:
    """Run settings (chosen here; Orvieto et al.'s own values are not reproduced).

    ``stationary_fraction``: the last this share of the records is averaged for the end point.
    """

    replicas: int = 1000
    steps: int = 10_000
    lr: float = 0.05
    sigma: float = 0.1
    dim: int = 10
    u0: float = 1.0
    v0: float = 1.0
    record_every: int = 100
    stationary_fraction: float = 0.25
    seed: int = 0


def mean_and_stderr(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean over replicas (last axis) and its standard error (0 for a single replica)."""
    n = values.shape[-1]
    se = values.std(-1, ddof=1) / np.sqrt(n) if n > 1 else np.zeros(values.shape[:-1])
    return values.mean(-1), se


@dataclass(frozen=True)
class ValleyResult:
    """Per method the recorded observables (shape ``(records, replicas)``) and the predictions."""

    settings: ValleySettings
    paths: dict[str, dict[str, Any]]
    leading: theory.ValleyPrediction
    moments: theory.ValleyPrediction

    @property
    def status(self) -> str:
        stopped = [f"{m}: {p['status']}" for m, p in self.paths.items() if p["status"] != "completed"]
        return "; ".join(stopped) if stopped else "completed"

    def stationary(self, method: str, key: str = "hessian_trace") -> tuple[float, float]:
        """Mean of ``key`` over the last records, averaged per replica first; with its s.e."""
        values = self.paths[method][key]
        mean, se = mean_and_stderr(values[self._window(len(values))].mean(0))
        return float(mean), float(se)

    def _window(self, records: int) -> slice:
        """The records of the end-point average: the last ``stationary_fraction`` of them."""
        return slice(int(records * (1 - self.settings.stationary_fraction)), records)

    def predicted_window_mean(self) -> float:
        """The moment recursion's E tr H(theta) averaged over the same records (transient included)."""
        n = len(self.paths["anti-pgd"]["step"])
        return float(self.moments.hessian_trace[:n][self._window(n)].mean())

    def deviations(self, key: str, prediction: theory.ValleyPrediction, z: bool = False) -> np.ndarray:
        """(measured mean - predicted) / s.e. of the Anti-PGD replicas at every record after step 0."""
        measured = self.paths["anti-pgd"][f"{key}_z" if z else key]
        mean, se = mean_and_stderr(measured)
        predicted = getattr(prediction, key)
        if z and key == "hessian_trace":
            predicted = prediction.u2 + self.settings.dim * prediction.v2
        n = min(len(mean), len(predicted))
        return (mean[1:n] - predicted[1:n]) / se[1:n]

    def to_summary(self) -> dict[str, Any]:
        s = self.settings
        final = {}
        for method, path in self.paths.items():
            final[method] = {k: dict(zip(("mean", "stderr"), map(float, (m[-1] for m in mean_and_stderr(path[k])))))
                             for k in OBSERVABLES}
        leading_end, corrected_end = theory.valley_stationary_trace(s.lr, s.sigma, s.dim)
        measured, se = self.stationary("anti-pgd")
        lead = self.paths["anti-pgd"]["hessian_trace_z"].mean(-1)[1:]
        predicted_z = (self.leading.u2 + s.dim * self.leading.v2)[1:len(lead) + 1]

        window = self.predicted_window_mean()

        def z_score(predicted: float) -> float:
            return (measured - predicted) / se if se > 0 else float("nan")

        def largest(values: np.ndarray) -> float:
            return float(np.max(np.abs(values))) if values.size else float("nan")

        return {
            "config": asdict(s), "status": self.status, "final": final,
            "anti_pgd_end_point": {
                "measured_hessian_trace": measured, "stderr": se,
                "averaged_over": f"last {s.stationary_fraction:g} of the steps, per replica, then over replicas",
                "predicted_leading_order_2_d_sigma2": leading_end,
                "predicted_with_z_scatter": corrected_end,
                "predicted_by_moments_over_the_same_steps": window,
                "z_score_leading": z_score(leading_end), "z_score_with_scatter": z_score(corrected_end),
                "z_score_moments_same_steps": z_score(window)},
            "anti_pgd_path": {
                "moment_recursion_max_abs_z_score_tr_H_theta": largest(self.deviations("hessian_trace", self.moments)),
                "moment_recursion_max_abs_z_score_loss": largest(self.deviations("loss", self.moments)),
                "moment_recursion_max_abs_z_score_tr_H_z": largest(
                    self.deviations("hessian_trace", self.moments, z=True)),
                "leading_order_largest_relative_error_tr_H_z": largest(predicted_z / lead - 1)},
            "pgd": {"stationary_hessian_trace": dict(zip(("mean", "stderr"), self.stationary("pgd"))),
                    "stability_edge_2_over_lr": 2 / s.lr},
            "gd": {"final_hessian_trace": float(self.paths["gd"]["hessian_trace"][-1, 0]),
                   "gradient_flow_prediction": theory.gradient_flow_end_trace(s.dim, s.u0, s.v0)},
        }


def run_valley(settings: ValleySettings = ValleySettings(), progress: bool = False) -> ValleyResult:
    """Every method of :data:`~sgdnoise.dynamics.injection.INJECTIONS` from ``(u0 1, v0)``; the predictions."""
    s = settings
    paths = {}
    for method in INJECTIONS:
        paths[method] = valley_replicas(
            method, 1 if method == "gd" else s.replicas, s.steps, s.lr, s.sigma, s.dim, s.u0, s.v0,
            s.record_every, torch_seed(s.seed, "valley", method), progress)
    common = (s.steps, s.lr, s.sigma, s.dim, s.u0, s.v0, s.record_every)
    return ValleyResult(s, paths, theory.valley_leading_order(*common), theory.valley_moments(*common))
