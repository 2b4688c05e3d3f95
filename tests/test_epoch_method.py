"""Method epoch: which closure form runs and the noise-strength rescaling (theory/epoch_method.py, docs/theory.md §3m)."""
import json

import numpy as np
import pytest

from sgdnoise.errors import UsageError
from sgdnoise.theory import epoch_method, stationary_covariance
from sgdnoise.theory.epoch_closure import _residuals, _sorted_basis
from sgdnoise.theory.epoch_compact import compact_closure_moments
from sgdnoise.theory.epoch_method import epoch_method_moments, moment_deviation, noise_strength, rescaled


def _gaussian(N, P, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(P, N)) / np.sqrt(N)
    return X, X @ rng.normal(size=N) + 0.5 * rng.normal(size=P)


def _digits(P=300):
    from sklearn.datasets import load_digits
    d = load_digits()
    X = d.data[:P] / 16.0
    X = X[:, X.std(0) > 0.05]
    return X - X.mean(0), (d.target[:P] - 4.5) / 3.0


def _basis(X, y):
    basis, order = _sorted_basis(X, y, 1e-3, 0.0)
    return basis.Z[:, order], _residuals(basis, order, y), basis.lam[order], basis.V[:, order]


def test_moment_deviation_tells_gaussian_inputs_from_images():
    # Gaussian inputs: the eigenbasis fourth moments are Gaussian to a few per cent (shrinking with N);
    # the digits' pixels are far from it, so they never get the Gaussian-moment form.
    Z, _, lam, _ = _basis(*_gaussian(200, 400))
    Z5, _, lam5, _ = _basis(*_gaussian(500, 1000))
    Zd, _, lamd, _ = _basis(*_digits())
    assert moment_deviation(Z5, lam5) < epoch_method.GAUSSIAN_TOLERANCE < moment_deviation(Z, lam) < 0.05
    assert moment_deviation(Zd, lamd) > 1.0


def test_rescaled_moments_stay_consistent():
    # The congruence keeps the covariance symmetric positive semi-definite, its eigen-diagonal equal to
    # the rescaled var_theta, and the mean.
    X, y = _gaussian(12, 48)
    Z, r, lam, V = _basis(X, y)
    moments = compact_closure_moments(X, y, 0.5, 4)
    nu = noise_strength(Z, r, lam)
    out = rescaled(moments, V, nu)
    np.testing.assert_allclose(out.var_theta, moments.var_theta * nu, rtol=1e-12)
    np.testing.assert_allclose(np.diag(V.T @ out.covariance @ V), out.var_theta, rtol=1e-9)
    np.testing.assert_allclose(out.position_var_theta, moments.position_var_theta * nu, rtol=1e-12)
    assert np.linalg.eigvalsh(out.covariance).min() > -1e-12 * out.var_theta.max()
    np.testing.assert_array_equal(out.mean, moments.mean)
    assert np.all(np.abs(nu - 1) < 5 * np.sqrt(8 / 48))  # scatter ~ sqrt(8/P) per direction


@pytest.mark.parametrize("beta", [0.0, 0.6])
def test_gaussian_form_differs_from_the_compact_closure_at_first_order_in_lr(beta):
    # Forced onto §3l (compact_seconds=0, tolerance 0.1: N = 60 is ~6 % from Gaussian), method epoch on Gaussian inputs differs from §3k (with the
    # same start correction) by the weight-dependent noise's non-Gaussian part, which is O(lr): shrinking
    # lr by 3 shrinks the largest per-direction difference by more than 2.
    X, y = _gaussian(60, 120)
    differences = []
    for lr in (0.3, 0.1):
        method = epoch_method_moments(X, y, lr, 6, beta, compact_seconds=0, gaussian_tolerance=0.1)
        compact = compact_closure_moments(X, y, lr, 6, beta, start_correction=True)
        assert method.data_moments == "gaussian" and method.moment_deviation <= 0.1
        differences.append(np.max(np.abs(method.moments.var_theta / compact.var_theta - 1)))
    assert differences[1] < differences[0] / 2


def test_which_form_runs():
    # Affordable: §3k itself (the same numbers as compact_closure_moments with the start correction);
    # too costly but non-Gaussian data: §3k anyway, or refused under max_seconds, naming X.
    X, y = _gaussian(10, 40)
    method = epoch_method_moments(X, y, 1.0, 4)
    compact = compact_closure_moments(X, y, 1.0, 4, start_correction=True)
    assert method.data_moments == "empirical" and method.start_correction and np.isnan(method.moment_deviation)
    np.testing.assert_array_equal(method.moments.var_theta, compact.var_theta)
    np.testing.assert_array_equal(stationary_covariance(X, y, 1.0, 4, sampling="epoch", method="epoch"),
                                  compact.covariance)
    Xd, yd = _digits(120)
    assert epoch_method_moments(Xd, yd, 0.5, 4, compact_seconds=0).data_moments == "empirical"
    with pytest.raises(UsageError) as refused:
        epoch_method_moments(Xd, yd, 0.5, 4, compact_seconds=0, max_seconds=0)
    assert refused.value.name == "X" and "from Gaussian" in str(refused.value)


def test_linear_reports_the_form_that_ran(run_cli, tmp_path, monkeypatch):
    monkeypatch.setattr(epoch_method, "COMPACT_SECONDS", 0.0)
    monkeypatch.setattr(epoch_method, "GAUSSIAN_TOLERANCE", 0.5)
    args = ("linear", "--N", 30, "--P", 60, "--lr", 0.3, "--batch", 6, "--sampling", "epoch",
            "--steps", 500, "--burn-in", 100, "--replicas", 2, "--max-lag", 5, "--no-progress")
    status, stdout, _ = run_cli(*args, "--out", tmp_path / "a")
    epoch = json.loads((tmp_path / "a" / "summary.json").read_text())["theory"]["epoch"]
    assert status == 0 and epoch["data_moments"] == "gaussian" and "§3l" in epoch["note"] and "§3l" in stdout
