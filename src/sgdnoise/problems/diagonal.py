r"""One-dimensional regression with a diagonal linear network (Ziyin, Li, Ueda, arXiv 2308.06671).

The per-example loss is (docs/theory.md §6)

.. math::

    \ell(\theta; x, y) = (v x - y)^2 + \gamma \lVert\theta\rVert^2, \qquad
    v = \sum_{i=1}^{d} \prod_{k=0}^{D} u_i^{(k)},

a network of width ``d`` (parallel paths) and depth ``D`` (``D + 1`` scalar
layers per path; ``D = 0`` is linear regression on ``d`` copies of the input,
``D = 1`` the scalar ``u w`` model for ``d = 1``).  Parameters are stored as
arrays of shape ``(..., d, D + 1)``.

Everything the theory needs from the data are five moments of ``(x, y)``:

.. math::

    \alpha_1 = \mathrm{Var}[x^2],\quad
    \alpha_2 = E[x^3 y] - E[x^2] E[x y],\quad
    \alpha_3 = \mathrm{Var}[x y],\quad
    \beta_1 = E[x^2],\quad \beta_2 = E[x y],

with ``Delta = alpha_1 alpha_3 - alpha_2^2 > 0`` (the Cauchy-Schwarz gap of
``x^2`` and ``x y``; zero only when ``y`` is a deterministic multiple of ``x``).
The gradient of ``(v x - y)^2`` with respect to ``v`` has mean
``2 (beta_1 v - beta_2)`` and variance ``4 g(v)`` with
``g(v) = alpha_1 v^2 - 2 alpha_2 v + alpha_3``.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from sgdnoise._spec import check_int, check_positive, check_real
from sgdnoise.errors import UsageError

#: Delta below this fraction of alpha_1 alpha_3 is rounding error of a zero gap.
DELTA_RTOL = 1e-12


@dataclass(frozen=True)
class DataMoments:
    """The moments alpha_1..3, beta_1,2 of the data (module docstring)."""

    alpha1: float
    alpha2: float
    alpha3: float
    beta1: float
    beta2: float

    def __post_init__(self) -> None:
        values = asdict(self)
        bad = [name for name, value in values.items() if not math.isfinite(value)]
        if bad:
            raise UsageError(f"data moments must be finite; got {values}")
        if self.beta1 <= 0 or self.alpha1 <= 0:
            raise UsageError(f"data moments need beta1 = E[x^2] > 0 and alpha1 = Var[x^2] > 0; "
                             f"got beta1 = {self.beta1}, alpha1 = {self.alpha1}")
        if self.delta <= DELTA_RTOL * self.alpha1 * abs(self.alpha3):
            raise UsageError(
                "data moments need Delta = alpha1*alpha3 - alpha2^2 > 0 (y must not be a "
                f"deterministic multiple of x); got Delta = {self.delta:.6g}")

    @property
    def delta(self) -> float:
        """Delta = alpha_1 alpha_3 - alpha_2^2."""
        return self.alpha1 * self.alpha3 - self.alpha2**2

    def noise(self, v: np.ndarray | float) -> np.ndarray:
        """g(v) = alpha_1 v^2 - 2 alpha_2 v + alpha_3 = Var[x (v x - y)] (> 0 when Delta > 0)."""
        v = np.asarray(v, dtype=np.float64)
        return self.alpha1 * v**2 - 2.0 * self.alpha2 * v + self.alpha3

    def mean_gradient(self, v: np.ndarray | float) -> np.ndarray:
        """m(v) = E[d(v x - y)^2 / dv] = 2 (beta_1 v - beta_2)."""
        return 2.0 * (self.beta1 * np.asarray(v, dtype=np.float64) - self.beta2)

    def as_dict(self) -> dict[str, float]:
        """The five moments and Delta, for summary.json."""
        return {**asdict(self), "delta": self.delta}


def teacher_moments(slope: float, noise_std: float, x_std: float = 1.0) -> DataMoments:
    """Population moments of ``y = k x + eps``, ``x ~ N(0, s^2)``, ``eps ~ N(0, sigma^2)``.

    With ``E x^4 = 3 s^4``: ``beta_1 = s^2``, ``beta_2 = k s^2``, ``alpha_1 = 2 s^4``,
    ``alpha_2 = 2 k s^4``, ``alpha_3 = 2 k^2 s^4 + sigma^2 s^2``, so
    ``Delta = 2 sigma^2 s^6`` (docs/theory.md §6 for ``s = 1``).
    """
    check_positive("x_std", x_std)
    check_real("slope", slope)
    check_real("noise_std", noise_std, 0.0)
    s2 = x_std**2
    return DataMoments(
        alpha1=2.0 * s2**2,
        alpha2=2.0 * slope * s2**2,
        alpha3=2.0 * slope**2 * s2**2 + noise_std**2 * s2,
        beta1=s2,
        beta2=slope * s2,
    )


def moments_from_data(x: np.ndarray, y: np.ndarray) -> DataMoments:
    """Moments of the empirical distribution of the pairs ``(x_n, y_n)`` (SGD with replacement)."""
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.shape != y.shape or x.size < 2:
        raise UsageError(f"data x and y must have the same length >= 2; got {x.size} and {y.size}")
    x2, xy = x * x, x * y
    return DataMoments(
        alpha1=float(np.var(x2)),
        alpha2=float(np.mean(x2 * xy) - x2.mean() * xy.mean()),
        alpha3=float(np.var(xy)),
        beta1=float(x2.mean()),
        beta2=float(xy.mean()),
    )


@dataclass(frozen=True)
class DiagonalNetwork:
    """``v = sum_i prod_k u_i^(k)`` of width ``d`` and depth ``D`` with weight decay ``gamma``.

    Parameters
    ----------
    depth : int
        D >= 0; each path has ``D + 1`` layers.
    width : int
        d >= 1 parallel paths.
    weight_decay : float
        gamma >= 0 in ``l + gamma |theta|^2``.
    """

    depth: int
    width: int = 1
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        check_int("depth", self.depth, 0)
        check_int("width", self.width, 1)
        check_real("weight_decay", self.weight_decay, 0.0)

    @property
    def shape(self) -> tuple[int, int]:
        """Shape (d, D + 1) of one replica's parameters."""
        return (self.width, self.depth + 1)

    def output(self, theta: np.ndarray) -> np.ndarray:
        """v = sum_i prod_k u_i^(k) for parameters of shape (..., d, D + 1)."""
        return np.prod(theta, axis=-1).sum(axis=-1)

    def output_gradient(self, theta: np.ndarray) -> np.ndarray:
        """dv/du_i^(k) = prod_{k' != k} u_i^(k'), shape like ``theta`` (no division: exact at 0)."""
        theta = np.asarray(theta, dtype=np.float64)
        ones = np.ones(theta.shape[:-1] + (1,))
        before = np.cumprod(np.concatenate([ones, theta[..., :-1]], axis=-1), axis=-1)
        after = np.cumprod(np.concatenate([ones, theta[..., :0:-1]], axis=-1), axis=-1)[..., ::-1]
        return before * after

    def loss_gradient(self, theta: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Gradient of the batch-mean loss ``mean_s (v x_s - y_s)^2 + gamma |theta|^2``.

        ``theta`` has shape (R, d, D + 1); ``x`` and ``y`` shape (R, S): one batch per replica.
        """
        theta = np.asarray(theta, dtype=np.float64)
        v = self.output(theta)[:, None]
        dl_dv = np.mean(2.0 * x * (v * x - y), axis=1)
        return dl_dv[:, None, None] * self.output_gradient(theta) + 2.0 * self.weight_decay * theta

    def balanced(self, v: np.ndarray | float) -> np.ndarray:
        """Parameters on the balanced manifold with output ``v``: every ``|u_i^(k)|`` equal.

        Each path carries ``v / d``; all layers of a path have magnitude
        ``|v/d|^(1/(D+1))`` and the sign of ``v`` sits on the first layer.
        Returns shape ``v.shape + (d, D + 1)``.
        """
        v = np.asarray(v, dtype=np.float64)
        per_path = v / self.width
        magnitude = np.abs(per_path) ** (1.0 / (self.depth + 1))
        theta = np.broadcast_to(magnitude[..., None, None], v.shape + self.shape).copy()
        theta[..., 0] *= np.where(per_path < 0, -1.0, 1.0)[..., None]
        return theta


@dataclass(frozen=True)
class TeacherStream:
    """Online data ``y = k x + eps``: every SGD step sees fresh examples (population moments)."""

    slope: float = 1.0
    noise_std: float = 1.0
    x_std: float = 1.0

    @property
    def moments(self) -> DataMoments:
        return teacher_moments(self.slope, self.noise_std, self.x_std)

    def draw(self, rng: np.random.Generator,
             shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Arrays ``x, y`` of the given shape."""
        x = self.x_std * rng.standard_normal(shape)
        return x, self.slope * x + self.noise_std * rng.standard_normal(shape)


@dataclass(frozen=True)
class Dataset:
    """A fixed set of pairs ``(x_n, y_n)`` sampled with replacement (empirical moments)."""

    x: np.ndarray
    y: np.ndarray

    @property
    def moments(self) -> DataMoments:
        return moments_from_data(self.x, self.y)

    def draw(self, rng: np.random.Generator,
             shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Arrays ``x, y`` of the given shape: uniformly drawn examples."""
        idx = rng.integers(0, self.x.size, size=shape)
        return self.x[idx], self.y[idx]
