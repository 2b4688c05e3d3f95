"""``sgdnoise demo`` (what ``make demo`` runs): the same problem and SGD once per sampler.

The embedded teacher-student problem (N = 100, P = 200: a Hessian spectrum
spanning 1.5 decades around lambda_cross) is trained by SGD with momentum twice,
in epochs (without replacement) and with replacement; each run is a full
:class:`~sgdnoise.experiments.linear.run.LinearResult`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sgdnoise.interrupts import stop_requested
from sgdnoise.experiments.linear.config import DemoConfig, LinearConfig
from sgdnoise.experiments.linear.run import LinearResult, run_problem


@dataclass
class SamplerComparison:
    """Runs of the same problem and SGD, one per sampler (in the order given)."""

    runs: dict[str, LinearResult]
    settings: dict[str, Any]

    @property
    def status(self) -> str:
        """``completed``, or which samplers stopped early and why."""
        stopped = {s: r.status for s, r in self.runs.items() if r.status != "completed"}
        return "completed" if not stopped else "; ".join(f"{s}: {why}" for s, why in stopped.items())

    @property
    def markers(self) -> dict[str, float]:
        """lambda_cross and, from an epoch run, tau_SGD."""
        found: dict[str, float] = {}
        for result in self.runs.values():
            found.update(result.theory.get("markers", {}))
        return found


def run(config: DemoConfig, progress: bool = True, checkpoints: Any = None) -> SamplerComparison:
    """Each sampler of ``config.samplings`` on the problem of ``config`` (all checked before any work).

    ``checkpoints``: a folder; each sampler's simulation checkpoints there and resumes from it.
    """
    problem = config.problem()
    simulations = {s: config.simulation(problem, s) for s in config.samplings}
    runs = {}
    for sampling, simulation in simulations.items():
        if stop_requested() and runs:
            break
        if progress:
            print(f"demo: simulating {sampling} sampling ({simulation.replicas} replicas x "
                  f"{simulation.burn_in + simulation.steps} steps)")
        settings = {k: v for k, v in config.to_mapping().items() if k != "samplings"}
        runs[sampling] = run_problem(problem, simulation, progress,
                                     LinearConfig(**settings, sampling=sampling).to_mapping(), checkpoints)
    return SamplerComparison(runs, config.to_mapping())
