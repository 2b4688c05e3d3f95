"""Quadratic problems the simulator and the theory share.

Two families, both with a quadratic loss ``L(theta) = L* + 1/2 delta^T H delta``
around the minimiser (``delta = theta - theta*``):

:class:`LinearRegression`
    Gross, Raulf, Raeth (arXiv 2311.14120), docs/theory.md §1: features
    ``X`` (P x N), targets ``Y`` (P x K), per-example loss
    ``l_mu = 1/2 |W^T x_mu - y_mu|^2``, Hessian ``I_K (x) H`` with
    ``H = X^T X / P``.  The gradient noise depends on the state.
:class:`AdditiveNoiseQuadratic`
    ``l_n = 1/2 (theta - a_n)^T H (theta - a_n)`` with ``H`` diagonal: the noise
    does not depend on the state, so the closed form of Kuehn & Rosenow
    (docs/theory.md §3d) is exact.

Both expose their data in the Hessian eigenbasis, where the simulator runs:
coordinates ``theta'_j = e_j^T delta`` along the eigenvector of the j-th
smallest eigenvalue (``hessian_eigenvalues`` ascending).  For K outputs the
weight vector is flattened N-major with the output index fastest, and each
eigenvalue of ``H`` appears K times.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from sgdnoise._spec import rng as stream_rng
from sgdnoise.errors import UsageError
from sgdnoise.problems.npz import load_xy


def linear_regression_gradients(X: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Per-example gradients of l_mu = 1/2 |W^T x_mu - y_mu|^2, shape (P, N*K).

    ``X`` is (P, N), ``y`` is (P,) or (P, K), ``w`` is (N,) or (N, K); the
    gradient of example mu is ``x_mu (x_mu . w - y_mu)`` (flattened N-major,
    output index fastest).
    """
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(y, dtype=np.float64).reshape(X.shape[0], -1)
    W = np.asarray(w, dtype=np.float64).reshape(X.shape[1], -1)
    residual = X @ W - Y  # (P, K)
    return (X[:, :, None] * residual[:, None, :]).reshape(X.shape[0], -1)


def least_squares_minimiser(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """w* = argmin (1/2P)|X w - y|^2 (minimum-norm when X^T X is singular), shape like y's columns."""
    w, *_ = np.linalg.lstsq(np.asarray(X, np.float64), np.asarray(y, np.float64), rcond=None)
    return w


@dataclass(frozen=True)
class LinearRegression:
    """Linear regression ``y_hat = W^T x`` with loss ``(1/2P) sum_mu |W^T x_mu - y_mu|^2``.

    Parameters
    ----------
    X : ndarray (P, N)
    Y : ndarray (P, K)
    source : dict
        How the data were made (recorded in summary.json).
    """

    X: np.ndarray
    Y: np.ndarray
    source: dict = field(default_factory=dict)

    kind = "linear"

    @classmethod
    def teacher_student(
        cls,
        n_features: int,
        n_examples: int,
        label_noise: float,
        outputs: int = 1,
        feature_variance: float | None = None,
        seed: int = 0,
    ) -> "LinearRegression":
        """Gaussian teacher-student data (docs/theory.md §1).

        ``x ~ N(0, sigma_x^2 I)`` with ``sigma_x^2 = 1/N`` unless given, teacher
        ``u ~ N(0, I)`` per output, ``y = u . x + eps`` with ``eps ~ N(0, label_noise)``.
        """
        _check_positive_int("--N", n_features)
        _check_positive_int("--P", n_examples)
        _check_positive_int("--outputs", outputs)
        if not (np.isfinite(label_noise) and label_noise >= 0):
            raise UsageError(f"label_noise must be a finite variance >= 0; got {label_noise}", name="label_noise")
        var_x = 1.0 / n_features if feature_variance is None else feature_variance
        if not (np.isfinite(var_x) and var_x > 0):
            raise UsageError(f"feature_variance must be > 0; got {var_x}", name="feature_variance")
        rng = stream_rng(seed, "teacher-student")
        X = rng.normal(0.0, np.sqrt(var_x), size=(n_examples, n_features))
        teacher = rng.normal(size=(n_features, outputs))
        Y = X @ teacher + rng.normal(0.0, np.sqrt(label_noise), size=(n_examples, outputs))
        source = {"kind": "teacher-student", "N": n_features, "P": n_examples,
                  "label_noise": label_noise, "outputs": outputs,
                  "feature_variance": var_x, "seed": seed}
        return cls(X, Y, source)

    @classmethod
    def from_npz(cls, path: str | Path, n_features: int | None = None,
                 n_examples: int | None = None) -> "LinearRegression":
        """Data from ``path`` (.npz with ``x`` of shape (P, N) and ``y`` of shape (P,) or (P, K); ``X`` is accepted for ``x``).

        ``n_features`` / ``n_examples``, when given, must agree with the file.
        """
        path = Path(path)
        X, y = load_xy(path, "data", x_ndim=2)
        if y.ndim not in (1, 2):
            raise UsageError(f"data: y must have shape (P,) or (P, K) with P = {X.shape[0]}; "
                             f"got {y.shape}", name="data")
        if n_features is not None and n_features != X.shape[1]:
            raise UsageError(f"N={n_features} contradicts the data file, whose x has N = {X.shape[1]}", name="N")
        if n_examples is not None and n_examples != X.shape[0]:
            raise UsageError(f"P={n_examples} contradicts the data file, whose x has P = {X.shape[0]}", name="P")
        source = {"kind": "npz", "path": str(path.resolve()), "N": X.shape[1], "P": X.shape[0],
                  "outputs": 1 if y.ndim == 1 else y.shape[1]}
        return cls(X.astype(np.float64), y.reshape(X.shape[0], -1).astype(np.float64), source)

    @property
    def n_examples(self) -> int:
        return self.X.shape[0]

    @property
    def n_features(self) -> int:
        return self.X.shape[1]

    @property
    def outputs(self) -> int:
        return self.Y.shape[1]

    @property
    def dim(self) -> int:
        """Number of weights d = N K."""
        return self.n_features * self.outputs

    @cached_property
    def hessian(self) -> np.ndarray:
        """H = X^T X / P (N x N); the full Hessian is H (x) I_K."""
        return self.X.T @ self.X / self.n_examples

    @cached_property
    def _eigh(self) -> tuple[np.ndarray, np.ndarray]:
        return np.linalg.eigh(self.hessian)

    @property
    def feature_eigenvalues(self) -> np.ndarray:
        """Eigenvalues of H (N,), ascending."""
        return self._eigh[0]

    @property
    def feature_eigenvectors(self) -> np.ndarray:
        """Orthonormal eigenvectors of H as columns (N, N), same order."""
        return self._eigh[1]

    @property
    def hessian_eigenvalues(self) -> np.ndarray:
        """Eigenvalues of the full Hessian (d,), ascending, each repeated K times."""
        return np.repeat(self.feature_eigenvalues, self.outputs)

    @cached_property
    def minimiser(self) -> np.ndarray:
        """w* (N, K), least squares (minimum norm if H is singular)."""
        return least_squares_minimiser(self.X, self.Y)

    @cached_property
    def residuals(self) -> np.ndarray:
        """r = X w* - Y (P, K)."""
        return self.X @ self.minimiser - self.Y

    @cached_property
    def eigen_features(self) -> np.ndarray:
        """Z = X V (P, N): the features in the eigenbasis of H."""
        return self.X @ self.feature_eigenvectors

    def per_example_gradients(self, w: np.ndarray | None = None) -> np.ndarray:
        """Gradients of each l_mu at w (default w*), shape (P, d)."""
        return linear_regression_gradients(self.X, self.Y, self.minimiser if w is None else w)

    def to_eigen(self, delta: np.ndarray) -> np.ndarray:
        """Coordinates of delta (d,) or (..., d) along the Hessian eigenvectors, same layout."""
        N, K = self.n_features, self.outputs
        d = np.asarray(delta, np.float64).reshape(*np.shape(delta)[:-1], N, K)
        return np.einsum("ij,...ik->...jk", self.feature_eigenvectors, d).reshape(np.shape(delta))

    def from_eigen(self, coords: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`to_eigen`."""
        N, K = self.n_features, self.outputs
        c = np.asarray(coords, np.float64).reshape(*np.shape(coords)[:-1], N, K)
        return np.einsum("ij,...jk->...ik", self.feature_eigenvectors, c).reshape(np.shape(coords))

    def eigenbasis_matrix(self) -> np.ndarray:
        """Orthogonal d x d matrix whose columns are the Hessian eigenvectors in weight layout."""
        return np.kron(self.feature_eigenvectors, np.eye(self.outputs))


@dataclass(frozen=True)
class AdditiveNoiseQuadratic:
    """Quadratic loss with additive per-example noise, ``l_n = 1/2 (theta - a_n)^T H (theta - a_n)``.

    ``H = diag(eigenvalues)`` (ascending), so coordinates are already the
    eigenbasis.  The minimiser is ``mean_n a_n``; per-example gradients are
    ``H (theta - a_n)``, so the per-example noise covariance
    ``Sigma_1 = H cov(a) H`` does not depend on ``theta``.

    Parameters
    ----------
    eigenvalues : ndarray (d,)
    offsets : ndarray (P, d)
        ``a_n``.
    """

    eigenvalues: np.ndarray
    offsets: np.ndarray
    source: dict = field(default_factory=dict)

    kind = "additive"
    outputs = 1

    @classmethod
    def gaussian(cls, eigenvalues: np.ndarray, n_examples: int, offset_variance: np.ndarray | float,
                 seed: int = 0) -> "AdditiveNoiseQuadratic":
        """Offsets ``a_n ~ N(0, diag(offset_variance))``, sorted eigenvalues."""
        lam = np.sort(np.asarray(eigenvalues, np.float64))
        if np.any(lam <= 0):
            raise UsageError("eigenvalues must be > 0")
        rng = stream_rng(seed, "additive-noise-quadratic")
        scale = np.sqrt(np.broadcast_to(np.asarray(offset_variance, np.float64), lam.shape))
        offsets = rng.normal(size=(n_examples, lam.size)) * scale
        source = {"kind": "additive-noise-quadratic", "d": lam.size, "P": n_examples, "seed": seed}
        return cls(lam, offsets, source)

    @property
    def n_examples(self) -> int:
        return self.offsets.shape[0]

    @property
    def dim(self) -> int:
        return self.eigenvalues.size

    @property
    def hessian_eigenvalues(self) -> np.ndarray:
        return self.eigenvalues

    @property
    def hessian(self) -> np.ndarray:
        return np.diag(self.eigenvalues)

    @cached_property
    def minimiser(self) -> np.ndarray:
        return self.offsets.mean(axis=0)

    @cached_property
    def centred_offsets(self) -> np.ndarray:
        """a_n - theta* (P, d)."""
        return self.offsets - self.minimiser

    def per_example_gradients(self, theta: np.ndarray | None = None) -> np.ndarray:
        """H (theta - a_n) for each n, shape (P, d) (default theta = theta*)."""
        theta = self.minimiser if theta is None else np.asarray(theta, np.float64)
        return (theta - self.offsets) * self.eigenvalues

    def to_eigen(self, delta: np.ndarray) -> np.ndarray:
        return np.asarray(delta, np.float64)

    from_eigen = to_eigen

    def eigenbasis_matrix(self) -> np.ndarray:
        return np.eye(self.dim)


QuadraticProblem = LinearRegression | AdditiveNoiseQuadratic


def _check_positive_int(name: str, value: int) -> None:
    if not isinstance(value, (int, np.integer)) or value < 1:
        raise UsageError(f"{name} must be a positive integer; got {value!r}")
