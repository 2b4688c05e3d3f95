"""Accuracy map of the epoch theories: how far each is from simulation (and the exact reference).

``sgdnoise reproduce epoch-accuracy-map``.  For every cell of :data:`GRID` (teacher-student
linear regression, one output, label noise 0.25, epoch sampling) the theories that apply to
epochs, ``kuehn-rosenow`` (docs/theory.md §3d), ``anticorrelated`` (§3e) and ``epoch`` (§3g), are
held against a simulation with replicas (:func:`sgdnoise.dynamics.simulator.simulate`) and, where
``P <= EXACT_MAX_P``, against the exact stationary moments of §3f
(:func:`sgdnoise.theory.epoch_exact_moments`), which have no sampling error.  Theories are
called only through :func:`sgdnoise.experiments.linear.comparison.predict`, so the map follows
any change of their implementation.

Errors per method and cell (relative errors ``theory / reference - 1``):

- ``trace_relative_error`` of ``sum_i Var theta_i``, with the simulation's standard error
  propagated (``theory * se / measured^2``);
- ``max_abs_relative_error`` and ``median_abs_relative_error`` over the equilibrated
  eigendirections, with standard errors by a parametric bootstrap: the measured variances are
  redrawn from ``N(value, stderr^2)`` (``BOOTSTRAP`` draws) and the statistic recomputed.  The
  largest of many noisy errors is biased upward by the noise; the bootstrap standard error says
  by about how much.

The abscissa of the map is the strength of the weight-dependent noise,
``lr tr H / (S (1 - beta))`` (for these features ``tr H ~= 1``): the ratio of the weight-dependent
part of the one-step noise to the part at w* scales with it (README, "In linear regression ...").
Every cell's simulation runs at least 12 relaxation times of burn-in and 60 of measurement of its
slowest direction, so every direction is equilibrated.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sgdnoise._spec import rng
from sgdnoise.dynamics.simulator import SimulationConfig, SimulationResult, relaxation_steps, simulate
from sgdnoise.experiments.linear.comparison import predict
from sgdnoise.experiments.linear.config import DemoConfig
from sgdnoise.interrupts import stop_requested
from sgdnoise.problems.linear import LinearRegression
from sgdnoise.theory import epoch_exact_moments

#: The theories that apply to epoch sampling, in the order of the figure and the table.
METHODS = ("kuehn-rosenow", "anticorrelated", "epoch")
#: The exact reference (docs/theory.md §3f) is computed for P up to this.
EXACT_MAX_P = 16
#: Parametric bootstrap draws for the standard errors of the max and median |relative error|.
BOOTSTRAP = 2000
LABEL_NOISE = 0.25


@dataclass(frozen=True)
class Cell:
    """One point of the map: N, P, S, lr, beta (teacher-student data, label noise 0.25)."""

    N: int
    P: int
    S: int
    lr: float
    beta: float
    name: str = ""

    @property
    def label(self) -> str:
        base = f"N={self.N} P={self.P} S={self.S} lr={self.lr:g} beta={self.beta:g}"
        return f"{self.name}: {base}" if self.name else base


def _demo_cell() -> Cell:
    demo = DemoConfig()
    problem = demo.problem()
    return Cell(problem.n_features, problem.n_examples, demo.batch_size, demo.lr, demo.momentum, "demo")


#: The grid: the demo problem (DemoConfig), the small case of issue 10, two cells with an exact
#: reference (P <= 16), and cells that vary N, P/N, S, lr and beta across strengths 0.02 .. 1.3.
GRID = (
    _demo_cell(),
    Cell(10, 40, 4, 2.0, 0.0, "small"),
    Cell(4, 16, 4, 1.0, 0.0, "exact-A"),
    Cell(4, 12, 2, 1.0, 0.5, "exact-B"),
    Cell(10, 40, 1, 0.5, 0.0),
    Cell(10, 40, 4, 0.1, 0.0),
    Cell(10, 40, 4, 0.5, 0.9),
    Cell(20, 40, 4, 1.0, 0.0),
    Cell(20, 80, 4, 0.2, 0.9),
    Cell(20, 160, 8, 1.0, 0.5),
    Cell(30, 120, 10, 0.2, 0.0),
    Cell(30, 120, 4, 1.0, 0.5),
    Cell(50, 100, 5, 0.5, 0.9),
)


@dataclass
class CellResult:
    """One cell: the measurement, each method's errors, and (P <= 16) the errors against the exact moments."""

    cell: Cell
    strength: float
    simulation: SimulationConfig
    measured: SimulationResult
    errors: dict[str, dict[str, Any]]
    exact_errors: dict[str, dict[str, Any]] | None
    seconds: dict[str, float]
    predictions: dict[str, Any] = field(repr=False, default_factory=dict)


@dataclass
class EpochMap:
    """Every cell computed (in the order of ``GRID``) and where the run stopped."""

    cells: list[CellResult]
    seed: int
    grid: tuple[Cell, ...]
    seconds: float

    @property
    def status(self) -> str:
        done = len(self.cells)
        return ("completed" if done == len(self.grid) else
                f"interrupted after {done} of {len(self.grid)} cells (the cell in progress is not kept)")


def simulation_config(problem: LinearRegression, cell: Cell, seed: int, replicas: int = 16) -> SimulationConfig:
    """Epoch sampling, >= 12 relaxation times of burn-in and >= 60 of measurement (the demo keeps its own)."""
    if cell.name == "demo":
        demo = DemoConfig(seed=seed)
        return dataclasses.replace(demo.simulation(problem, "epoch"), max_lag=0, full_covariance=False)
    slowest = float(relaxation_steps(problem.hessian_eigenvalues, cell.lr, cell.beta).max())
    return SimulationConfig(lr=cell.lr, batch_size=cell.S, momentum=cell.beta, sampling="epoch",
                            steps=int(max(20_000, 60 * slowest)), burn_in=int(max(2_000, 12 * slowest)),
                            replicas=replicas, seed=seed)


def relative_errors(theory: np.ndarray, value: np.ndarray, stderr: np.ndarray | None,
                    generator: np.random.Generator) -> dict[str, Any]:
    """max and median of |theory / value - 1| over directions, with bootstrap standard errors.

    ``stderr`` None: the reference is exact; the standard errors are 0.
    """
    rel = theory / value - 1
    worst = int(np.argmax(np.abs(rel)))
    out = {"max_abs_relative_error": float(np.abs(rel).max()),
           "median_abs_relative_error": float(np.median(np.abs(rel))),
           "worst_direction": worst, "worst_relative_error": float(rel[worst]), "directions": int(rel.size)}
    if stderr is None:
        out.update(max_abs_relative_error_stderr=0.0, median_abs_relative_error_stderr=0.0)
        return out
    draws = value + stderr * generator.standard_normal((BOOTSTRAP, value.size))
    rel_b = np.abs(theory / draws - 1)
    out["max_abs_relative_error_stderr"] = float(rel_b.max(axis=1).std())
    out["median_abs_relative_error_stderr"] = float(np.median(rel_b, axis=1).std())
    return out


def method_errors(values: dict[str, Any], measured: SimulationResult,
                  generator: np.random.Generator) -> dict[str, Any]:
    """Trace and per-direction relative errors of one method's prediction against the simulation."""
    if "error" in values:
        return {"error": values["error"]}
    trace = measured.var_theta_trace
    ok = measured.equilibrated & (measured.var_theta.stderr > 0)
    out = {"trace_relative_error": float(values["trace"] / trace.value - 1),
           "trace_relative_error_stderr": float(values["trace"] * trace.stderr / trace.value ** 2)}
    out.update(relative_errors(np.asarray(values["var_theta"])[ok], measured.var_theta.value[ok],
                               measured.var_theta.stderr[ok], generator))
    out["worst_eigenvalue"] = float(measured.hessian_eigenvalues[ok][out.pop("worst_direction")])
    return out


def exact_errors(problem: LinearRegression, cell: Cell, predictions: dict[str, Any],
                 measured: SimulationResult) -> dict[str, dict[str, Any]]:
    """Errors against the exact moments (§3f), and the simulation's own z-scores against them."""
    exact = epoch_exact_moments(problem.X, problem.Y[:, 0], cell.lr, cell.S, cell.beta)
    out: dict[str, dict[str, Any]] = {}
    for method, values in predictions.items():
        if "error" in values:
            out[method] = {"error": values["error"]}
            continue
        entry = {"trace_relative_error": float(values["trace"] / exact.var_theta.sum() - 1),
                 "trace_relative_error_stderr": 0.0}
        entry.update(relative_errors(np.asarray(values["var_theta"]), exact.var_theta, None, None))
        entry.pop("worst_direction")
        out[method] = entry
    z = (measured.var_theta.value - exact.var_theta) / measured.var_theta.stderr
    out["simulation"] = {
        "trace_relative_error": float(measured.var_theta_trace.value / exact.var_theta.sum() - 1),
        "trace_z": float((measured.var_theta_trace.value - exact.var_theta.sum()) / measured.var_theta_trace.stderr),
        "max_abs_z": float(np.abs(z).max()), "exact_residual": float(exact.residual)}
    return out


def run_cell(cell: Cell, seed: int, progress: bool = False) -> CellResult | None:
    """Simulate one cell, predict with every method of :data:`METHODS`, and compare.

    None if a stop was requested (Ctrl-C) before the cell's theory was complete: a cell is kept
    only whole (its full simulation and every method), so the stop does not wait for the theory.
    """
    problem = LinearRegression.teacher_student(cell.N, cell.P, LABEL_NOISE, seed=seed)
    config = simulation_config(problem, cell, seed)
    strength = cell.lr * float(np.trace(problem.hessian)) / (cell.S * (1 - cell.beta))
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    measured = simulate(problem, config, progress=progress)
    seconds["simulation"] = time.perf_counter() - start
    predictions: dict[str, Any] = {}
    for method in METHODS:
        if stop_requested():
            return None
        start = time.perf_counter()
        try:
            predictions.update(predict(problem, config, only=(method,))["methods"])
        except (ArithmeticError, ValueError, np.linalg.LinAlgError) as exc:  # say so, keep the other methods
            predictions[method] = {"error": f"{type(exc).__name__}: {exc}"}
        seconds[method] = time.perf_counter() - start
    generator = rng(seed, "epoch-map-bootstrap", cell.label)
    errors = {m: method_errors(predictions[m], measured, generator) for m in METHODS}
    exact = None
    if stop_requested():
        return None
    if cell.P <= EXACT_MAX_P:
        start = time.perf_counter()
        exact = exact_errors(problem, cell, predictions, measured)
        seconds["exact"] = time.perf_counter() - start
    return CellResult(cell, strength, config, measured, errors, exact, seconds, predictions)


def run(seed: int = 0, progress: bool = True, grid: tuple[Cell, ...] = GRID) -> EpochMap:
    """Every cell of ``grid`` in turn; stops between cells when asked (Ctrl-C) and says where."""
    start = time.perf_counter()
    cells = []
    for i, cell in enumerate(grid):
        if stop_requested():
            break
        if progress:
            print(f"epoch-accuracy-map: cell {i + 1}/{len(grid)} {cell.label}", flush=True)
        done = run_cell(cell, seed, progress=False)
        if done is None:
            break
        cells.append(done)
    return EpochMap(cells, seed, grid, time.perf_counter() - start)
