"""The figures of Ziyin, Li, Ueda (arXiv 2308.06671) as computations with typed results.

``sgdnoise reproduce ziyin-densities | ziyin-inversion | ziyin-tail | ziyin-balance``
(docs/balance.md, "Reproductions"); the figures are drawn by :mod:`sgdnoise.report.balance`.
The inversion figure lives in :mod:`.inversion`.  Random numbers come from named
streams of the seed (``tail/D<depth>``; the densities and balance figures are
``balance`` runs with that seed).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sgdnoise._spec import stream_seed
from sgdnoise.dynamics.balance_sgd import simulate_sde
from sgdnoise.experiments.balance.config import BalanceConfig
from sgdnoise.experiments.balance.run import run as run_balance
from sgdnoise.experiments.balance.results import BalanceResult
from sgdnoise.interrupts import announce_phase, stop_requested
from sgdnoise.problems.diagonal import DataMoments, DiagonalNetwork, TeacherStream
from sgdnoise.stats.fits import tail_fit
from sgdnoise.theory import balance as theory

#: Data of the density and inversion figures: T_c = 0.98, and lr = T keeps SGD close to its
#: SDE at small T (lr beta_1 = T / 100).
FIGURE_DATA = {"slope": 1.0, "noise_std": 1.0, "x_std": 0.1}
#: Data of the tail figure: the noise crossover sqrt(alpha_3/alpha_1) ~ the minimiser, so the
#: power law sets in within a decade of the bulk.
TAIL_DATA = {"slope": 1.0, "noise_std": 0.5, "x_std": 1.0}


@dataclass(frozen=True)
class DensitiesResult:
    """``ziyin-densities``: one ``balance`` run per case ``D<depth>_T<T>``.

    ``cases`` holds the cases that ran (all four unless a stop request ended the
    reproduction); ``status`` is ``completed`` or says which case stopped where and
    which did not run.
    """

    seed: int
    cases: dict[str, BalanceResult]
    status: str = "completed"

    def to_summary(self) -> dict[str, Any]:
        cases = {}
        for name, r in self.cases.items():
            sde = r.samples.get("sde")
            cases[name] = {"depth": r.config.depth, "T": r.T, "T_c": r.T_c, "status": r.status,
                           "distance": r.samples["sgd"].distance, "sde_distance": sde.distance if sde else None,
                           "predicted_variance": r.density.variance if r.density else None,
                           "sgd_variance": r.samples["sgd"].variance, "sde_variance": sde.variance if sde else None}
        return {"reproduction": "ziyin-densities", "seed": self.seed, "data": FIGURE_DATA, "cases": cases,
                "status": self.status}


#: The cases of ``ziyin-densities``: (depth, T).
DENSITY_CASES = [(D, T) for D in (0, 1) for T in (0.05, 0.5)]


def case_name(depth: int, T: float) -> str:
    """``D<depth>_T<T>``: the name of a case of ``ziyin-densities``."""
    return f"D{depth}_T{T:g}"


def cases_status(cases: dict[str, Any], names: list[str], what: str = "case") -> str:
    """``completed``, or the first case that did not complete (its own status) and those that did not run."""
    stopped = [f"{what} {name}: {r.status}" for name, r in cases.items() if r.status != "completed"]
    missing = [name for name in names if name not in cases]
    if missing:
        stopped.append(f"{what}{'s' if len(missing) > 1 else ''} {', '.join(missing)} not run (stop requested)")
    return "; ".join(stopped) or "completed"


def densities(seed: int, progress: bool = False) -> DensitiesResult:
    """Densities of ``v`` for ``D = 0, 1`` at ``T = 0.05, 0.5`` with SGD and SDE histograms."""
    cases = {}
    for depth, T in DENSITY_CASES:
        if stop_requested():
            break
        config = BalanceConfig(depth=depth, T=T, seed=seed, **FIGURE_DATA)
        cases[case_name(depth, T)] = run_balance(config, progress)
    status = cases_status(cases, [case_name(*case) for case in DENSITY_CASES])
    if status != "completed" and stop_requested():
        status = f"interrupted: {status}"
    return DensitiesResult(seed, cases, status)


def law_of_balance(seed: int, progress: bool = False) -> BalanceResult:
    """``ziyin-balance``: imbalance decay of SGD and the SDE, conservation by gradient flow, ``D = 2``."""
    return run_balance(BalanceConfig(depth=2, T=0.2, seed=seed, **FIGURE_DATA), progress)


@dataclass(frozen=True)
class TailDepth:
    """The tail of one depth: pooled SDE samples, their windowed fit and the theory."""

    depth: int
    density: theory.StationaryDensity
    fit: dict[str, float | None]
    window: tuple[float, float]
    expected_window: float
    asymptote: float
    pooled_samples: int
    edges: np.ndarray
    sample_density: np.ndarray
    interrupted_at: float | None = None

    def to_summary(self) -> dict[str, Any]:
        return {"fit": self.fit, "window": list(self.window), "expected_window": self.expected_window,
                "asymptote": self.asymptote, "pooled_samples": self.pooled_samples,
                "interrupted_at": self.interrupted_at}


@dataclass(frozen=True)
class TailResult:
    """``ziyin-tail``: tails for ``D = 1, 2`` and the approach to infinite depth at ``T D / d = tau``."""

    seed: int
    moments: DataMoments
    T: float
    replicas: int
    depths: dict[str, TailDepth]
    tau: float
    limit: theory.StationaryDensity
    finite: dict[int, theory.StationaryDensity]
    convergence: dict[int, float]
    status: str = "completed"

    def to_summary(self) -> dict[str, Any]:
        return {"reproduction": "ziyin-tail", "seed": self.seed, "data": TAIL_DATA,
                "moments": self.moments.as_dict(), "T": self.T, "replicas": self.replicas,
                "depths": {k: d.to_summary() for k, d in self.depths.items()},
                "infinite_depth": {"tau": self.tau, "sup_cdf_distance_to_limit": self.convergence},
                "status": self.status}


def _tail_depth(moments: DataMoments, depth: int, T: float, replicas: int, seed: int,
                window: tuple[float, float]) -> TailDepth:
    """SDE samples of depth ``depth`` pooled over 400 records after a burn-in of 10, fitted on ``window``."""
    announce_phase(f"tail-D{depth}")
    net = DiagonalNetwork(depth)
    density = theory.stationary_density(moments, depth, T)
    run = simulate_sde(net, moments, T, net.balanced(np.full(replicas, 1.0)), np.linspace(10.0, 210.0, 401),
                       0.01, seed=stream_seed(seed, "tail", f"D{depth}"))
    samples = run.v[1:]  # a run stopped early keeps the records before the stop
    pooled = np.abs(samples.ravel())
    edges = np.logspace(-2, 2.5, 60)
    counts, _ = np.histogram(pooled, bins=edges)
    return TailDepth(depth=depth, density=density, fit=tail_fit(samples, *window), window=window,
                     expected_window=theory.windowed_power_law_exponent(density, *window),
                     asymptote=theory.tail_exponent(depth), pooled_samples=int(pooled.size),
                     edges=edges, sample_density=counts / max(pooled.size, 1) / np.diff(edges),
                     interrupted_at=run.interrupted_at)


def tail(seed: int, progress: bool = False, replicas: int = 2000) -> TailResult:
    """Tails of the stationary density, ``D = 1, 2``, and the infinite-depth limit.

    SDE samples pooled over time after burn-in; the exponent fitted on ``[3, 30]`` is
    compared with the same fit applied to the density, and with the asymptote
    ``-5 + 3/(D+1)`` (docs/theory.md §6b).
    """
    moments = TeacherStream(**TAIL_DATA).moments
    T = 0.6 * theory.critical_temperature(moments, 1)
    depths = {}
    for depth in (1, 2):
        if stop_requested():
            break
        depths[f"D{depth}"] = _tail_depth(moments, depth, T, replicas, seed, (3.0, 30.0))
    status = "; ".join(f"interrupted: the SDE of D = {d.depth} stopped at t = {d.interrupted_at:.4g} of 210 "
                       f"({d.pooled_samples} samples pooled up to there)"
                       for d in depths.values() if d.interrupted_at is not None)
    missing = [f"D = {depth}" for depth in (1, 2) if f"D{depth}" not in depths]
    if missing:
        status = "; ".join(filter(None, [status or "interrupted", f"{' and '.join(missing)} not run (stop requested)"]))
    tau = 0.3
    limit = theory.infinite_depth_density(moments, tau)
    finite = {depth: theory.stationary_density(moments, depth, tau / depth) for depth in (1, 2, 5, 20, 100)}
    convergence = {depth: float(np.max(np.abs(d.cdf_at(limit.v) - limit.cdf))) for depth, d in finite.items()}
    return TailResult(seed=seed, moments=moments, T=T, replicas=replicas, depths=depths, tau=tau,
                      limit=limit, finite=finite, convergence=convergence, status=status or "completed")
