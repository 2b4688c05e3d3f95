"""The problem of a ``balance`` run: network, data, minimiser, time scales, starting points.

Notation of :mod:`sgdnoise.problems.diagonal` (docs/theory.md §6).
"""
from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np

from sgdnoise.errors import UsageError
from sgdnoise.experiments.balance.config import BalanceConfig
from sgdnoise.problems.diagonal import DataMoments, Dataset, DiagonalNetwork, TeacherStream
from sgdnoise.problems.npz import load_xy
from sgdnoise.theory import balance as theory


def load_data(path: str | Path) -> Dataset:
    """Pairs ``(x, y)`` from ``.npz`` (arrays ``x`` and ``y``, :func:`sgdnoise.problems.npz.load_xy`)
    or a two-column text/CSV file.

    Raises :class:`UsageError` naming ``data``, in one line, when the file is missing, empty,
    corrupt, pickled, not numeric, not finite, or has fewer than two pairs.
    """
    path = Path(path)
    shown = repr(str(path))
    if path.suffix == ".npz":
        x, y = load_xy(path, "data")
    else:
        if not path.is_file():
            raise UsageError(f"data: file {shown} does not exist", name="data")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # an empty file: said below, in one line
                table = np.loadtxt(path, delimiter="," if path.suffix == ".csv" else None, ndmin=2)
        except (ValueError, OSError) as exc:  # UnicodeDecodeError is a ValueError
            raise UsageError(f"data: cannot read {shown} as a table of two numeric columns x y "
                             f"({' '.join(str(exc).split())[:200]})", name="data") from None
        if table.size == 0:
            raise UsageError(f"data: {shown} holds no numbers", name="data")
        if table.ndim != 2 or table.shape[1] != 2:
            raise UsageError(f"data: {shown} must have two columns x y; got a table of shape {table.shape}",
                             name="data")
        x, y = table[:, 0], table[:, 1]
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.ndim > 1 and x.shape[1:] != (1,) * (x.ndim - 1) or y.ndim > 1 and y.shape[1:] != (1,) * (y.ndim - 1):
        raise UsageError(f"data: {shown} must hold one number x and one y per example; got x {x.shape}, "
                         f"y {y.shape}", name="data")
    x, y = x.ravel(), y.ravel()
    if x.size != y.size or x.size < 2 or not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise UsageError(f"data: {shown} needs at least two finite pairs (x, y); got {x.size} x and {y.size} y",
                         name="data")
    return Dataset(x, y)


def build(config: BalanceConfig) -> tuple[DiagonalNetwork, TeacherStream | Dataset, DataMoments]:
    """The network, the data source and its moments (``UsageError`` for unusable data)."""
    net = DiagonalNetwork(config.depth, config.width, config.weight_decay)
    data = load_data(config.data) if config.data else TeacherStream(
        config.slope, config.noise_std, config.x_std)
    return net, data, data.moments


def minimiser(moments: DataMoments, net: DiagonalNetwork) -> float:
    """``v`` at the minimum of the expected loss (on the balanced manifold for ``D = 1``).

    ``D = 0``: ``beta_2 / (beta_1 + gamma/d)``; ``D = 1``: the soft threshold
    ``sgn(beta_2) max(|beta_2| - gamma, 0) / beta_1``; otherwise ``beta_2 / beta_1``.
    """
    if net.depth == 0:
        return moments.beta2 / (moments.beta1 + net.weight_decay / net.width)
    if net.depth == 1:
        return math.copysign(max(abs(moments.beta2) - net.weight_decay, 0.0), moments.beta2
                             ) / moments.beta1
    return moments.beta2 / moments.beta1


def relaxation_time(moments: DataMoments, net: DiagonalNetwork, v_star: float, T: float) -> float:
    """Time for ``v`` to forget its start.

    ``1 / (2 beta_1 |grad v|^2)`` at the balanced minimiser; for ``D = 1`` below ``T_c`` at
    least the mixing time of the mass near ``v = 0``, where ``log v`` has an exponential
    density of rate ``a = (T_c/T - 1)/2`` and diffuses at ``16 T alpha_3``:
    ``1/(16 T alpha_3 a^2)`` (docs/theory.md §6c).
    """
    D, d = net.depth, net.width
    scale = max(abs(v_star), 1e-3 * abs(moments.beta2) / moments.beta1)
    time = 1.0 / (2.0 * moments.beta1 * d * (D + 1) * (scale / d) ** (2.0 * D / (D + 1)))
    T_c = theory.critical_temperature(moments, D, net.weight_decay)
    if D == 1 and T < T_c:
        a = 0.5 * (T_c / T - 1.0)
        time = max(time, 1.0 / (16.0 * T * moments.alpha3 * a * a))
    return time


def unbalanced(net: DiagonalNetwork, v0: float, replicas: int, imbalance: float) -> np.ndarray:
    """Parameters with output ``v0``, layer ``k`` of path ``i`` scaled by ``exp(eps_i (2k/D - 1))``
    from the balanced magnitude ``|v0/d|^(1/(D+1))`` (the product is unchanged), with
    ``eps_i = eps (d - i)/d``: the paths start with different imbalances (path 0 with ``eps``)."""
    theta = net.balanced(np.full(replicas, v0))
    if net.depth:
        eps = imbalance * (net.width - np.arange(net.width)) / net.width
        theta *= np.exp(eps[:, None] * (2.0 * np.arange(net.depth + 1) / net.depth - 1.0))
    return theta


def density_or_reason(moments: DataMoments, net: DiagonalNetwork, T: float
                      ) -> tuple[theory.StationaryDensity | None, str]:
    """The stationary density of the nonzero branch and ``"nonzero branch"``, or None and why not."""
    try:
        return theory.stationary_density(moments, net.depth, T, net.width, net.weight_decay), \
            "nonzero branch"
    except UsageError as exc:
        return None, str(exc)
