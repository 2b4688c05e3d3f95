"""``sgdnoise balance``: noise balance and stationary distributions of diagonal linear networks.

Reproduces Ziyin, Li, Ueda, "Noise balance and stationary distribution of
stochastic gradient descent" (arXiv 2308.06671; docs/theory.md §6):

problem
    one-dimensional regression ``y = k x + eps`` (or a data file) fitted by
    ``v = sum_i prod_k u_i^(k)`` (:mod:`sgdnoise.problems.diagonal`);
dynamics
    SGD on many independent replicas and the SDE of SGD
    (:mod:`sgdnoise.dynamics.balance_sgd`);
theory
    law of balance, stationary densities, ``T_c``, tails (:mod:`sgdnoise.theory.balance`);
comparison
    Kolmogorov-Smirnov distance of the final ``v`` of the replicas (independent
    samples) to the density, with its critical value and its null distribution;
    measured against predicted decay rate of the layer imbalances.

Random numbers come from named streams of the seed (:func:`sgdnoise._spec.stream_seed`):
``sgd`` and ``sde`` for the density runs, ``balance/sgd``, ``balance/sde`` and
``balance/gradient-flow`` for the imbalance runs.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from sgdnoise._spec import stream_seed
from sgdnoise.dynamics.balance_sgd import BalanceRun, simulate_sde, simulate_sgd
from sgdnoise.experiments.balance.analysis import balance_rates, compare_samples, stationary_rate
from sgdnoise.experiments.balance.config import BalanceConfig
from sgdnoise.experiments.balance.problem import (
    build,
    density_or_reason,
    minimiser,
    relaxation_time,
    unbalanced,
)
from sgdnoise.experiments.balance.results import BalanceRates, BalanceResult
from sgdnoise.experiments.balance.resume import RunCheckpoint
from sgdnoise.interrupts import stop_requested
from sgdnoise.problems.diagonal import DataMoments, Dataset, DiagonalNetwork, TeacherStream
from sgdnoise.theory import balance as theory


def _balance_runs(config: BalanceConfig, net: DiagonalNetwork, data: TeacherStream | Dataset,
                  moments: DataMoments, v0: float, max_steps: int, progress: bool,
                  saved: RunCheckpoint) -> dict[str, BalanceRun]:
    """SGD, the SDE and gradient flow from unbalanced layers at ``v0 / 2``.

    About 15 decay times of the imbalance at ``v0`` (at most ``max_steps``, at least one
    step per record); starting away from the minimiser makes gradient flow move (and
    conserve the imbalance).
    """
    T, lr = config.temperature, config.learning_rate
    rate_guess = float(theory.balance_rate(moments, v0, T, net.weight_decay,
                                           abs(v0 / net.width) ** (2.0 * (net.depth - 1) / (net.depth + 1))))
    steps = max(config.records, min(max_steps, round(15.0 / rate_guess / lr)))
    every = max(1, steps // config.records)
    theta = unbalanced(net, 0.5 * v0, config.balance_replicas, config.imbalance)
    runs = {"sgd": saved.simulate("balance-sgd", lambda c: simulate_sgd(
        net, data, lr, config.batch, theta, steps, every, stream_seed(config.seed, "balance", "sgd"), progress,
        checkpoint=c))}
    times = runs["sgd"].times
    if config.sde and not stop_requested():
        runs["sde"] = saved.simulate("balance-sde", lambda c: simulate_sde(
            net, moments, T, theta, times, config.tol, seed=stream_seed(config.seed, "balance", "sde"),
            progress=progress, checkpoint=c))
    if not stop_requested():
        runs["gradient_flow"] = saved.simulate("gradient-flow", lambda c: simulate_sde(
            net, moments, 0.0, theta[:1], times, config.tol,
            seed=stream_seed(config.seed, "balance", "gradient-flow"), checkpoint=c))
    return runs


def _rates(runs: dict[str, BalanceRun], moments: DataMoments, T: float, net: DiagonalNetwork,
           density: theory.StationaryDensity | None, config: BalanceConfig,
           data: TeacherStream | Dataset) -> BalanceRates:
    """The law-of-balance comparison of the imbalance runs."""
    stationary = stationary_rate(moments, T, net, density)
    flow = runs["gradient_flow"].imbalance[:, 0, :]
    return BalanceRates(
        pairs=balance_rates(runs["sgd"], moments, T, net, stationary,
                            (data, config.learning_rate, config.batch)),
        sde=balance_rates(runs["sde"], moments, T, net, stationary) if "sde" in runs else None,
        gradient_flow_max_relative_change=float(np.max(np.abs(flow / flow[0] - 1))))


def run(config: BalanceConfig, progress: bool = True, checkpoints: Path | None = None) -> BalanceResult:
    """Run the experiment of ``config``; with ``checkpoints`` (a folder), resumably.

    With ``checkpoints`` the simulations save their state there and a restarted run continues
    from it, bit-identical to an uninterrupted run (:mod:`.resume`); the file is deleted
    once the run completes.

    Steps: (1) build the problem (data checks); (2) theory: ``T_c``, density, tail exponent;
    (3) SGD (and the SDE) from the balanced minimiser, final ``v`` compared with the density;
    (4) for ``D >= 1`` SGD, the SDE and gradient flow from unbalanced layers, imbalance
    decay compared with the law of balance (docs/theory.md §6a, §6b).
    """
    net, data, moments = build(config)
    start = time.perf_counter()
    T, lr = config.temperature, config.learning_rate
    density, regime = density_or_reason(moments, net, T)
    v_star = minimiser(moments, net)
    scale = theory.v_scale(moments)
    duration = config.time or 40.0 * relaxation_time(moments, net, v_star, T)
    steps = max(1, round(duration / lr))
    v0 = v_star if v_star != 0 else math.copysign(1e-3 * scale, moments.beta2)
    theta0 = net.balanced(np.full(config.replicas, v0))
    saved = RunCheckpoint(checkpoints, config.to_mapping())
    runs = {"sgd": saved.simulate("sgd", lambda c: simulate_sgd(
        net, data, lr, config.batch, theta0, steps, max(1, steps // config.records),
        stream_seed(config.seed, "sgd"), progress, checkpoint=c))}
    if config.sde and not stop_requested():
        runs["sde"] = saved.simulate("sde", lambda c: simulate_sde(
            net, moments, T, theta0, runs["sgd"].times, config.tol, seed=stream_seed(config.seed, "sde"),
            progress=progress, checkpoint=c))
    balance_runs = _balance_runs(config, net, data, moments, v0, steps, progress, saved) \
        if net.depth >= 1 and not stop_requested() else {}
    complete = {"gradient_flow"} <= set(balance_runs) and not any(
        r.interrupted_at is not None for r in balance_runs.values())
    result = BalanceResult(
        config=config, moments=moments, T=T, lr=lr,
        T_c=theory.critical_temperature(moments, net.depth, net.weight_decay), regime=regime,
        tail_exponent=theory.tail_exponent(net.depth, moments, T, net.width, net.weight_decay),
        steps=int(steps), density=density,
        samples={name: compare_samples(r, density, scale) for name, r in runs.items()},
        balance=_rates(balance_runs, moments, T, net, density, config, data) if complete else None,
        runs=runs, balance_runs=balance_runs, runtime_s=time.perf_counter() - start,
        status=run_status(config, runs, balance_runs, steps * lr))
    if not result.status.startswith("interrupted"):
        saved.remove()
    return result


def run_status(config: BalanceConfig, runs: dict[str, BalanceRun], balance_runs: dict[str, BalanceRun],
               duration: float) -> str:
    """``completed``; or where a stop request ended the run; or how many replicas diverged."""
    labels = {"sgd": "SGD", "sde": "the SDE", "gradient_flow": "gradient flow"}
    phases = [(labels[k], r) for k, r in runs.items()] + \
        [(f"the imbalance-decay runs ({labels[k]})", r) for k, r in balance_runs.items()]
    for label, r in phases:
        if r.interrupted_at is not None:
            return (f"interrupted during {label} at t = {r.interrupted_at:.4g} (density runs last "
                    f"{duration:.4g}); the runs after it did not start, the results hold what was measured")
    if stop_requested() and (config.sde and "sde" not in runs
                             or config.depth >= 1 and "gradient_flow" not in balance_runs):
        return "interrupted between runs; the runs after it did not start"
    diverged = [f"{int(r.diverged.sum())} of {r.diverged.size} replicas of {label}"
                for label, r in phases if r.diverged.any()]
    if diverged:
        return (f"diverged: {', '.join(diverged)} (|v| beyond 1e150 or not finite); the statistics use "
                f"the others; lower {'--T' if config.T is not None else '--lr'}")
    return "completed"


def status(result: BalanceResult) -> int:
    """0 when the run completed; 1 when replicas diverged or a stop request ended it."""
    return 0 if result.status == "completed" else 1
