"""Hessian-vector products, eigenpairs, trace and spectral density against dense Hessians.

Tiny networks in float64, dense reference ``torch.autograd.functional.hessian`` of the
mean loss; deterministic checks hold to float64 round-off (tolerances of 1e-10 relative).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.func import functional_call
from torch.utils.data import DataLoader, TensorDataset

import sgdnoise
from sgdnoise.errors import UsageError
from sgdnoise.measure.hessian import HessianOperator
from sgdnoise.measure.lanczos import lanczos
from sgdnoise.measure.spectrum import hutchinson_trace, spectral_density

ROUND_OFF = 1e-10


def tiny_mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 3)).double()


def tiny_convnet(seed: int = 0) -> nn.Module:
    """Convolution, batch norm, ReLU, max-pooling: the layer types of LeNet-5 and ResNet-20."""
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Flatten(), nn.Linear(8, 3)).double()
    net[1].running_mean.uniform_(-0.5, 0.5)
    net[1].running_var.uniform_(0.5, 1.5)
    return net


def tiny_data(model: nn.Module, P: int = 23, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    shape = (P, 3) if isinstance(model[0], nn.Linear) else (P, 1, 4, 4)
    return torch.randn(shape, generator=g, dtype=torch.float64), torch.randint(0, 3, (P,), generator=g)


def dense_hessian(model: nn.Module, loss_fn, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Hessian of the mean loss over all parameters, flattened in ``model.parameters()`` order."""
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]
    sizes = [p.numel() for p in model.parameters()]
    buffers = dict(model.named_buffers())
    model.eval()

    def loss(flat: torch.Tensor) -> torch.Tensor:
        params = {n: t.reshape(s) for n, t, s in zip(names, flat.split(sizes), shapes)}
        return loss_fn(functional_call(model, {**params, **buffers}, (X,)), y)

    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    return torch.autograd.functional.hessian(loss, flat)


@pytest.mark.parametrize("make", [tiny_mlp, tiny_convnet])
@pytest.mark.parametrize("method", ["double-backward", "forward-over-reverse"])
def test_hessian_products_match_dense(make, method):
    model, loss_fn = make(), nn.CrossEntropyLoss()
    X, y = tiny_data(model)
    H = dense_hessian(model, loss_fn, X, y)
    model.train()
    op = HessianOperator(model, loss_fn, (X, y), method=method, chunk_size=7)  # 4 uneven chunks
    V = torch.randn(op.dim, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    scale = torch.linalg.norm(H @ V)
    assert torch.linalg.norm(op.matmat(V) - H @ V) <= ROUND_OFF * scale
    assert torch.linalg.norm(op.matmat(V[:, 0]) - H @ V[:, 0]) <= ROUND_OFF * scale
    assert torch.linalg.norm(op.matmat(V) - H @ V) <= ROUND_OFF * scale  # again, from the cached graphs
    assert model.training  # the mode is restored after each product


def test_dataloader_and_scipy_operator_agree_with_dense():
    model, loss_fn = tiny_convnet(), nn.CrossEntropyLoss()
    X, y = tiny_data(model)
    H = dense_hessian(model, loss_fn, X, y).numpy()
    loader = DataLoader(TensorDataset(X, y), batch_size=5)
    op = HessianOperator(model, loss_fn, loader).to_scipy()
    v = np.random.default_rng(0).standard_normal(H.shape[0])
    assert np.linalg.norm(op @ v - H @ v) <= ROUND_OFF * np.linalg.norm(H @ v)


@pytest.mark.parametrize("solver", ["lanczos", "eigsh"])
@pytest.mark.parametrize("make", [tiny_mlp, tiny_convnet])
def test_eigenpairs_match_dense(make, solver):
    model, loss_fn = make(), nn.CrossEntropyLoss()
    X, y = tiny_data(model)
    w, U = torch.linalg.eigh(dense_hessian(model, loss_fn, X, y))
    w, U = w.flip(0), U.flip(1)
    k = 6
    lam, V = sgdnoise.hessian_eigenpairs(model, loss_fn, (X, y), k, solver=solver, tol=1e-10)
    assert lam.shape == (k,) and V.shape == (U.shape[0], k)
    assert torch.all(lam[:-1] >= lam[1:])
    assert torch.max(torch.abs(lam - w[:k]) / w[:k].abs()) <= 1e-6
    assert torch.linalg.norm(V.T @ V - torch.eye(k, dtype=V.dtype)) <= 1e-10
    # eigenvectors up to sign: |cos| = 1 (the top eigenvalues of these models are simple)
    assert torch.max(torch.abs(torch.abs((V * U[:, :k]).sum(0)) - 1)) <= 1e-6


def test_lanczos_whole_space_and_blocks():
    """k = d (the Krylov space exhausts the space), and block Lanczos, on a dense symmetric matrix."""
    A = torch.randn(30, 30, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    A = A + A.T
    w = torch.linalg.eigvalsh(A).flip(0)
    full = lanczos(lambda V: A @ V, 30, 30, block_size=4)
    assert torch.allclose(full.eigenvalues, w, atol=1e-10 * w.abs().max())
    block = lanczos(lambda V: A @ V, 30, 5, block_size=3, tol=1e-12)
    assert torch.allclose(block.eigenvalues, w[:5], atol=1e-9 * w.abs().max())
    residual = A @ block.eigenvectors - block.eigenvectors * block.eigenvalues
    assert torch.linalg.norm(residual, dim=0).max() <= 1e-9 * w.abs().max()


def test_hutchinson_trace_within_standard_errors():
    model, loss_fn = tiny_mlp(), nn.CrossEntropyLoss()
    X, y = tiny_data(model)
    exact = float(torch.trace(dense_hessian(model, loss_fn, X, y)))
    value, stderr = hutchinson_trace(HessianOperator(model, loss_fn, (X, y)), n_samples=400)
    assert abs(value - exact) <= 4 * stderr


def test_spectral_density_nodes_are_eigenvalues_with_full_lanczos():
    """With as many Lanczos steps as parameters the Gauss nodes are the eigenvalues themselves."""
    model, loss_fn = tiny_mlp(), nn.CrossEntropyLoss()
    X, y = tiny_data(model)
    w = torch.linalg.eigvalsh(dense_hessian(model, loss_fn, X, y)).numpy()
    op = HessianOperator(model, loss_fn, (X, y))
    slq = spectral_density(op, n_vectors=2, n_steps=op.dim)
    assert np.allclose(slq.weights.sum(axis=1), 1.0, atol=1e-12)
    assert np.abs(slq.nodes - w[None, :]).max() <= 1e-8 * np.abs(w).max()
    grid = np.linspace(w.min() - 1, w.max() + 1, 4001)
    assert abs(np.trapezoid(slq.density(grid, 0.05), grid) - 1.0) <= 1e-6


def test_bad_input_is_refused():
    model, loss_fn = tiny_mlp(), nn.CrossEntropyLoss()
    X, y = tiny_data(model)
    d = sum(p.numel() for p in model.parameters())
    with pytest.raises(UsageError, match=rf"k must be between 1 and the number of parameters \({d}\)"):
        sgdnoise.hessian_eigenpairs(model, loss_fn, (X, y), d + 1)
    with pytest.raises(UsageError, match="do not fit the model"):
        sgdnoise.hessian_eigenpairs(model, loss_fn, (torch.randn(5, 4, dtype=torch.float64), y[:5]), 2)
    with pytest.raises(UsageError, match="tuple"):
        sgdnoise.hessian_eigenpairs(model, loss_fn, (X, y[:3]), 2)
    with pytest.raises(UsageError, match="solver must be one of"):
        sgdnoise.hessian_eigenpairs(model, loss_fn, (X, y), 2, solver="power")
    with pytest.raises(UsageError, match="method must be one of"):
        sgdnoise.hessian_eigenpairs(model, loss_fn, (X, y), 2, method="finite-differences")
