"""Stationary-covariance solvers against brute-force dense solutions at small N.

The references are built independently of the solvers: Kronecker-vectorised
linear systems (``np.kron``, ``np.linalg.solve``) on the full 2N state
``(delta_k, delta_{k-1})`` in the original basis, explicit matrix powers A^h for
the epoch kernel, and the per-example Jacobians ``J_mu = x_mu x_mu^T (x) I_K`` for
the state-dependent noise.  Row-major vec: ``vec(A M B^T) = kron(A, B) vec(M)``.
"""
from __future__ import annotations

import numpy as np
import pytest

from sgdnoise.errors import UsageError
from sgdnoise.theory import (
    batch_noise_factor,
    noise_kernel,
    quadratic_stationary_covariance,
    stationary_covariance,
)

RTOL = 1e-9


def regression_data(P: int, N: int, K: int = 1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Teacher-student data with unequal feature scales, so that [H, C] != 0."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(P, N)) * np.linspace(0.5, 1.5, N)
    Y = X @ rng.normal(size=(N, K)) + 0.7 * rng.normal(size=(P, K))
    return X, (Y[:, 0] if K == 1 else Y)


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


def state_matrices(H: np.ndarray, lr: float, beta: float) -> tuple[np.ndarray, np.ndarray]:
    """A and B of docs/theory.md §3b on the state (delta_k, delta_{k-1})."""
    n = H.shape[0]
    I, O = np.eye(n), np.zeros((n, n))
    return np.block([[(1 + beta) * I - lr * H, -beta * I], [I, O]]), np.vstack([I, O])


def dense_discrete_state(H: np.ndarray, C: np.ndarray, lr: float, beta: float) -> np.ndarray:
    """Full 2n-state solution of X = A X A^T + lr^2 B C B^T."""
    A, B = state_matrices(H, lr, beta)
    m = A.shape[0]
    x = np.linalg.solve(np.eye(m * m) - np.kron(A, A), (lr**2 * B @ C @ B.T).ravel())
    return x.reshape(m, m)


def dense_regression(X: np.ndarray, y: np.ndarray, S: int, sampling: str):
    """Hessian, noise covariance at w*, per-example Jacobians J_mu and f, all (NK x NK)."""
    P, N = X.shape
    Y = y.reshape(P, -1)
    K = Y.shape[1]
    w = np.linalg.lstsq(X, Y, rcond=None)[0]
    r = X @ w - Y
    f = batch_noise_factor(sampling, P, S)
    g0 = np.stack([np.kron(X[m], r[m]) for m in range(P)])
    C = f * (g0.T @ g0 / P - np.outer(g0.mean(0), g0.mean(0)))
    J = np.stack([np.kron(np.outer(X[m], X[m]), np.eye(K)) for m in range(P)])
    return np.kron(X.T @ X / P, np.eye(K)), C, J, f


def dense_exact(X: np.ndarray, y: np.ndarray, lr: float, S: int, beta: float, sampling: str) -> np.ndarray:
    """docs/theory.md §3c on the 2n state: X = A X A^T + lr^2 B f[(1/P) sum J M J^T - H M H + C0] B^T."""
    H, C, J, f = dense_regression(X, y, S, sampling)
    n = H.shape[0]
    A, B = state_matrices(H, lr, beta)
    E = np.hstack([np.eye(n), np.zeros((n, n))])
    noise = f * (sum(np.kron(Jm, Jm) for Jm in J) / len(J) - np.kron(H, H))
    m = 2 * n
    L = np.eye(m * m) - np.kron(A, A) - lr**2 * np.kron(B, B) @ noise @ np.kron(E, E)
    return np.linalg.solve(L, lr**2 * np.kron(B, B) @ C.ravel()).reshape(m, m)[:n, :n]


def dense_continuum(H: np.ndarray, C: np.ndarray, lr: float, beta: float) -> np.ndarray:
    n = H.shape[0]
    I = np.eye(n)
    return np.linalg.solve(np.kron(H, I) + np.kron(I, H), lr / (1 - beta) * C.ravel()).reshape(n, n)


def dense_anticorrelated(H: np.ndarray, C: np.ndarray, lr: float, beta: float, M: int) -> np.ndarray:
    """docs/theory.md §3e with explicit powers: X + sum_h kappa_h (A^h X + X A^hT), delta-block."""
    Xs = dense_discrete_state(H, C, lr, beta)
    A, _ = state_matrices(H, lr, beta)
    kappa = noise_kernel("epoch", M, M)
    total = Xs.copy()
    for h in range(1, M + 1):
        Ah = np.linalg.matrix_power(A, h)
        total += kappa[h] * (Ah @ Xs + Xs @ Ah.T)
    return total[: H.shape[0], : H.shape[0]]


@pytest.mark.parametrize("sampling", ["with-replacement", "random-batch"])
@pytest.mark.parametrize("beta", [0.0, 0.6])
@pytest.mark.parametrize("K", [1, 2])
def test_exact_matches_dense_kronecker_solution(sampling, beta, K):
    N = 4 if K == 1 else 3
    X, y = regression_data(P=12, N=N, K=K, seed=K)
    lam_max = np.linalg.eigvalsh(X.T @ X / 12)[-1]
    lr = 0.3 * (1 + beta) / lam_max
    got = stationary_covariance(X, y, lr, batch_size=3, momentum=beta, sampling=sampling, method="exact")
    want = dense_exact(X, y, lr, 3, beta, sampling)
    assert got.shape == (N * K, N * K)
    assert relative_error(got, want) < RTOL


def test_exact_at_n8_and_differs_from_white_noise_solutions():
    """N = 8, the largest brute-force size; the state-dependent noise matters at this lr."""
    X, y = regression_data(P=24, N=8, seed=3)
    lr = 1.0 / np.linalg.eigvalsh(X.T @ X / 24)[-1]
    got = stationary_covariance(X, y, lr, batch_size=4)
    assert relative_error(got, dense_exact(X, y, lr, 4, 0.0, "with-replacement")) < RTOL
    discrete = stationary_covariance(X, y, lr, batch_size=4, method="discrete")
    assert relative_error(discrete, got) > 1e-2


@pytest.mark.parametrize("beta", [0.0, 0.6])
@pytest.mark.parametrize("K", [1, 2])
@pytest.mark.parametrize("sampling", ["with-replacement", "epoch", "fixed-order"])
def test_discrete_and_continuum_match_dense(beta, K, sampling):
    X, y = regression_data(P=15, N=3, K=K, seed=5)
    H, C, _, _ = dense_regression(X, y, 5, sampling)
    lr = 0.9 / np.linalg.eigvalsh(H)[-1]
    n = H.shape[0]
    kwargs = dict(batch_size=5, momentum=beta, sampling=sampling)
    discrete = stationary_covariance(X, y, lr, method="discrete", **kwargs)
    assert relative_error(discrete, dense_discrete_state(H, C, lr, beta)[:n, :n]) < RTOL
    continuum = stationary_covariance(X, y, lr, method="continuum", **kwargs)
    assert relative_error(continuum, dense_continuum(H, C, lr, beta)) < RTOL


@pytest.mark.parametrize("beta", [0.0, 0.5])
def test_detailed_balance_is_symmetrised_inverse_hessian_times_noise(beta):
    X, y = regression_data(P=20, N=4, seed=7)
    H, C, _, _ = dense_regression(X, y, 4, "random-batch")
    lr = 0.3
    want = lr / (2 * (1 - beta)) * np.linalg.solve(H, C)
    want = (want + want.T) / 2
    got = stationary_covariance(X, y, lr, 4, momentum=beta, sampling="random-batch", method="detailed-balance")
    assert relative_error(got, want) < RTOL
    # [H, C] != 0 here, so it is not the continuum solution ...
    assert relative_error(got, dense_continuum(H, C, lr, beta)) > 1e-3
    # ... but it is where they commute.
    rng = np.random.default_rng(1)
    Q = np.linalg.qr(rng.normal(size=(4, 4)))[0]
    Hc, Cc = Q @ np.diag([0.3, 1.0, 2.0, 3.0]) @ Q.T, Q @ np.diag([1.0, 0.2, 0.5, 4.0]) @ Q.T
    db = quadratic_stationary_covariance(Hc, Cc, lr, beta, method="detailed-balance")
    assert relative_error(db, dense_continuum(Hc, Cc, lr, beta)) < RTOL


@pytest.mark.parametrize("beta", [0.0, 0.7])
def test_anticorrelated_matches_explicit_matrix_powers(beta):
    P, S = 24, 3  # M = 8 batches per epoch
    X, y = regression_data(P=P, N=4, seed=11)
    H, C, _, _ = dense_regression(X, y, S, "epoch")
    lr = 1.2 / np.linalg.eigvalsh(H)[-1]
    got = stationary_covariance(X, y, lr, S, momentum=beta, sampling="epoch", method="anticorrelated")
    assert relative_error(got, dense_anticorrelated(H, C, lr, beta, P // S)) < RTOL


def test_quadratic_general_problem_with_singular_hessian_is_solved_on_the_range():
    """A PSD H of rank 3 in 5 dimensions: the answer is the reduced problem's, zero on the null space."""
    rng = np.random.default_rng(2)
    Q = np.linalg.qr(rng.normal(size=(5, 5)))[0]
    Qr, null = Q[:, :3], Q[:, 3:]
    H = Qr @ np.diag([0.2, 1.0, 2.5]) @ Qr.T
    G = rng.normal(size=(5, 5))
    C = G @ G.T
    lr, beta, M = 0.4, 0.3, 6
    Hr, Cr = Qr.T @ H @ Qr, Qr.T @ C @ Qr
    for method, reference in [
        ("discrete", dense_discrete_state(Hr, Cr, lr, beta)[:3, :3]),
        ("anticorrelated", dense_anticorrelated(Hr, Cr, lr, beta, M)),
        ("continuum", dense_continuum(Hr, Cr, lr, beta)),
    ]:
        got = quadratic_stationary_covariance(H, C, lr, beta, method=method, batches_per_epoch=M)
        assert relative_error(got, Qr @ reference @ Qr.T) < RTOL
        assert np.abs(got @ null).max() < 1e-12 * np.abs(got).max()


@pytest.mark.parametrize("beta", [0.0, 0.5])
def test_collinear_features_give_the_solution_on_the_range_of_h(beta):
    """X of rank 3 with N = 5, P = 20: exact solution = that of the reduced regression on range(H)."""
    rng = np.random.default_rng(4)
    X0, y = rng.normal(size=(20, 3)), rng.normal(size=20)
    X = X0 @ rng.normal(size=(3, 5))
    Qr = np.linalg.svd(X, full_matrices=False)[2][:3].T  # orthonormal basis of the row space
    lr = 0.7 / np.linalg.eigvalsh(X.T @ X / 20)[-1]
    null = np.linalg.svd(X)[2][3:].T
    reduced = dense_exact(X @ Qr, y, lr, 4, beta, "with-replacement")
    got = stationary_covariance(X, y, lr, 4, momentum=beta, method="exact")
    assert relative_error(got, Qr @ reduced @ Qr.T) < 1e-8
    assert np.abs(got @ null).max() < 1e-10 * np.abs(got).max()
    got = stationary_covariance(X, y, lr, 4, momentum=beta, method="discrete")
    reduced = stationary_covariance(X @ Qr, y, lr, 4, momentum=beta, method="discrete")
    assert relative_error(got, Qr @ reduced @ Qr.T) < 1e-8


def test_fewer_examples_than_features_interpolates_and_gives_zero():
    X, y = regression_data(P=4, N=6, seed=8)
    for method in ("exact", "discrete", "continuum"):
        got = stationary_covariance(X, y, 0.1, 2, method=method)
        assert got.shape == (6, 6)
        assert np.abs(got).max() < 1e-20


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(sampling="epoch", method="exact"), "with-replacement' or 'random-batch"),
        (dict(sampling="fixed-order", method="exact"), "anticorrelated"),
        (dict(sampling="with-replacement", method="anticorrelated"), "sampling='epoch'"),
        (dict(sampling="random-batch", method="anticorrelated"), "sampling='epoch'"),
        (dict(sampling="fixed-order", method="anticorrelated"), "sampling='epoch'"),
        (dict(method="lyapunov"), "method must be one of"),
        (dict(sampling="shuffle"), "sampling must be one of"),
        (dict(momentum=1.0), "momentum must be in"),
        (dict(momentum=-0.1), "momentum must be in"),
        (dict(lr=0.0), "lr must be"),
        (dict(lr=float("nan")), "lr must be"),
        (dict(batch_size=0), "batch_size must be"),
        (dict(batch_size=13), "batch_size must be"),
        (dict(batch_size=2.5), "batch_size must be"),
        (dict(y=np.zeros(11)), "same P"),
    ],
)
def test_bad_input_is_refused(kwargs, match):
    X, y = regression_data(P=12, N=3)
    args = dict(X=X, y=y, lr=0.1, batch_size=3) | kwargs
    with pytest.raises(UsageError, match=match):
        stationary_covariance(**args)


@pytest.mark.parametrize("beta", [0.0, 0.9])
def test_lr_beyond_stability_limit_is_refused_with_the_limit(beta):
    X, y = regression_data(P=12, N=3)
    lam_max = np.linalg.eigvalsh(X.T @ X / 12)[-1]
    limit = 2 * (1 + beta) / lam_max
    for method in ("exact", "discrete", "continuum"):
        with pytest.raises(UsageError, match="stability limit") as info:
            stationary_covariance(X, y, 1.001 * limit, 3, momentum=beta, method=method)
        assert f"{limit:.6g}" in str(info.value)


def test_exact_refuses_lr_beyond_mean_square_stability():
    """Below the deterministic limit, but single-example batches make the second moments diverge."""
    X, y = regression_data(P=12, N=3)
    lr = 1.9 / np.linalg.eigvalsh(X.T @ X / 12)[-1]
    stationary_covariance(X, y, lr, 1, method="discrete")  # white noise at w*: fine
    with pytest.raises(UsageError, match="mean-square stability"):
        stationary_covariance(X, y, lr, 1, method="exact")


def test_quadratic_refuses_saddle_and_bad_shapes():
    with pytest.raises(UsageError, match="positive semi-definite"):
        quadratic_stationary_covariance(np.diag([1.0, -0.5]), np.eye(2), 0.1)
    with pytest.raises(UsageError, match="square matrices"):
        quadratic_stationary_covariance(np.eye(2), np.eye(3), 0.1)
    with pytest.raises(UsageError, match="batches_per_epoch"):
        quadratic_stationary_covariance(np.eye(2), np.eye(2), 0.1, method="anticorrelated", batches_per_epoch=0)
