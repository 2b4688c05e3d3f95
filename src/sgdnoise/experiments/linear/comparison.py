"""Theory next to measurement for quadratic problems: every method that applies, and how far off it is.

For a run of the simulator this module evaluates each theory of
:mod:`sgdnoise.theory` that fits the problem and the sampler, projects it onto
the Hessian eigendirections (``diag(V^T Sigma V)``, the order of
``hessian_eigenvalues``), and compares it with the measurement: the relative
error of the trace and the largest z-score over equilibrated directions.
Which method is exact for which setting is stated in the output (``exact_here``):

=====================  ==========================  =============================
problem                independent steps            epochs (without replacement)
=====================  ==========================  =============================
linear regression      ``exact`` (docs/theory.md §3c)     none (state-dependent noise);
                                                    ``epoch`` approximates it (§3k)
additive noise         ``discrete``, Kuehn-Rosenow  ``anticorrelated``, Kuehn-Rosenow
=====================  ==========================  =============================

Method ``epoch`` (linear regression, one output, epoch sampling) is
:func:`sgdnoise.theory.epoch_method.epoch_method_moments` (docs/theory.md §3m): the compact
usage-correlation closure (§3k) where it takes at most ``COMPACT_SECONDS`` (estimated), beyond
that its Gaussian-moment form (§3l, rescaled by each direction's noise strength) for data whose
fourth moments are near-Gaussian, and §3h's epoch-start correction where the batch size divides P.
``data_moments`` and ``start_correction`` in its entry say which ran.  A §3k solve estimated above
``EPOCH_MAX_SECONDS``, or any solve above ``EPOCH_MAX_BYTES`` of memory, is skipped with the reason.

``fixed-order`` sampling is periodic; no method describes it exactly.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from sgdnoise._spec import INDEPENDENT_SAMPLINGS as INDEPENDENT
from sgdnoise.dynamics.simulator import SimulationConfig, SimulationResult
from sgdnoise.errors import UsageError
from sgdnoise.problems.linear import QuadraticProblem
from sgdnoise.theory import (
    batch_noise_factor,
    kuehn_rosenow,
    lambda_cross,
    per_example_covariance,
    quadratic_stationary_covariance,
    stationary_covariance,
    tau_sgd,
)
from sgdnoise.interrupts import StopRequested
from sgdnoise.theory.epoch_compact import compact_cost
from sgdnoise.theory.epoch_method import COMPACT_SECONDS, epoch_method_moments

#: Largest estimated run time (s) and memory (bytes) for which ``predict`` computes method ``epoch``.
EPOCH_MAX_SECONDS = 120.0
EPOCH_MAX_BYTES = 2e9
EPOCH_NOTE = ("epoch (docs/theory.md §3k, §3h) is an approximation, the compact usage-correlation closure "
              "with the epoch-start variance of the slow directions from the second-order epoch kick: "
              "against simulation trace within 4 %, per direction within 7 % (N=10, P=40, S=4) up to "
              "13 % in the flattest and stiffest directions (demo N=100, P=200, S=10, beta=0.9)")



#: How ``theory.epoch["error"]`` begins when a signal stopped the closure (the run's status says so too).
STOPPED = "skipped: stopped by"


def methods_for(problem: QuadraticProblem, sampling: str) -> list[str]:
    """The Lyapunov-type methods that apply to this problem and sampler."""
    methods = ["continuum", "discrete", "detailed-balance"]
    if sampling in INDEPENDENT and problem.kind == "linear":
        methods.insert(0, "exact")
    if sampling == "epoch":
        methods.append("anticorrelated")
        if problem.kind == "linear" and problem.Y.shape[1] == 1:
            methods.append("epoch")
    return methods


def epoch_prediction(problem: QuadraticProblem, config: SimulationConfig) -> dict[str, Any]:
    """Method ``epoch`` (docs/theory.md §3m: §3k or §3l, with §3h's start correction): ``var_theta``, ``var_v``, ``tau``, or why it was skipped."""
    P, N = problem.X.shape
    size = compact_cost(P, N, config.batch_size)[1]
    if size > EPOCH_MAX_BYTES:
        return {"error": f"skipped: the epoch closure needs about {size / 1e9:.1f} GB here (limit "
                         f"{EPOCH_MAX_BYTES / 1e9:.0f} GB; sgdnoise.theory.stationary_covariance(..., "
                         f"method='epoch') computes it regardless)", "exact_here": False}
    try:
        method = epoch_method_moments(problem.X, problem.Y[:, 0], config.lr, config.batch_size, config.momentum,
                                      max_seconds=EPOCH_MAX_SECONDS)
    except UsageError as refused:
        return {"error": f"skipped: {refused}; sgdnoise.theory.stationary_covariance(..., method='epoch') "
                         "computes it regardless", "exact_here": False}
    except StopRequested as stop:
        return {"error": f"{STOPPED} {stop} before the epoch closure finished", "exact_here": False}
    moments = method.moments
    with np.errstate(divide="ignore", invalid="ignore"):
        tau = np.where(moments.var_v > 0, 2 * moments.var_theta / moments.var_v, np.nan)
    out = {"var_theta": moments.var_theta, "var_v": moments.var_v, "tau": tau,
           "trace": float(np.sum(moments.var_theta)), "exact_here": False,
           "start_correction": method.start_correction, "data_moments": method.data_moments}
    notes = []
    if method.data_moments == "gaussian":
        notes.append(f"epoch: the compact closure (§3k) would take over {COMPACT_SECONDS:.0f} s here, so its "
                     f"Gaussian-moment form ran (§3l, O(N^2) per step, rescaled by each direction's noise "
                     f"strength; the data's fourth moments are {method.moment_deviation:.1%} from Gaussian; "
                     "docs/theory.md §3m)")
    if not method.start_correction:
        notes.append(f"epoch: the §3h start correction is not applied (batch size {config.batch_size} does not "
                     f"divide P = {P}: {P % config.batch_size} examples are dropped each epoch, their first-order "
                     "kick dominates and the closure alone holds it; docs/theory.md §3h, Dropped examples)")
    if notes:
        out["note"] = "; ".join(notes)
    return out


def exact_methods(problem: QuadraticProblem, sampling: str) -> set[str]:
    """Methods that are exact (up to statistics) for this problem and sampler."""
    if problem.kind == "linear":
        return {"exact"} if sampling in INDEPENDENT else set()
    if sampling in INDEPENDENT:
        return {"discrete", "kuehn-rosenow"}
    return {"anticorrelated", "kuehn-rosenow"} if sampling == "epoch" else set()


def noise_covariance_at_minimum(problem: QuadraticProblem, config: SimulationConfig) -> np.ndarray:
    """One-step noise covariance C at the minimiser, in weight coordinates (d x d)."""
    factor = batch_noise_factor(config.sampling, problem.n_examples, config.batch_size)
    return factor * per_example_covariance(problem.per_example_gradients())


def predict(problem: QuadraticProblem, config: SimulationConfig,
            only: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Every applicable theory's ``var_theta`` per Hessian eigendirection (and ``trace``).

    Returns ``{"methods": {name: {...}}, "markers": {...}}``; Kuehn-Rosenow also
    gives ``var_v`` and ``tau``.  ``only``: compute just these of the applicable methods.
    """
    V = problem.eigenbasis_matrix()
    lam = problem.hessian_eigenvalues
    exact = exact_methods(problem, config.sampling)
    C = noise_covariance_at_minimum(problem, config)
    M = problem.n_examples // config.batch_size
    out: dict[str, Any] = {}
    for method in methods_for(problem, config.sampling):
        if only is not None and method not in only:
            continue
        try:
            if method == "epoch":
                out[method] = epoch_prediction(problem, config)
                continue
            if problem.kind == "linear":
                sigma = stationary_covariance(problem.X, problem.Y, config.lr, config.batch_size,
                                              config.momentum, config.sampling, method)
            else:
                sigma = quadratic_stationary_covariance(problem.hessian, C, config.lr, config.momentum,
                                                        method, M if method == "anticorrelated" else 1)
        except UsageError as exc:  # e.g. no stationary state: say so instead of a number
            out[method] = {"error": str(exc), "exact_here": method in exact}
            continue
        var_theta = np.einsum("ij,ik,kj->j", V, sigma, V)
        out[method] = {"var_theta": var_theta, "trace": float(np.trace(sigma)),
                       "exact_here": method in exact}
    if config.sampling != "fixed-order" and (only is None or "kuehn-rosenow" in only):
        noise_var = np.einsum("ij,ik,kj->j", V, C, V)
        kr = kuehn_rosenow(lam, noise_var, config.lr, config.momentum,
                           M if config.sampling == "epoch" else 1)
        out["kuehn-rosenow"] = {"var_theta": kr.var_theta, "var_v": kr.var_v, "tau": kr.tau,
                                "trace": float(np.sum(kr.var_theta)),
                                "exact_here": "kuehn-rosenow" in exact}
    markers = {"lambda_cross": lambda_cross(config.lr, config.momentum, config.batch_size,
                                            problem.n_examples)}
    if config.sampling == "epoch":
        markers["tau_SGD"] = tau_sgd(config.momentum, M)
    return {"methods": out, "markers": markers}


def compare(prediction: dict[str, Any], result: SimulationResult) -> dict[str, Any]:
    """Per method: relative error of the trace, its z-score, and the largest |z| over directions.

    z-scores use the measurement's standard errors and only the equilibrated
    directions (``result.equilibrated``); ``directions_compared`` says how many.
    """
    measured_trace = result.var_theta_trace
    ok = result.equilibrated & np.isfinite(result.var_theta.stderr) & (result.var_theta.stderr > 0)
    table: dict[str, Any] = {}
    for method, values in prediction["methods"].items():
        if "error" in values:
            table[method] = {"error": values["error"], "exact_here": values["exact_here"]}
            continue
        theory = np.asarray(values["var_theta"])
        z = (result.var_theta.value[ok] - theory[ok]) / result.var_theta.stderr[ok]
        entry = {
            "trace_relative_error": (values["trace"] - measured_trace.value) / measured_trace.value,
            "trace_z": (values["trace"] - measured_trace.value) / measured_trace.stderr,
            "max_abs_z": float(np.max(np.abs(z))) if z.size else None,
            "directions_compared": int(ok.sum()),
            "exact_here": values["exact_here"],
        }
        for key in ("var_v", "tau"):
            if key in values:
                est = getattr(result, key)
                zk = (est.value[ok] - np.asarray(values[key])[ok]) / est.stderr[ok]
                entry[f"max_abs_z_{key}"] = float(np.max(np.abs(zk))) if zk.size else None
        table[method] = entry
    return table


def theory_block(problem: QuadraticProblem, config: SimulationConfig,
                 result: SimulationResult) -> dict[str, Any]:
    """The ``theory`` block of summary.json: predictions, markers and the comparison."""
    if problem.kind == "linear" and np.max(np.abs(problem.residuals)) <= 1e-10 * np.max(np.abs(problem.Y)):
        return {"note": "the data are interpolated (P <= N or noiseless labels): the gradient noise "
                        "vanishes at w*, SGD started there does not move, and every theory predicts "
                        "zero fluctuations; nothing to compare", "comparison": {}}
    prediction = predict(problem, config)
    block: dict[str, Any] = {name: values for name, values in prediction["methods"].items()}
    block["markers"] = prediction["markers"]
    if result.diverged_at is not None:
        block["comparison"] = {}
        block["note"] = (f"the run diverged at step {result.diverged_at}: its statistics are not "
                         "stationary; predictions shown, nothing compared")
        return block
    block["comparison"] = compare(prediction, result)
    exact = sorted(exact_methods(problem, config.sampling))
    block["note"] = (f"exact for this setting: {', '.join(exact)}" if exact else
                     "no method is exact for this setting (state-dependent noise with correlated "
                     "or periodic batches); the differences measure the approximations")
    if "epoch" in block:
        block["note"] += "; " + EPOCH_NOTE + ("; " + block["epoch"]["note"] if "note" in block["epoch"] else "")
    return block
