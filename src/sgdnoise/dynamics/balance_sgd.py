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

Both record, at the requested times, the output of every path and the
imbalances ``u_k^2 - u_{k+1}^2`` of consecutive layers of path 0, and accumulate
along each path the sums over steps of ``dt`` and ``dt^2`` times ``P_k``,
``v P_k`` and ``v^2 P_k`` with ``P_k = prod_{j != k, k+1} u_j^2`` (path 0): the
time integrals from which the experiment forms the predicted decay of each
imbalance (law of balance) and its first-order discrete-time correction,
without this module knowing the theory.  The inner loops are compiled with
numba; replicas are independent and run in parallel threads; random numbers
come from a NumPy generator, so the same seed gives the same numbers.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit, prange
from tqdm.auto import tqdm

from sgdnoise._spec import check_int, check_positive, check_real
from sgdnoise.errors import UsageError
from sgdnoise.interrupts import stop_requested
from sgdnoise.problems.diagonal import DataMoments, Dataset, DiagonalNetwork, TeacherStream

CHUNK_VALUES = 2_000_000  # random numbers drawn per call of a kernel
DIVERGED = 1e150  # |v| beyond this counts as diverged
#: What seeds a run: an integer, a seed sequence (a named stream) or a generator.
Seed = int | np.random.SeedSequence | np.random.Generator


@njit(cache=True)
def _output_and_gradient(th, grad):  # pragma: no cover - compiled
    """v of one replica and dv/dtheta into ``grad`` (prefix and suffix products, exact at 0)."""
    d, L = th.shape
    v = 0.0
    for i in range(d):
        pre = 1.0
        for k in range(L):
            grad[i, k] = pre
            pre *= th[i, k]
        v += pre
        suf = 1.0
        for k in range(L - 1, -1, -1):
            grad[i, k] *= suf
            suf *= th[i, k]
    return v


@njit(cache=True)
def _accumulate(th, v, dt, integrals):  # pragma: no cover - compiled
    """integrals[k] += (dt, dt^2) * (P_k, v P_k, v^2 P_k), P_k = prod_{j != k, k+1} u_{0j}^2."""
    L = th.shape[1]
    for k in range(L - 1):
        others = 1.0
        for j in range(L):
            if j != k and j != k + 1:
                others *= th[0, j] * th[0, j]
        w = dt * others
        for power in range(3):
            integrals[k, power] += w
            integrals[k, 3 + power] += w * dt
            w *= v


@njit(parallel=True, cache=True)
def _sgd_steps(theta, xb, yb, lr, decay, alive, integrals, n_steps):  # pragma: no cover - compiled
    """``xb.shape[1]`` SGD steps of every live replica on the batches ``xb, yb`` (R, steps, S)."""
    R, steps, S = xb.shape
    d, L = theta.shape[1], theta.shape[2]
    for r in prange(R):
        if not alive[r]:
            continue
        th = theta[r]
        acc = integrals[r]
        grad = np.empty((d, L))
        for t in range(steps):
            v = _output_and_gradient(th, grad)
            if not (abs(v) < DIVERGED):
                alive[r] = False
                break
            _accumulate(th, v, lr, acc)
            g = 0.0
            for s in range(S):
                x = xb[r, t, s]
                g += x * (v * x - yb[r, t, s])
            g *= 2.0 / S
            for i in range(d):
                for k in range(L):
                    th[i, k] -= lr * (g * grad[i, k] + 2.0 * decay * th[i, k])
            n_steps[r] += 1


@njit(cache=True)
def _hessian_bound(th):  # pragma: no cover - compiled
    """Gershgorin bound on |Hessian of v|: max_i D * max_{k != k'} |prod_{j != k, k'} u_ij|."""
    d, L = th.shape
    if L < 2:
        return 0.0
    bound = 0.0
    for i in range(d):
        # the largest entry leaves out the two largest magnitudes of the path
        k1, k2 = -1, -1
        for k in range(L):
            a = abs(th[i, k])
            if k1 < 0 or a > abs(th[i, k1]):
                k2 = k1
                k1 = k
            elif k2 < 0 or a > abs(th[i, k2]):
                k2 = k
        entry = 1.0
        for k in range(L):
            if k != k1 and k != k2:
                entry *= abs(th[i, k])
        bound = max(bound, (L - 1) * entry)
    return bound


@njit(parallel=True, cache=True)
def _sde_steps(theta, clock, t_stop, normals, rows, a1, a2, a3, b1, b2, T, decay, tol, dt_max,
               integrals, n_steps):  # pragma: no cover - compiled
    """Advance replicas ``rows`` towards ``t_stop`` by at most ``normals.shape[0]`` steps."""
    d, L = theta.shape[1], theta.shape[2]
    for j in prange(rows.size):
        r = rows[j]
        th = theta[r]
        acc = integrals[r]
        grad = np.empty((d, L))
        for step in range(normals.shape[0]):
            remaining = t_stop - clock[r]
            if remaining <= 0.0:
                break
            v = _output_and_gradient(th, grad)
            g = a1 * v * v - 2.0 * a2 * v + a3
            m = 2.0 * (b1 * v - b2)
            sigma = 2.0 * math.sqrt(T * g)
            grad_sq = 0.0
            for i in range(d):
                for k in range(L):
                    grad_sq += grad[i, k] * grad[i, k]
            rho = _hessian_bound(th)
            dt = dt_max
            k_drift = 2.0 * b1 * grad_sq + rho * abs(m) + 2.0 * decay
            if k_drift * dt > tol:
                dt = tol / k_drift
            # |d sigma / dv| = 2 sqrt(T) |alpha_1 v - alpha_2| / sqrt(g)
            k_noise = 2.0 * math.sqrt(T) * abs(a1 * v - a2) / math.sqrt(g) * grad_sq + rho * sigma
            if k_noise * k_noise * dt > tol:
                dt = tol / (k_noise * k_noise)
            if dt >= remaining:
                dt = remaining
            _accumulate(th, v, dt, acc)
            coef = -m * dt + sigma * math.sqrt(dt) * normals[step, j]
            for i in range(d):
                for k in range(L):
                    th[i, k] += coef * grad[i, k] - 2.0 * decay * dt * th[i, k]
            clock[r] = t_stop if dt == remaining else clock[r] + dt
            n_steps[r] += 1


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
    integrals : ndarray (n, R, D, 6)
        Sums over the steps so far of ``dt (P_k, v P_k, v^2 P_k)`` and of
        ``dt^2 (P_k, v P_k, v^2 P_k)`` along each replica (module docstring).
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
    """

    times: np.ndarray
    path_outputs: np.ndarray
    imbalance: np.ndarray
    integrals: np.ndarray
    theta: np.ndarray
    diverged: np.ndarray
    steps: np.ndarray
    interrupted_at: float | None = None

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
        self.integrals = np.empty((n_records, R, L - 1, 6))
        self.running = np.zeros((R, L - 1, 6))
        self.count = 0

    def record(self, theta: np.ndarray) -> None:
        i = self.count
        self.path_outputs[i] = np.prod(theta, axis=-1)
        self.imbalance[i] = theta[:, 0, :-1] ** 2 - theta[:, 0, 1:] ** 2
        self.integrals[i] = self.running
        self.count += 1

    def result(self, times: np.ndarray, theta: np.ndarray, diverged: np.ndarray,
               steps: np.ndarray, interrupted_at: float | None = None) -> BalanceRun:
        n = self.count
        return BalanceRun(np.asarray(times)[:n], self.path_outputs[:n], self.imbalance[:n], self.integrals[:n],
                          theta, diverged, steps, interrupted_at)


def _check_theta(net: DiagonalNetwork, theta0: np.ndarray) -> np.ndarray:
    theta = np.array(theta0, dtype=np.float64)
    if theta.ndim != 3 or theta.shape[1:] != net.shape or theta.shape[0] < 1:
        raise UsageError(f"theta0 must have shape (replicas, {net.width}, {net.depth + 1}); "
                         f"got {theta.shape}", name="theta0")
    return theta


def simulate_sgd(net: DiagonalNetwork, data: TeacherStream | Dataset, lr: float, batch_size: int,
                 theta0: np.ndarray, steps: int, record_every: int, seed: Seed = 0,
                 progress: bool | None = None) -> BalanceRun:
    """Run mini-batch SGD on every replica of ``theta0`` (R, d, D + 1) for ``steps`` steps.

    Records at steps ``0, record_every, 2 record_every, ...`` (and ``steps``); every
    replica draws its own batches of ``batch_size`` examples each step, so replicas
    are independent.  ``seed`` is an integer, a seed sequence (a named stream,
    :func:`sgdnoise._spec.stream_seed`) or a generator.  ``progress=None`` shows a bar only
    on a terminal.
    """
    check_positive("lr", lr)
    check_int("batch_size", batch_size, 1)
    check_int("steps", steps, 0)
    check_int("record_every", record_every, 1)
    theta = _check_theta(net, theta0)
    R = theta.shape[0]
    rng = np.random.default_rng(seed)
    marks = np.unique(np.append(np.arange(0, steps, record_every), steps))
    recorder = _Recorder(theta, marks.size)
    alive = np.ones(R, dtype=np.bool_)
    steps_done = np.zeros(R, dtype=np.int64)
    chunk = max(1, CHUNK_VALUES // (R * batch_size))
    recorder.record(theta)
    times = [0.0]
    with tqdm(total=steps, desc="SGD", unit="step", disable=None if progress is None
              else not progress, leave=False) as bar:
        for start, stop in zip(marks[:-1], marks[1:]):
            done = start
            while done < stop and not stop_requested():
                n = min(chunk, stop - done)
                xb, yb = data.draw(rng, (R, n, batch_size))
                _sgd_steps(theta, xb, yb, lr, net.weight_decay, alive, recorder.running,
                           steps_done)
                done += n
                bar.update(n)
            if done > start:
                recorder.record(theta)
                times.append(done * lr)
            if done < stop:
                return recorder.result(np.array(times), theta, ~alive, steps_done, done * lr)
    return recorder.result(np.array(times), theta, ~alive, steps_done)


def simulate_sde(net: DiagonalNetwork, moments: DataMoments, T: float, theta0: np.ndarray,
                 record_times: np.ndarray, tol: float = 0.01, dt_max: float = math.inf,
                 seed: Seed = 0, progress: bool | None = None) -> BalanceRun:
    """Integrate the SDE of SGD at temperature ``T`` from ``theta0`` (R, d, D + 1).

    Each replica steps adaptively (module docstring) and lands exactly on every
    time in ``record_times`` (ascending, >= 0).  ``T = 0`` is gradient flow.
    """
    check_real("T", T, 0.0)
    check_real("tol", tol, 0.0, 1.0, low_open=True)
    times = np.asarray(record_times, dtype=np.float64)
    if times.ndim != 1 or times.size == 0 or np.any(times < 0) or np.any(np.diff(times) <= 0):
        raise UsageError("record_times must be a non-empty ascending list of times >= 0",
                         name="record_times")
    theta = _check_theta(net, theta0)
    R = theta.shape[0]
    rng = np.random.default_rng(seed)
    recorder = _Recorder(theta, times.size)
    clock = np.zeros(R)
    n_steps = np.zeros(R, dtype=np.int64)
    m = moments
    with tqdm(total=float(times[-1]), desc="SDE", unit="time", disable=None if progress is None
              else not progress, leave=False) as bar:
        chunk = 16  # steps per call: a quarter more than the median replica needed last time
        for t_stop in times:
            rows = np.flatnonzero(clock < t_stop)
            before = n_steps.copy()
            while rows.size:
                if stop_requested():
                    return recorder.result(times, theta, np.zeros(R, dtype=bool), n_steps, float(clock.min()))
                n = min(chunk, max(1, CHUNK_VALUES // rows.size))
                _sde_steps(theta, clock, t_stop, rng.standard_normal((n, rows.size)), rows,
                           m.alpha1, m.alpha2, m.alpha3, m.beta1, m.beta2, T, net.weight_decay,
                           tol, dt_max, recorder.running, n_steps)
                rows = rows[clock[rows] < t_stop]
            chunk = max(16, int(1.25 * np.median(n_steps - before)))
            recorder.record(theta)
            bar.update(float(t_stop) - bar.n)
    return recorder.result(times, theta, np.zeros(R, dtype=bool), n_steps)
