"""Per-example Hessian blocks B_n = V^T (Hessian of example n) V (measure/network_noise.py) against dense products.

Each block equals the projected Hessian-vector products of that example alone
(HessianOperator on one example), and their mean the projected full Hessian, to round-off in float64.
"""
from __future__ import annotations

import torch
from torch import nn

from sgdnoise.measure.hessian import HessianOperator
from sgdnoise.measure.network_noise import PerExampleGradients


def test_blocks_equal_single_example_hessians():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 3)).double()
    X, y = torch.randn(9, 3, dtype=torch.float64), torch.randint(0, 3, (9,))
    loss = nn.CrossEntropyLoss()
    d = sum(p.numel() for p in model.parameters())
    V = torch.linalg.qr(torch.randn(d, 3, dtype=torch.float64))[0]
    blocks = PerExampleGradients(model, loss, (X, y), chunk_size=4).hessian_blocks(V)
    assert blocks.shape == (9, 3, 3)
    for n in (0, 5, 8):
        single = V.T @ HessianOperator(model, loss, (X[n:n + 1], y[n:n + 1])).matmat(V)
        torch.testing.assert_close(blocks[n], single, atol=1e-13, rtol=1e-10)
    full = V.T @ HessianOperator(model, loss, (X, y)).matmat(V)
    torch.testing.assert_close(blocks.mean(0), full, atol=1e-13, rtol=1e-10)
