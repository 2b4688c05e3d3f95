"""Typed results of ``sgdnoise balance`` and their ``summary.json`` form (docs/balance.md)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sgdnoise.dynamics.balance_sgd import BalanceRun
from sgdnoise.experiments.balance.config import BalanceConfig
from sgdnoise.problems.diagonal import DataMoments
from sgdnoise.theory.balance import StationaryDensity

REFERENCE = "Ziyin, Li, Ueda, arXiv 2308.06671"
#: Points of the density kept in summary.json.
DENSITY_POINTS = 2000


@dataclass(frozen=True)
class SampleComparison:
    """The final ``v`` of one simulator's replicas against the predicted density.

    ``histogram`` (edges, counts, density), the mean and variance with standard errors,
    the share collapsed onto ``v = 0``, the Kolmogorov-Smirnov ``distance`` (None without a
    density), ``Var v`` at every record time and the number of diverged replicas.
    """

    n: int
    histogram: dict[str, np.ndarray]
    mean: float
    mean_se: float
    variance: float
    variance_se: float
    collapsed_fraction: float
    distance: dict[str, Any] | None
    variance_over_time: np.ndarray
    diverged: int

    def to_summary(self) -> dict[str, Any]:
        """The summary block ``sgd`` / ``sde``."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


@dataclass(frozen=True)
class PairRates:
    """Decay rates of ``log|u_k^2 - u_{k+1}^2|`` of one pair of layers: measured and predicted.

    ``*_difference_se`` is the standard error of measured minus predicted over replicas;
    ``predicted_stationary`` is ``E_p[T C_0 P] + 4 gamma`` (None without a density);
    ``predicted_finite_step`` the exact finite-step prediction (SGD: the exact one-step
    expectation, teacher data only; SDE: Euler-Maruyama to second order;
    docs/theory.md §6d), None where not available.  ``summed_measured``: the decay rate of
    ``sum_i (u_ik^2 - u_i,k+1^2)`` over the paths (``D = 1``: ``|u|^2 - |w|^2``, whose law
    of balance is the same as a single path's; None for ``d = 1``).
    """

    pair: int
    measured: float
    measured_se: float
    predicted: float
    predicted_difference_se: float
    predicted_discrete: float
    predicted_discrete_difference_se: float
    predicted_stationary: float | None
    predicted_finite_step: float | None = None
    predicted_finite_step_difference_se: float | None = None
    summed_measured: float | None = None
    summed_measured_se: float | None = None

    def to_summary(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class BalanceRates:
    """The law-of-balance comparison: per pair for SGD (and the SDE), and gradient flow."""

    pairs: list[PairRates]
    sde: list[PairRates] | None
    gradient_flow_max_relative_change: float

    def to_summary(self) -> dict[str, Any]:
        """Pair 0 of SGD at the top level, then ``pairs``, ``sde`` and the gradient-flow check."""
        first = self.pairs[0]
        return {"measured": first.measured, "measured_se": first.measured_se,
                "predicted": first.predicted, "predicted_discrete": first.predicted_discrete,
                "predicted_finite_step": first.predicted_finite_step,
                "predicted_stationary": first.predicted_stationary,
                "pairs": [p.to_summary() for p in self.pairs],
                "sde": None if self.sde is None else [p.to_summary() for p in self.sde],
                "gradient_flow_max_relative_change": self.gradient_flow_max_relative_change}


def density_summary(density: StationaryDensity | None) -> dict[str, Any] | None:
    """The density on at most ``DENSITY_POINTS`` grid points inside its 1e-7..1-1e-7 quantiles."""
    if density is None:
        return None
    inside = np.flatnonzero((density.cdf > 1e-7) & (density.cdf < 1 - 1e-7))
    pick = inside[np.unique(np.linspace(0, inside.size - 1, DENSITY_POINTS).astype(int))]
    return {"label": density.label, "v": density.v[pick], "pdf": density.pdf[pick]}


@dataclass(frozen=True)
class BalanceResult:
    """What one ``balance`` run measured and predicted (see :meth:`to_summary` for the keys).

    ``runs`` are the density runs (``sgd``, ``sde``), ``balance_runs`` the imbalance-decay
    runs (``sgd``, ``sde``, ``gradient_flow``; empty for ``D = 0``).
    """

    config: BalanceConfig
    moments: DataMoments
    T: float
    lr: float
    T_c: float
    regime: str
    tail_exponent: float
    steps: int
    density: StationaryDensity | None
    samples: dict[str, SampleComparison]
    balance: BalanceRates | None
    runs: dict[str, BalanceRun]
    balance_runs: dict[str, BalanceRun] = field(default_factory=dict)
    runtime_s: float = 0.0
    status: str = "completed"

    @property
    def time(self) -> float:
        """Duration of the density runs (units of ``lr`` x steps)."""
        return float(self.runs["sgd"].times[-1])

    def config_summary(self) -> dict[str, Any]:
        """Every option (as before) and, under ``settings``, the mapping ``sgdnoise run`` reads."""
        return {**self.config.to_mapping(), "settings": self.config.to_mapping()}

    def to_summary(self) -> dict[str, Any]:
        """The ``summary.json`` of the run (docs/balance.md, "summary.json")."""
        density = self.density
        sde = self.samples.get("sde")
        return {
            "experiment": "balance", "reference": REFERENCE, "config": self.config_summary(),
            "moments": self.moments.as_dict(), "T": self.T, "lr": self.lr, "batch": self.config.batch,
            "T_c": self.T_c, "regime": self.regime, "tail_exponent": self.tail_exponent,
            "time": self.time, "steps": self.steps, "density": density_summary(density),
            "predicted_mean": density.mean if density else None,
            "predicted_variance": density.variance if density else None,
            "measured_histogram": self.samples["sgd"].histogram,
            "distance": self.samples["sgd"].distance,
            "sgd": self.samples["sgd"].to_summary(),
            "sde": sde.to_summary() if sde else None,
            "balance_rate": self.balance.to_summary() if self.balance else None,
            "runtime_s": self.runtime_s, "status": self.status,
        }

    def arrays(self) -> dict[str, np.ndarray]:
        """``samples.npz``: ``<run>_times``, ``<run>_v``, ``<run>_imbalance`` of every run."""
        named = {**self.runs, **{f"balance_{k}": r for k, r in self.balance_runs.items()}}
        return {f"{name}_{key}": value for name, run in named.items()
                for key, value in (("times", run.times), ("v", run.v), ("imbalance", run.imbalance))}
