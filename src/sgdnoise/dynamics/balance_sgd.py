r"""SGD and its continuous SDE for diagonal linear networks, many replicas at once.

Model and loss of :mod:`sgdnoise.problems.diagonal`: ``v = sum_i prod_k u_i^(k)``,
``l = (v x - y)^2 + gamma |theta|^2``; parameters of R replicas are one array
``theta`` of shape (R, d, D + 1).

:func:`simulate_sgd`
    mini-batch SGD, ``theta <- theta - lr [(2/S) sum_s x_s (v x_s - y_s) grad v + 2 gamma theta]``,
    the batches drawn by a data source (:class:`~sgdnoise.problems.diagonal.TeacherStream`
    or :class:`~sgdnoise.problems.diagonal.Dataset`); time is ``t = lr * step``.
:func:`simulate_sde`
    the Ito SDE of SGD with the exact state-dependent (rank-one) noise
    (Ziyin, Li, Ueda, arXiv 2308.06671, eq. of continuous SGD; docs/theory.md §6)

    .. math::

        d\theta = -\big[2(\beta_1 v - \beta_2)\nabla v + 2\gamma\theta\big] dt
                   + 2\sqrt{T g(v)}\, \nabla v\, dW_t,

    one scalar Brownian motion per replica, integrated by Euler-Maruyama with a
    state-dependent step (Kelly & Lord, IMA J. Numer. Anal. 38, 2018: adaptive steps
    for non-globally-Lipschitz SDEs).  The SDE is stiff at large ``|v|``: the noise
    coefficient grows like ``sqrt(T alpha_1) |v| |grad v|``, and fixed explicit steps
    throw replicas to absurd values (docs/theory.md §6).  Here each replica takes

    .. math::

        \Delta t = \min\Big(\Delta t_{\max},
            \frac{\epsilon}{2\beta_1 |\nabla v|^2 + \rho |m| + 2\gamma},
            \frac{\epsilon}{(|\sigma'(v)| |\nabla v|^2 + \rho\, \sigma(v))^2}\Big),
        \qquad \sigma(v) = 2\sqrt{T g(v)},

    with ``rho`` a Gershgorin bound on the Hessian of ``v``: the bounds on the
    Jacobians of drift and noise, so that one step moves the state by at most a
    fraction ``~ sqrt(epsilon)`` of its scale.  The step depends on the state only
    (not on the increment drawn), which keeps the scheme consistent; the weak
    error is ``O(epsilon)``.

Both record, at the requested times, the output of every path, the
imbalances ``u_k^2 - u_{k+1}^2`` of consecutive layers of path 0 and their sums over
the paths (``D = 1``: ``|u|^2 - |w|^2``), and accumulate along each path the sums over
steps of ``dt`` and ``dt^2`` times ``P_k``, ``v P_k`` and ``v^2 P_k`` and of
``dt^2 P_k^2 v^j`` (``j = 0..4``) with ``P_k = prod_{j != k, k+1} u_j^2`` (path 0): the
time integrals from which the experiment forms the predicted decay of each
imbalance (law of balance) and its discrete-time corrections, without this module
knowing the theory.  The inner loops (:mod:`.balance_kernels`) are compiled with
numba; replicas are independent and run in parallel threads; random numbers come
from a NumPy generator, so the same seed gives the same numbers.

Both resume: given a ``checkpoint`` (:class:`Resumable`), a run continues from its saved
state and saves the full state (parameters, generator, records) between chunks when it is
due and when a stop request ends the run, so that a run killed and restarted gives the
same numbers, bit for bit, as an uninterrupted one.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from tqdm.auto import tqdm

from sgdnoise._spec import check_int, check_positive, check_real
from sgdnoise.dynamics.balance_kernels import DIVERGED, N_INTEGRALS, _sde_steps, _sgd_steps
from sgdnoise.errors import UsageError
from sgdnoise.interrupts import stop_requested
from sgdnoise.problems.diagonal import DataMoments, Dataset, DiagonalNetwork, TeacherStream

__all__ = ["DIVERGED", "BalanceRun", "Resumable", "simulate_sde", "simulate_sgd"]

CHUNK_VALUES = 2_000_000  # random numbers drawn per call of a kernel
#: What seeds a run: an integer, a seed sequence (a named stream) or a generator.
Seed = int | np.random.SeedSequence | np.random.Generator


class Resumable(Protocol):
    """Where a simulation saves its state: ``state`` (None, or the state to resume from),
    ``due()`` (whether to save now) and ``save(state)``."""

    state: dict[str, Any] | None

    def due(self) -> bool: ...

    def save(self, state: dict[str, Any]) -> None: ...


@dataclass
class BalanceRun:
    """What a run of :func:`simulate_sgd` or :func:`simulate_sde` records.

    Attributes
    ----------
    times : ndarray (n,)
        Record times (SGD: ``lr * step``).
    path_outputs : ndarray (n, R, d)
        ``prod_k u_i^(k)`` of every path; ``v`` is their sum (:attr:`v`).
    imbalance : ndarray (n, R, D)
        ``u_k^2 - u_{k+1}^2`` for the consecutive layers of path 0.
    integrals : ndarray (n, R, D, 11)
        Sums over the steps so far of ``dt (P_k, v P_k, v^2 P_k)``, of
        ``dt^2 (P_k, v P_k, v^2 P_k)`` and of ``dt^2 P_k^2 v^j``, ``j = 0..4``, along each
        replica (module docstring).
    theta : ndarray (R, d, D + 1)
        Final parameters.
    diverged : ndarray (R,) of bool
        Replicas whose ``|v|`` exceeded ``DIVERGED`` or became non-finite (SGD only);
        their records after that are frozen.
    steps : ndarray (R,)
        Steps taken by each replica.
    interrupted_at : float or None
        The time at which a stop request (Ctrl-C, SIGTERM; :func:`sgdnoise.interrupts.stop_requested`,
        asked between chunks of steps) ended the run; the records stop there (SGD records the
        state at that time last; the SDE keeps the records before it).  None: the run completed.
    summed_imbalance : ndarray (n, R, D)
        ``sum_i (u_ik^2 - u_i,k+1^2)`` over the paths (``D = 1``: ``|u|^2 - |w|^2``).
    others : ndarray (n, R, D)
        ``P_k = prod_{j != k, k+1} u_0j^2`` of path 0 at the record times.
    """

    times: np.ndarray
    path_outputs: np.ndarray
    imbalance: np.ndarray
    integrals: np.ndarray
    theta: np.ndarray
    diverged: np.ndarray
    steps: np.ndarray
    interrupted_at: float | None = None
    summed_imbalance: np.ndarray | None = None
    others: np.ndarray | None = None

    @property
    def v(self) -> np.ndarray:
        """Network output ``v`` at the record times, shape (n, R)."""
        return self.path_outputs.sum(axis=-1)


class _Recorder:
    """Collects the records of a run at each record time."""

    def __init__(self, theta: np.ndarray, n_records: int) -> None:
        R, d, L = theta.shape
        self.path_outputs = np.empty((n_records, R, d))
        self.imbalance = np.empty((n_records, R, L - 1))
        self.summed = np.empty((n_records, R, L - 1))
        self.others = np.empty((n_records, R, L - 1))
        self.integrals = np.empty((n_records, R, L - 1, N_INTEGRALS))
        self.running = np.zeros((R, L - 1, N_INTEGRALS))
        self.count = 0

    def record(self, theta: np.ndarray) -> None:
        i = self.count
        self.path_outputs[i] = np.prod(theta, axis=-1)
        self.imbalance[i] = theta[:, 0, :-1] ** 2 - theta[:, 0, 1:] ** 2
        self.summed[i] = np.sum(theta[:, :, :-1] ** 2 - theta[:, :, 1:] ** 2, axis=1)
        squares = theta[:, 0, :] ** 2
        for k in range(theta.shape[2] - 1):
            self.others[i, :, k] = np.prod(np.delete(squares, [k, k + 1], axis=1), axis=1)
        self.integrals[i] = self.running
        self.count += 1

    def result(self, times: np.ndarray, theta: np.ndarray, diverged: np.ndarray,
               steps: np.ndarray, interrupted_at: float | None = None) -> BalanceRun:
        n = self.count
        return BalanceRun(np.asarray(times)[:n], self.path_outputs[:n], self.imbalance[:n], self.integrals[:n],
                          theta, diverged, steps, interrupted_at, self.summed[:n], self.others[:n])


def _check_theta(net: DiagonalNetwork, theta0: np.ndarray) -> np.ndarray:
    theta = np.array(theta0, dtype=np.float64)
    if theta.ndim != 3 or theta.shape[1:] != net.shape or theta.shape[0] < 1:
        raise UsageError(f"theta0 must have shape (replicas, {net.width}, {net.depth + 1}); "
                         f"got {theta.shape}", name="theta0")
    return theta


def _bar(progress: bool | None, total: float, initial: float, desc: str, unit: str) -> Any:
    return tqdm(total=total, initial=initial, desc=desc, unit=unit, leave=False,
                disable=None if progress is None else not progress)


def simulate_sgd(net: DiagonalNetwork, data: TeacherStream | Dataset, lr: float, batch_size: int,
                 theta0: np.ndarray, steps: int, record_every: int, seed: Seed = 0,
                 progress: bool | None = None, checkpoint: Resumable | None = None) -> BalanceRun:
    """Run mini-batch SGD on every replica of ``theta0`` (R, d, D + 1) for ``steps`` steps.

    Records at steps ``0, record_every, 2 record_every, ...`` (and ``steps``); every
    replica draws its own batches of ``batch_size`` examples each step, so replicas
    are independent.  ``seed`` is an integer, a seed sequence (a named stream,
    :func:`sgdnoise._spec.stream_seed`) or a generator.  ``progress=None`` shows a bar only
    on a terminal.  ``checkpoint``: resume from its state and save into it (module docstring).
    """
    check_positive("lr", lr)
    check_int("batch_size", batch_size, 1)
    check_int("steps", steps, 0)
    check_int("record_every", record_every, 1)
    theta = _check_theta(net, theta0)
    R = theta.shape[0]
    marks = np.unique(np.append(np.arange(0, steps, record_every), steps))
    chunk = max(1, CHUNK_VALUES // (R * batch_size))
    s = checkpoint.state if checkpoint is not None else None
    if s is None:
        s = {"theta": theta, "rng": np.random.default_rng(seed), "recorder": _Recorder(theta, marks.size),
             "alive": np.ones(R, dtype=np.bool_), "steps": np.zeros(R, dtype=np.int64), "times": [0.0], "done": 0}
        s["recorder"].record(theta)
    theta, recorder, alive = s["theta"], s["recorder"], s["alive"]
    with _bar(progress, steps, s["done"], "SGD", "step") as bar:
        while s["done"] < steps:
            done = s["done"]
            if stop_requested():
                if s["times"][-1] != done * lr:
                    recorder.record(theta)
                    s["times"].append(done * lr)
                if checkpoint is not None:
                    checkpoint.save(s)
                return recorder.result(np.array(s["times"]), theta, ~alive, s["steps"], done * lr)
            stop = int(marks[np.searchsorted(marks, done, side="right")])
            n = min(chunk, stop - done)
            xb, yb = data.draw(s["rng"], (R, n, batch_size))
            _sgd_steps(theta, xb, yb, lr, net.weight_decay, alive, recorder.running, s["steps"])
            s["done"] = done + n
            bar.update(n)
            if s["done"] == stop:
                recorder.record(theta)
                s["times"].append(stop * lr)
            if checkpoint is not None and checkpoint.due() and s["done"] < steps:
                checkpoint.save(s)
    return recorder.result(np.array(s["times"]), theta, ~alive, s["steps"])


def simulate_sde(net: DiagonalNetwork, moments: DataMoments, T: float, theta0: np.ndarray,
                 record_times: np.ndarray, tol: float = 0.01, dt_max: float = math.inf,
                 seed: Seed = 0, progress: bool | None = None,
                 checkpoint: Resumable | None = None) -> BalanceRun:
    """Integrate the SDE of SGD at temperature ``T`` from ``theta0`` (R, d, D + 1).

    Each replica steps adaptively (module docstring) and lands exactly on every
    time in ``record_times`` (ascending, >= 0).  ``T = 0`` is gradient flow.
    ``checkpoint``: resume from its state and save into it (module docstring).
    """
    check_real("T", T, 0.0)
    check_real("tol", tol, 0.0, 1.0, low_open=True)
    times = np.asarray(record_times, dtype=np.float64)
    if times.ndim != 1 or times.size == 0 or np.any(times < 0) or np.any(np.diff(times) <= 0):
        raise UsageError("record_times must be a non-empty ascending list of times >= 0",
                         name="record_times")
    theta = _check_theta(net, theta0)
    R = theta.shape[0]
    s = checkpoint.state if checkpoint is not None else None
    if s is None:
        # chunk: steps per call, a quarter more than the median replica needed in the last interval
        s = {"theta": theta, "rng": np.random.default_rng(seed), "recorder": _Recorder(theta, times.size),
             "clock": np.zeros(R), "steps": np.zeros(R, dtype=np.int64), "record": 0, "chunk": 16,
             "before": None}
    theta, recorder, clock, n_steps = s["theta"], s["recorder"], s["clock"], s["steps"]
    m = moments
    with _bar(progress, float(times[-1]), float(times[s["record"] - 1]) if s["record"] else 0.0,
              "SDE", "time") as bar:
        while s["record"] < times.size:
            t_stop = times[s["record"]]
            rows = np.flatnonzero(clock < t_stop)
            if s["before"] is None:
                s["before"] = n_steps.copy()
            while rows.size:
                if stop_requested():
                    if checkpoint is not None:
                        checkpoint.save(s)
                    return recorder.result(times, theta, np.zeros(R, dtype=bool), n_steps, float(clock.min()))
                n = min(s["chunk"], max(1, CHUNK_VALUES // rows.size))
                _sde_steps(theta, clock, t_stop, s["rng"].standard_normal((n, rows.size)), rows,
                           m.alpha1, m.alpha2, m.alpha3, m.beta1, m.beta2, T, net.weight_decay,
                           tol, dt_max, recorder.running, n_steps)
                rows = rows[clock[rows] < t_stop]
                if checkpoint is not None and checkpoint.due() and rows.size:
                    checkpoint.save(s)
            s["chunk"] = max(16, int(1.25 * np.median(n_steps - s["before"])))
            s["before"] = None
            recorder.record(theta)
            s["record"] += 1
            bar.update(float(t_stop) - bar.n)
    return recorder.result(times, theta, np.zeros(R, dtype=bool), n_steps)
