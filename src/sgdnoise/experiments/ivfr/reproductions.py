"""The computations of the ``ivfr-*`` reproductions (settings stated here and in docs/ivfr.md)."""
from __future__ import annotations

from sgdnoise.experiments.ivfr.config import IvfrConfig
from sgdnoise.experiments.ivfr.results import IvfrResult
from sgdnoise.experiments.ivfr.run import run

#: Single layer: d = N K = 30 weights, 10 000 snapshots with tau of about 10 snapshots (n_eff >> d);
#: lr small enough that the noise at w* is within a few per cent of the state-dependent one (§3c).
SINGLE_LAYER = dict(model="linear", N=10, P=200, outputs=3, lr=0.2, batch_size=10, steps=200_000,
                    burn_in=10_000, snapshot_every=20, replicas=8)
#: Two layers at Gross et al.'s SGD settings of their Fig. 5 (P = 200, lr = 0.1, S = 10, label noise
#: 0.25), N = 10, K = 6 outputs and h = 6 hidden units (no bottleneck): 96 weights, 36 zero modes.
TWO_LAYER = dict(model="two-layer", N=10, P=200, outputs=6, hidden=6, lr=0.1, batch_size=10,
                 steps=200_000, burn_in=20_000, snapshot_every=20, replicas=8)
#: The same with a bottleneck, h = 3 < K = 6: 48 weights, 9 zero modes; no power law in layer 2.
TWO_LAYER_BOTTLENECK = {**TWO_LAYER, "hidden": 3}
#: The MLP: digits, 64-50-50-10, window of the last steps.
MLP_DIGITS = dict(model="mlp", lr=0.1, batch_size=10, steps=20_000, burn_in=20_000, snapshot_every=20,
                  replicas=2)


def single_layer(seed: int = 0, progress: bool = True) -> IvfrResult:
    return run(IvfrConfig(seed=seed, **SINGLE_LAYER), progress)


def two_layer(seed: int = 0, progress: bool = True) -> IvfrResult:
    return run(IvfrConfig(seed=seed, **TWO_LAYER), progress)


def two_layer_bottleneck(seed: int = 0, progress: bool = True) -> IvfrResult:
    return run(IvfrConfig(seed=seed, **TWO_LAYER_BOTTLENECK), progress)


def mlp_digits(seed: int = 0, progress: bool = True) -> IvfrResult:
    return run(IvfrConfig(seed=seed, **MLP_DIGITS), progress)
