"""Samplers: what each scheme draws, and the noise autocorrelation it makes (docs/theory.md §2)."""
import numpy as np
import pytest
import torch
from scipy import stats

from sgdnoise._spec import SAMPLINGS
from sgdnoise.sampling import Sampler
from sgdnoise.measure.gradient_noise import noise_autocorrelation
from sgdnoise.problems.linear import LinearRegression
from sgdnoise.theory.noise import noise_covariance, noise_kernel


@pytest.mark.parametrize("P,S", [(24, 6), (26, 6)])
def test_epoch_visits_every_example_once_per_epoch(P, S):
    sampler = Sampler("epoch", P, S, replicas=5, rng=np.random.default_rng(1))
    M = P // S
    idx = sampler.draw(7 * M + 3)  # several epochs, chunk boundaries inside an epoch
    idx = np.concatenate([idx, sampler.draw(M - 3)])
    for epoch in idx.reshape(8, M, 5, S):
        for r in range(5):
            seen = epoch[:, r].ravel()
            assert len(set(seen.tolist())) == M * S  # no repeats within an epoch
    # different epochs use different permutations (with overwhelming probability)
    assert not np.array_equal(idx[:M, 0], idx[M:2 * M, 0])


def test_fixed_order_repeats_the_same_epoch():
    sampler = Sampler("fixed-order", 20, 4, replicas=2, rng=np.random.default_rng(2))
    idx = sampler.draw(15)
    np.testing.assert_array_equal(idx[:5], idx[5:10])
    np.testing.assert_array_equal(idx[:5], idx[10:15])
    assert len(set(idx[:5, 0].ravel().tolist())) == 20
    assert not np.array_equal(idx[:5, 0], idx[:5, 1])  # independent replicas, each its own order


@pytest.mark.parametrize("sampling", ["with-replacement", "random-batch", "epoch"])
@pytest.mark.parametrize("P,S", [(30, 5), (12, 8)])
def test_every_example_equally_likely(sampling, P, S):
    """Marginal counts are uniform: Pearson chi-square against its (P-1)-dof law, 1e-4 level."""
    sampler = Sampler(sampling, P, S, replicas=4, rng=np.random.default_rng(3))
    idx = sampler.draw(3000 * (P // S))
    counts = np.bincount(idx.ravel(), minlength=P)
    if sampling == "epoch":  # exactly uniform per epoch when S divides P
        if P % S == 0:
            assert np.all(counts == counts[0])
        return
    expected = idx.size / P
    chi2 = np.sum((counts - expected) ** 2 / expected)
    assert chi2 < stats.chi2.ppf(1 - 1e-4, P - 1)


def test_random_batch_has_distinct_examples():
    for P, S in [(100, 10), (12, 8)]:  # rejection branch and key-sorting branch
        idx = Sampler("random-batch", P, S, replicas=3, rng=np.random.default_rng(4)).draw(2000)
        srt = np.sort(idx, axis=2)
        assert not np.any(srt[..., 1:] == srt[..., :-1])


def test_same_seed_same_batches():
    for sampling in SAMPLINGS:
        a = Sampler(sampling, 50, 7, 3, np.random.default_rng(9)).draw(40)
        b = Sampler(sampling, 50, 7, 3, np.random.default_rng(9)).draw(40)
        np.testing.assert_array_equal(a, b)


def test_torch_batch_sampler_feeds_a_dataloader():
    data = torch.utils.data.TensorDataset(torch.arange(30.0))
    sampler = Sampler("epoch", 30, 5, rng=np.random.default_rng(0))
    loader = torch.utils.data.DataLoader(data, batch_sampler=sampler.torch_batch_sampler(12))
    batches = [b[0] for b in loader]
    assert len(batches) == 12 and all(b.shape == (5,) for b in batches)
    first_epoch = torch.cat(batches[:6]).sort().values
    assert torch.equal(first_epoch, torch.arange(30.0))


def test_bad_sampler_arguments():
    with pytest.raises(ValueError, match="sampling must be one of"):
        Sampler("shuffle", 10, 2)
    with pytest.raises(ValueError, match="--batch"):
        Sampler("epoch", 10, 11)


@pytest.mark.parametrize("sampling", ["epoch", "with-replacement", "random-batch"])
def test_noise_autocorrelation_matches_kuehn_rosenow_eq2(sampling):
    """Measured tr cov(dg_k, dg_{k+h}) against tr C kappa_h, within 4 standard errors at every lag.

    The standard errors come from 32 independent replicas of the sampler; the
    lag-0 value also checks the finite-population factor of C.
    """
    problem = LinearRegression.teacher_student(12, 60, 0.25, seed=5)
    S, max_lag = 6, 13
    M = problem.n_examples // S
    sampler = Sampler(sampling, problem.n_examples, S, replicas=32, rng=np.random.default_rng(6))
    measured = noise_autocorrelation(problem.per_example_gradients(), sampler, M * 1500, max_lag)
    C = noise_covariance(problem.X, problem.Y, S, sampling)
    expected = np.trace(C) * noise_kernel(sampling, M, max_lag)
    z = (measured.trace.value - expected) / measured.trace.stderr
    assert np.max(np.abs(z)) < 4, z
    if sampling == "epoch":  # the anti-correlation is resolved, not lost in the noise
        assert np.all(measured.trace.value[1:M] < -2 * measured.trace.stderr[1:M])
