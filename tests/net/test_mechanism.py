"""The split of the gradient noise along a trajectory (experiments/net/mechanism.py) on synthetic data.

Noise at fixed weights drawn in epochs sums to zero over an epoch: its low-frequency ratio
S(0)/C(0) is 0; drawn with replacement it is white, ratio 1 (docs/theory.md §2).  A slowly
moving displacement makes the weight-dependent part inherit the epoch anti-correlation; the
first-order check explains an exactly linear change completely.
"""
from __future__ import annotations

import numpy as np
import pytest

from sgdnoise._spec import rng
from sgdnoise.experiments.net.mechanism import linear_check, split_noise
from sgdnoise.sampling import Sampler

P, S, K, STEPS, MAX_LAG = 60, 6, 3, 1600, 20


def data(seed: int = 0):
    g = np.random.default_rng(seed)
    q = g.normal(size=(P, K))
    blocks = g.normal(size=(P, K, K))
    return q, blocks + np.swapaxes(blocks, 1, 2)


@pytest.mark.parametrize("sampling, expected", [("epoch", 0.0), ("with-replacement", 1.0)])
def test_low_frequency_ratio_of_the_noise_at_fixed_weights(sampling, expected):
    q, blocks = data()
    batches = Sampler(sampling, P, S, rng=rng(0, "test", sampling)).draw(STEPS)[:, 0, :]
    p = np.cumsum(np.random.default_rng(1).normal(scale=1e-3, size=(STEPS, K)), axis=0)  # slow random walk
    found = split_noise(q, blocks, batches, p, np.ones(K, bool), MAX_LAG)
    ratio = found["reference"]["low_frequency_ratio"]
    assert abs(ratio.value - expected) < 4 * ratio.stderr + 0.05, (ratio.value, ratio.stderr)
    # the offset part is noise at fixed weights too
    offset = found["offset"]["low_frequency_ratio"]
    assert abs(offset.value - expected) < 4 * offset.stderr + 0.05
    # variance at lag 0 is f sigma^2 (docs/theory.md §2), f = 1/S with replacement
    if sampling == "with-replacement":
        v = found["reference"]["variance"]
        assert np.all(np.abs(v.value - q.var(0) / S) < 4 * v.stderr + 0.02 * q.var(0) / S)


def test_linear_check_explains_an_exactly_linear_change():
    q, blocks = data(2)
    p_end = np.array([0.3, -0.1, 0.05])
    found = linear_check(q + blocks @ p_end, q, blocks, p_end)
    np.testing.assert_allclose(found["explained"], 1.0, atol=1e-12)
    noise = np.random.default_rng(3).normal(size=q.shape)
    half = linear_check(q + blocks @ p_end + noise, q, blocks, p_end)
    assert np.all(half["explained"] < 0.9) and np.all(half["change_to_noise"] > found["change_to_noise"])
