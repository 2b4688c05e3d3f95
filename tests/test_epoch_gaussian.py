"""The compact closure with Gaussian data moments (theory/epoch_gaussian.py, docs/theory.md §3l).

The algebra is proven by the limit P -> infinity: on data whose eigenbasis moments are Gaussian
up to sampling error, the Gaussian step must approach the compact step of §3k (which forms the
same sums from the examples) like 1/sqrt(P).
"""
import dataclasses

import numpy as np
import pytest

from sgdnoise.errors import UsageError
from sgdnoise.theory.epoch_closure import _residuals, _sorted_basis
from sgdnoise.theory.epoch_compact import CompactEpoch, compact_closure_moments
from sgdnoise.theory.epoch_gaussian import GaussianCompactEpoch, gaussian_closure_moments
from sgdnoise.theory.epoch_weights import step_weights
from test_epoch_compact import _random_state
from test_epoch_theory import _eig_problem

#: Relative standard deviation of z^8 for a standard Gaussian z: sqrt(E z^16 / (E z^8)^2 - 1) with
#: E z^16 = 15!! = 2027025 and E z^8 = 7!! = 105; the noisiest per-example polynomial a step sums (8th order).
SD_Z8 = float(np.sqrt(2027025 / 105 ** 2 - 1))  # 13.5


def _epochs(P, beta, lr=0.3, S=4, seed=0):
    """Compact and Gaussian epochs on x ~ N(0, diag(s)) (distinct s), y = x . u + noise, N = 3."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(P, 3)) * np.sqrt([0.5, 1.2, 2.0])
    y = X @ rng.normal(size=3) + 0.7 * rng.normal(size=P)
    basis, order = _sorted_basis(X, y, lr, beta)  # the sum rules Z^T Z = P Lam, Z^T r = 0 hold exactly
    Z, r, lam = basis.Z[:, order], _residuals(basis, order, y), basis.lam[order]
    return (CompactEpoch(Z, r, lam, lr, beta, S),
            GaussianCompactEpoch(lam, np.mean(r ** 2), np.mean(r ** 4), lr, beta, S, P))


def _state(D, seed=0):
    """test_epoch_compact's random state, ten times larger (m corner 1)."""
    m, W = _random_state(D, seed)
    m *= 10
    m[-1, -1] = 1.0
    return m, 10 * W


def _blocks(n):
    one, two, c = slice(0, n), slice(n, 2 * n), slice(2 * n, 2 * n + 1)
    return [(one, one), (two, one), (two, two), (one, c), (two, c), (c, c)]


def _differences(compact, gauss):
    """Per position j in (0, 1, M - 2) and block of m and W: the difference of the steps relative to
    the block's data-dependent part (the step less the exact full-batch propagation; the Gaussian one).

    Blocks whose Gaussian data-dependent part vanishes (it is odd in z or r, or the block is only
    propagated) are measured relative to the whole matrix's: there the compact step has only its
    sampling noise.  Returns (positions, 12) relative differences.
    """
    m, W = _state(compact.D)
    out = []
    for j, w in [(0, None), (1, W), (compact.M - 2, W)]:
        row = []
        w_j = step_weights(compact.P, compact.S, j)["w"]
        prop_m = compact.A_sandwich(m)
        prop_W = 0 * m if w is None else w_j * compact._symmetric(compact.A_sandwich(W))
        for (xc, xg), prop in zip(zip(compact.step(j, m, w), gauss.step(j, m, w)), (prop_m, prop_W)):
            total = np.linalg.norm(xg - prop)
            for b in _blocks(compact.n):
                own = np.linalg.norm((xg - prop)[b])
                row.append(np.linalg.norm((xg - xc)[b]) / (own if own > 1e-12 * total else total))
        out.append(row)
    return np.array(out)


@pytest.mark.parametrize("beta", [0.0, 0.6])
def test_gaussian_step_is_the_compact_step_for_infinitely_many_gaussian_examples(beta):
    # Every sum over examples of the compact step, formed from Gaussian data, differs from its
    # Gaussian value by sampling error ~ 1/sqrt(P): the largest difference of the steps (over the
    # three positions and the blocks, m and W apart) must shrink by about sqrt(10) from P = 40k to
    # 400k (at least 2 asserted: 2.5-4.6 measured; single blocks scatter, 1.5-5, as heavy-tailed
    # 8th-moment sums do at these P) and stay below 4 standard errors of the noisiest moment summed
    # (z^8, relative s.d. SD_Z8 / sqrt(P)) in every block.  A wrong Wick coefficient leaves an
    # error that does not shrink with P.
    small = _differences(*_epochs(40_000, beta))
    large = _differences(*_epochs(400_000, beta))
    for P, diff in [(40_000, small), (400_000, large)]:
        assert diff.max() < 4 * SD_Z8 / np.sqrt(P), (P, diff)
    ratio = [small[:, :6].max() / large[:, :6].max(), small[:, 6:].max() / large[:, 6:].max()]  # m, W
    assert min(ratio) > 2, (ratio, small, large)


def test_the_epoch_start_and_a_zero_state_are_handled():
    # W = None (epoch start, all D_mu = 0) is the same as W = 0, and with no noise (r = 0) and
    # m = corner the step keeps the minimum: nothing moves.
    compact, gauss = _epochs(1000, 0.3)
    m, W = _state(gauss.D, 1)
    for a, b in zip(gauss.step(0, m, None), gauss.step(0, m, np.zeros_like(W))):
        np.testing.assert_array_equal(a, b)
    quiet = GaussianCompactEpoch(gauss.lam, 0.0, 0.0, 0.3, 0.3, 4, 1000)
    corner = np.zeros_like(m)
    corner[-1, -1] = 1.0
    m1, W1 = quiet.step(3, corner, np.zeros_like(W))
    np.testing.assert_array_equal(m1, corner)
    assert not np.any(W1)


def test_same_outputs_and_conventions_as_the_compact_closure():
    X, y, _, lam, _, _ = _eig_problem(6, 24, 0)
    args = (X, y, 0.2 / lam.max(), 4, 0.5)
    gauss, compact = gaussian_closure_moments(*args), compact_closure_moments(*args)
    for field in dataclasses.fields(gauss):
        assert np.shape(getattr(gauss, field.name)) == np.shape(getattr(compact, field.name)), field.name
    np.testing.assert_array_equal(gauss.hessian_eigenvalues, compact.hessian_eigenvalues)
    assert gauss.batches_per_epoch == 6 and np.all(gauss.var_theta > 0) and np.all(gauss.var_v > 0)
    assert gauss.residual < 1e-4


@pytest.mark.parametrize("kwargs, name", [
    (dict(lr=-1.0), "lr"), (dict(batch_size=0), "batch_size"), (dict(batch_size=20), "batch_size"),
    (dict(momentum=1.0), "momentum"), (dict(lr=50.0), "lr"),
])
def test_bad_arguments_are_refused_as_by_the_compact_closure(kwargs, name):
    X, y, _, _, _, _ = _eig_problem(4, 24, 0)
    args = dict(lr=0.1, batch_size=4, momentum=0.0) | kwargs
    refusals = []
    for method in (gaussian_closure_moments, compact_closure_moments):
        with pytest.raises(UsageError, match=name) as refused:
            method(X, y, **args)
        refusals.append(str(refused.value))
    assert refusals[0] == refusals[1]


def _per_example_sums(c, m, W, co):
    """Per-example terms (P, ...) of every sum over examples the compact step forms (§3k), by name."""
    n, Z, Y = c.n, c.Z, c.Z2
    um, u = c.m_rho(m), c.apply_d(W)
    sm, gmv = c._kick_parts(um)
    sd, gdv = c._kick_parts(u)
    g = c.zeta[:, :, None] * c.zeta[:, None, :] - c.gbar  # (P, D, D)
    zz = Z[:, :, None] * Z[:, None, :]
    terms = {"u z": u[:, :, None] * Z[:, None, :], "z z s_m": zz * sm[:, None, None],
             "z z s_D": zz * sd[:, None, None], "g^2": g ** 2,
             "F m": g[:, :, :n] * um[:, :, None] * Z[:, None, :], "F u": g[:, :, :n] * u[:, :, None] * Z[:, None, :]}
    k = c.rho_times(c.u_z(u))
    for key in ("gm", "gd", "gT", "gs"):
        w = {name: (co[name] if name == key else 0.0) for name in ("gm", "gd", "gT", "gs")}
        b = -(w["gm"] * gmv + w["gd"] * gdv) + w["gs"] * k
        coef = w["gm"] * sm + (w["gd"] + w["gT"]) * sd
        left = Y * coef[:, None] + 2 * Z * b
        terms["G " + key] = left[:, :, None] * Y[:, None, :] - np.einsum("pa,ab->pab", left, np.diag(c.lam))
    return terms


def _gaussian_sums(g, m, W, co):
    """The same sums' Gaussian values per example (epoch_gaussian's formulas)."""
    n = g.n
    du1, du2 = g._du(W[:n, :n], W[:n, -1]), g._du(W[n:2 * n, :n], W[n:2 * n, -1])
    y_sm, y_sd = g._y_sm(m), g._y_sd(W)
    l, dm = g.lam, np.diagonal(m[:n, :n])
    zz_sm = 2 * g.lam2 * m[:n, :n] + np.diag(y_sm[0] - 2 * l * l * dm)
    out = {"u z": g._uz(du1, du2) / g.P, "z z s_m": zz_sm, "z z s_D": np.diag(y_sd[0]), "g^2": g._g_square(),
           "F m": g._f_numerator({"f1": 1.0, "f2": 0.0}, m, W, du1, du2),
           "F u": g._f_numerator({"f1": 0.0, "f2": 1.0}, m, W, du1, du2)}
    for key in ("gm", "gd", "gT", "gs"):
        unit = {k: (co[k] if k == key else 0.0) for k in ("gm", "gd", "gT", "gs")}
        out["G " + key] = g._g_numerator(unit, m, W, du1, y_sm, y_sd, False)
    return out


def test_every_sum_over_examples_has_its_gaussian_value_within_sampling_error():
    # The sharper form of the P -> infinity test: each sum the compact step forms from the examples
    # (u z^T, the noise sandwich, g^2, the numerators of F and G for each weight) against its
    # Gaussian value, entry by entry, in standard errors estimated from the examples themselves
    # (s.d. over examples / sqrt(P)); |z| <= 5 over the ~400 entries.  Entries that vanish
    # identically in both (odd moments) must agree to round-off.
    compact, gauss = _epochs(100_000, 0.6)
    m, W = _state(compact.D, 2)
    co = step_weights(compact.P, compact.S, compact.M - 2)
    gaussian = _gaussian_sums(gauss, m, W, co)
    for name, terms in _per_example_sums(compact, m, W, co).items():
        mean, se = terms.mean(0), terms.std(0) / np.sqrt(compact.P)
        scale = np.abs(mean).max()
        z = np.abs(gaussian[name] - mean) / np.where(se > 1e-12 * scale, se, np.inf)
        assert z.max() <= 5, (name, np.unravel_index(z.argmax(), z.shape), z.max())
        exact = se <= 1e-12 * scale
        np.testing.assert_allclose(gaussian[name][exact], mean[exact], rtol=0, atol=1e-10 * scale, err_msg=name)
