"""The second-order epoch kick (docs/theory.md §3h, sgdnoise.theory.epoch_kick).

1. Its mean and covariance over the orders, in closed form, equal a brute force over every
   order of the examples (to round-off).
2. The epoch-start moments at leading order in lr equal the exact reference of §3f
   (theory/epoch_exact.py) up to a relative error of order lr, in every direction; the
   usage-correlation closure (§3g) is off there by a factor of order one.
"""
import itertools

import numpy as np
import pytest

from sgdnoise.errors import UsageError
from sgdnoise.theory.epoch_exact import epoch_exact_moments
from sgdnoise.theory.epoch_kick import epoch_kick_covariance, leading_order_start_covariance

from test_epoch_theory import _eig_problem


def test_kick_moments_equal_the_brute_force_over_all_orders():
    N, P, S = 4, 8, 2
    _, _, Z, lam, _, r = _eig_problem(N, P, 2)
    M = P // S
    # every distinct assignment of batch indices t (all orders, equally likely)
    labels = np.unique(np.array([np.argsort(p) // S for p in itertools.permutations(range(P))]), axis=0)
    w = Z * r[:, None]
    h = np.einsum("mi,mj->mij", Z, Z) - np.diag(lam)
    theta = (labels[:, :, None] > labels[:, None, :]).astype(float)
    b_h = np.einsum("kmn,mij,nj->ki", theta, h, w) / S**2
    b_l = lam * ((M - 1 - labels) @ w) / S
    b = b_l + b_h

    def cov(x, y):
        return (x - x.mean(0)).T @ (y - y.mean(0)) / len(x)

    kick = epoch_kick_covariance(Z, r, lam, S)
    scale = np.abs(kick["cov"]).max()
    for name, ref in [("cov", cov(b, b)), ("cov_h", cov(b_h, b_h)), ("cov_lambda", cov(b_l, b_l)),
                      ("cross", cov(b_l, b_h))]:
        np.testing.assert_allclose(kick[name], ref, rtol=0, atol=1e-12 * scale, err_msg=name)
    np.testing.assert_allclose(kick["mean"], b.mean(0), rtol=0, atol=1e-12 * np.abs(b.mean(0)).max())


@pytest.mark.parametrize("N, P, S, seed", [(5, 8, 2, 0), (8, 12, 3, 1)])
def test_leading_order_start_moments_match_the_exact_reference(N, P, S, seed):
    # Relative error O(lr): below 3 % at lr lam_max = 0.01 and shrinking by at least 2 when lr
    # shrinks by 3 (measured ~3.3), every direction, variance and mean.
    X, y, Z, lam, V, r = _eig_problem(N, P, seed)
    errors = []
    for f in (0.01, 0.003):
        lr = f / lam.max()
        exact = epoch_exact_moments(X, y, lr, S, 0.0)
        mean0, sigma0 = leading_order_start_covariance(Z, r, lam, lr, S)
        var_exact = np.diag(V.T @ exact.covariance_start @ V)
        errors.append(np.concatenate([np.abs(np.diag(sigma0) / var_exact - 1),
                                      np.abs(mean0 / (V.T @ exact.mean_start) - 1)]))
    assert np.all(errors[0] < 0.03)
    assert np.all(errors[1] < errors[0] / 2)


def test_batch_size_must_divide_the_examples():
    _, _, Z, lam, _, r = _eig_problem(3, 10, 0)
    with pytest.raises(UsageError, match="batch_size"):
        epoch_kick_covariance(Z, r, lam, 3)


def test_closure_with_the_leading_order_start_is_second_order_in_lr():
    # The closure (§3g) with its epoch-start variance replaced by the leading-order one (§3h):
    # if §3h's term is the whole O(1) error of the start variance, what is left is O(lr^2)
    # relative: shrinking lr by 3 must shrink every direction's error by at least 5 (measured
    # 8.6-9.5), while the closure alone shrinks by 2.7-3.3.
    from sgdnoise.theory.epoch_closure import closure_moments
    from sgdnoise.theory.epoch_kick import start_corrected_var_theta
    X, y, Z, lam, _, r = _eig_problem(5, 8, 0)
    errors = []
    for f in (0.03, 0.01):
        lr = f / lam.max()
        exact = epoch_exact_moments(X, y, lr, 2, 0.0)
        closure = closure_moments(X, y, lr, 2, 0.0)
        corrected = start_corrected_var_theta(closure.var_theta, closure.var_theta_start, Z, r, lam, lr, 2)
        errors.append(np.abs(corrected / exact.var_theta - 1))
    assert np.all(errors[1] < errors[0] / 5)


# --- With momentum (docs/theory.md §3h, "With momentum"; sgdnoise.theory.epoch_start) ---------------

def _all_batch_labels(P, S):
    return np.unique(np.array([np.argsort(p) // S for p in itertools.permutations(range(P))]), axis=0)


def test_pattern_coefficients_reduce_to_the_plain_sgd_ones():
    from sgdnoise.theory.epoch_kick import order_probabilities
    from sgdnoise.theory.epoch_pairs import pair_weight_coefficients
    pr = order_probabilities(12, 3)
    q, f_sm, f_ch, f_4 = pr["q"], pr["f_sm"], pr["f_ch"], pr["f_4"]
    co = pair_weight_coefficients(12, 3, 0.0)
    np.testing.assert_allclose([co["1"], co["A"], co["B"], co["C"], co["q"]],
                               [-6 * f_4 + 4 * f_sm + 4 * f_ch - q, f_4 - q * q, q - 2 * f_sm + f_4, f_4 - 2 * f_ch, q],
                               rtol=1e-12)


@pytest.mark.parametrize("mode", ["undamped", "propagated", "target"])
def test_momentum_kick_equals_the_brute_force_over_all_orders(mode):
    # K (per direction, state (delta_k, delta_{k-1})) without the following epochs' part: the
    # full-batch linear response plus eta^2/(1-beta)^2 b_h^omega, the u kick of batch a standing
    # at post_i(a) at the epoch end ((1, 1), or followed by the full-batch map for "target"),
    # over all 2520 batch assignments of N = 4, P = 8, S = 2, beta = 0.6; to round-off.
    from sgdnoise.theory.epoch_pairs import _beta_weights, _lag_weights, _propagators
    from sgdnoise.theory.epoch_start import start_covariance_momentum
    N, P, S, beta = 4, 8, 2, 0.6
    _, _, Z, lam, _, r = _eig_problem(N, P, 2)
    M = P // S
    lr = 0.4 * (1 - beta) / lam.max()
    labels = _all_batch_labels(P, S)
    w = Z * r[:, None]
    h = np.einsum("mi,mj->mij", Z, Z) - np.diag(lam)
    pw = _propagators(lam, lr, beta, M)
    omega = _lag_weights(pw, beta, M) if mode == "propagated" else np.repeat(_beta_weights(M, beta), N, axis=0)
    post = (1 - beta) * pw[M - 1 - np.arange(M), :, :, 0] if mode == "target" else np.ones((M, N, 2))
    W = omega[:, labels[:, :, None], labels[:, None, :]]  # (k, orders, P, P)
    b_h = np.einsum("komn,mik,nk,omic->oic", W, h, w, post[labels]) / S ** 2
    kappa = -lr * pw[M - 1 - np.arange(M), :, :, 0]
    b = np.einsum("opia,pi->oia", kappa[labels], w) / S + lr ** 2 / (1 - beta) ** 2 * b_h
    b = b - b.mean(axis=0)
    ref = np.einsum("oia,oib->iab", b, b) / len(b)
    res = start_covariance_momentum(Z, r, lam, lr, S, beta, mode == "propagated", target=mode == "target")
    K = res["kick"] - res["var_out"]
    np.testing.assert_allclose(K, ref, rtol=0, atol=1e-12 * np.abs(ref).max())


def _tiny_problem():
    """N = 3, P = 6, S = 2, beta = 0.6, lr lam_max/(1 - beta) = 0.5: every order enumerable."""
    N, P, S, beta = 3, 6, 2, 0.6
    _, _, Z, lam, _, r = _eig_problem(N, P, 0)
    h = np.einsum("mi,mj->mij", Z, Z) - np.diag(lam)
    return Z, lam, r, h, P // S, 0.5 * (1 - beta) / lam.max(), _all_batch_labels(P, S)


@pytest.mark.parametrize("target", [False, True])
def test_following_epochs_term_equals_the_brute_force_over_two_orders(target):
    # var_out: the Hessian fluctuations of the next epoch (sum_m beta^m post(m) h_{B'_m}) on the
    # displacement in flight G' = sum_k beta^(M-k) g_{B_k}; all pairs of orders of two epochs
    # (P = 6, S = 2), the later epochs' geometric factor 1/(1 - beta^(2M)) taken out.
    from sgdnoise.theory.epoch_pairs import _propagators
    from sgdnoise.theory.epoch_start import start_covariance_momentum
    Z, lam, r, h, M, lr, labels = _tiny_problem()
    N, S, beta = Z.shape[1], 2, 0.6
    post = (1 - beta) * _propagators(lam, lr, beta, M)[M - 1 - np.arange(M), :, :, 0] if target else np.ones((M, N, 2))
    w = Z * r[:, None]
    G = np.einsum("on,ni->oi", beta ** (M - labels.astype(float)), w) / S
    Hn = np.einsum("om,mij,omic->oijc", beta ** labels.astype(float), h, post[labels]) / S
    B = np.einsum("pijc,oj->poic", Hn, G).reshape(-1, N, 2)
    B = B - B.mean(axis=0)
    var = np.einsum("oic,oid->icd", B, B) / len(B)
    res = start_covariance_momentum(Z, r, lam, lr, S, beta, target=target)
    np.testing.assert_allclose(res["var_out"] * (1 - beta ** (2 * M)), var * (lr / (1 - beta)) ** 4, rtol=1e-10)


@pytest.mark.parametrize("beta", [0.6, 0.9])
def test_momentum_start_variance_matches_the_exact_reference_to_first_order(beta):
    # Leading order in lr: the relative error of the epoch-start variance is O(lr) in every
    # direction: below 2 % at lr lam_max/(1 - beta) = 0.03 and shrinking by at least 2 when lr
    # shrinks by 3 (measured 3.0-3.5; a first-order error shrinks by 3).
    from sgdnoise.theory.epoch_start import start_covariance_momentum
    X, y, Z, lam, V, r = _eig_problem(8, 12, 1)
    errors = []
    for f in (0.03, 0.01):
        lr = f * (1 - beta) / lam.max()
        exact = epoch_exact_moments(X, y, lr, 3, beta)
        start = start_covariance_momentum(Z, r, lam, lr, 3, beta)["var_theta_start"]
        errors.append(np.abs(start / exact.var_theta_start - 1))
    assert np.all(errors[0] < 0.02)
    assert np.all(errors[1] < errors[0] / 2)


@pytest.mark.parametrize("beta, mode, shrink, shrink_max", [(0.0, "propagated", 6, 6), (0.9, "propagated", 2, 2),
                                                            (0.9, "target", 2, 4)])
def test_closure_with_the_momentum_start_error_order(beta, mode, shrink, shrink_max):
    # Method epoch (compact closure, §3k) with its start variance replaced, lr lam_max/(1 - beta)
    # = 0.03 -> 0.01.  A second-order error shrinks 9-fold when lr shrinks 3-fold (>= 6 leaves
    # room for the third-order term), a first-order one 3-fold.  beta = 0, propagated pair
    # weights: second order in every direction (measured 8.0-11.6).  beta = 0.9, propagated:
    # first order (2.6-3.5): the u kicks made late in the epoch are still in flight at its end.
    # beta = 0.9, target (those kicks followed to the epoch end): the largest error shrinks
    # 5.0-fold (0.074 % -> 0.015 %), single directions 2.4-14-fold.
    from sgdnoise.theory.epoch_compact import compact_closure_moments
    from sgdnoise.theory.epoch_start import start_corrected_var_theta_momentum
    X, y, Z, lam, _, r = _eig_problem(8, 12, 1)
    errors = []
    for f in (0.03, 0.01):
        lr = f * (1 - beta) / lam.max()
        exact = epoch_exact_moments(X, y, lr, 3, beta)
        closure = compact_closure_moments(X, y, lr, 3, beta, rtol=1e-10)
        corrected = start_corrected_var_theta_momentum(closure.var_theta, closure.var_theta_start, Z, r, lam,
                                                       lr, 3, beta, propagated=mode == "propagated",
                                                       target=mode == "target")
        errors.append(np.abs(corrected / exact.var_theta - 1))
    assert np.all(errors[1] < errors[0] / shrink)
    assert errors[1].max() < errors[0].max() / shrink_max
    assert np.all(errors[0] < 0.005)


@pytest.mark.parametrize("target", [False, True])
def test_fluctuation_kick_equals_the_brute_force_over_all_orders(target):
    # Var over the orders of eta/(1-beta) sum_j (h_{B_j} delta_j)_i, delta a stationary process
    # (variance s_k, full-batch autocorrelation R_k, independent of the order), against
    # _fluctuation_kick; P = 6, S = 2 (90 batch assignments), beta = 0.6.
    from scipy.linalg import solve_discrete_lyapunov

    from sgdnoise.theory.epoch_start import _fluctuation_kick, _Kick
    Z, lam, r, h, M, lr, labels = _tiny_problem()
    N, S, beta = Z.shape[1], 2, 0.6
    kick = _Kick(Z, lam, lr, S, beta, False, target)
    s = np.array([0.3, 1.0, 2.0])
    hb = np.stack([np.stack([h[lab == j].mean(axis=0) for j in range(M)]) for lab in labels])  # (orders, M, n, n)
    ref = np.zeros((N, 2, 2))
    for k in range(N):
        A = np.array([[1 + beta - lr * lam[k], -beta], [1.0, 0.0]])
        sig = solve_discrete_lyapunov(A, np.diag([1.0, 0.0]))
        R = np.array([(np.linalg.matrix_power(A, ell) @ sig)[0, 0] / sig[0, 0] for ell in range(M)])
        Rm = R[np.abs(np.arange(M)[:, None] - np.arange(M)[None, :])]
        ref += s[k] * np.einsum("ojn,okn,jk,jnc,knd->ncd", hb[:, :, :, k], hb[:, :, :, k], Rm, kick.post,
                                kick.post) / len(labels)
    np.testing.assert_allclose(_fluctuation_kick(kick, s), (lr / (1 - beta)) ** 2 * ref, rtol=1e-10)


def test_slow_only_leaves_the_moving_directions_alone():
    from sgdnoise.theory.epoch_start import start_corrected_var_theta_momentum
    _, _, Z, lam, _, r = _eig_problem(6, 12, 1)
    lr, S = 1.2 / lam.max(), 3
    var, start = np.linspace(1.0, 2.0, 6), np.linspace(0.5, 1.0, 6)
    out = start_corrected_var_theta_momentum(var, start, Z, r, lam, lr, S, 0.0, slow_only=True)
    moving = lr * lam * (12 // S) >= 1
    assert moving.any() and not moving.all()
    np.testing.assert_array_equal(out[moving], var[moving])
    assert np.all(out[~moving] != var[~moving])


def test_compact_closure_start_correction_option_against_the_exact_reference():
    # compact_closure_moments(start_correction=True) (§3h, "With momentum"): N = 6, P = 12, S = 3,
    # beta = 0.9, lr lam_max/(1-beta) = 0.3; largest |error| over the directions 6.1 % -> 1.7 %
    # (benchmarks/epoch_start_grid.py); the covariance stays consistent with var_theta.
    from sgdnoise.theory.epoch_compact import compact_closure_moments
    X, y, Z, lam, V, r = _eig_problem(6, 12, 1)
    lr = 0.3 * (1 - 0.9) / lam.max()
    exact = epoch_exact_moments(X, y, lr, 3, 0.9)
    plain = compact_closure_moments(X, y, lr, 3, 0.9, rtol=1e-9)
    corrected = compact_closure_moments(X, y, lr, 3, 0.9, rtol=1e-9, start_correction=True)
    err_plain = np.abs(plain.var_theta / exact.var_theta - 1).max()
    err = np.abs(corrected.var_theta / exact.var_theta - 1).max()
    assert err < err_plain / 2 and err < 0.03
    np.testing.assert_allclose(np.einsum("ij,ik,kj->j", V, corrected.covariance, V), corrected.var_theta, rtol=1e-10)


def _three_example_law(P, S):
    # Brute force: the joint law of the batch indices of three distinct examples in every order of P (M = P/S batches).
    M = P // S
    t = np.repeat(np.arange(M), S)
    law = np.zeros((M, M, M))
    for a, b, c in itertools.permutations(range(P), 3):
        law[t[a], t[b], t[c]] += 1
    return law / (P * (P - 1) * (P - 2))


def test_triple_sum_equals_the_dense_three_example_law():
    # The 3-example batch-index law p3 (M, M, M) contracted densely, against the O(M^2) form with merged deltas.
    from sgdnoise.theory.epoch_pairs import _triple_sum
    rng = np.random.default_rng(0)
    P, S = 24, 3
    M = P // S
    F, G = rng.normal(size=(2, 2, M, M)), rng.normal(size=(2, 2, M, M))
    p3 = _three_example_law(P, S)
    for f, g in [("ixab", "iyac"), ("ixab", "iycb"), ("ixac", "iyba"), ("ixbc", "iyca")]:
        dense = np.einsum(f"abc,{f},{g}->ixy", p3, F, G)
        np.testing.assert_allclose(_triple_sum(f, g, "ixy", F, G, P, S), dense, rtol=1e-12, atol=1e-15)


def test_triple_marginal_equals_the_dense_three_example_law():
    from sgdnoise.theory.epoch_pairs import _triple_marginal
    omega = np.random.default_rng(1).normal(size=(3, 2, 8, 8))
    dense = np.einsum("abc,...bc->...a", _three_example_law(24, 3), omega)
    np.testing.assert_allclose(_triple_marginal(omega, 24, 3), dense, rtol=1e-12, atol=1e-15)
