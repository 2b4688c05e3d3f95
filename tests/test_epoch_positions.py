"""Position sums of an epoch (theory/epoch_positions.py): the shortcut for a diagonal is the general formula."""
import numpy as np
import pytest

from sgdnoise.theory.epoch_positions import PositionSums


def _basis(X):
    lam, V = np.linalg.eigh(X.T @ X / X.shape[0])
    rotation = np.linalg.qr(np.random.default_rng(1).normal(size=(X.shape[1], X.shape[1])))[0]
    return V[:, ::-1] * np.array([1, -1, 1, -1]), V @ rotation  # reordered and signed; rotated


@pytest.mark.parametrize("degenerate", [False, True])
def test_per_position_variances_equal_the_full_rotation(degenerate):
    # With distinct eigenvalues the range basis V and eigh's basis agree up to order and sign, and
    # the per-position variances use the diagonal only; with a degenerate spectrum V may be any
    # rotation within an eigenspace and the full rotation must be used. Both against the literal sum.
    rng = np.random.default_rng(0)
    X = np.vstack([np.eye(4)] * 3) if degenerate else rng.normal(size=(12, 4))
    reordered, rotated = _basis(X)
    V = rotated if degenerate else reordered
    sums = PositionSums(X, V)
    assert (sums._permutation is None) == degenerate
    D = 2 * 4 + 1
    moments = [(lambda L: L @ L.T)(rng.normal(size=(D, D))) for _ in range(3)]
    for m in moments:
        sums.add(m)
    got = sums.take()["diag"]
    to_all = np.linalg.eigh(X.T @ X / X.shape[0])[1].T @ V
    expected = np.array([np.diag(to_all @ m[:4, :4] @ to_all.T) for m in moments])
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12 * np.abs(expected).max())
