r"""Curvature of a network's loss: Hessian-vector products, top eigenpairs, trace, spectral density.

The loss is the mean over the whole data set, :math:`L(\theta) = \frac1P \sum_{n=1}^P
\ell_n(\theta)`, and :math:`H = \nabla^2 L` is its Hessian with respect to every trainable
parameter of the model, flattened in the order of ``model.parameters()`` (``d`` entries).
Products are deterministic: the data are visited in a fixed order and the model is put in
evaluation mode (batch norm uses its running statistics, dropout is off) during each product.

* :class:`HessianOperator` -- :math:`V \mapsto H V` for a block of vectors, by double
  backward (Pearlmutter 1994: :math:`Hv = \nabla_\theta (\nabla_\theta L \cdot v)`, batched
  over the columns of ``V`` with ``is_grads_batched``) or forward-over-reverse
  (:math:`Hv = \partial_\epsilon \nabla L(\theta + \epsilon v)`, ``torch.func.jvp`` of
  ``torch.func.grad``, batched with ``vmap``); converts to a
  :class:`scipy.sparse.linalg.LinearOperator`.
* :func:`lanczos` -- block Lanczos with full reorthogonalisation for the largest
  eigenpairs of any symmetric operator (Golub & Van Loan, *Matrix Computations*, 4th ed.,
  section 10.3.6); :func:`hessian_eigenpairs` applies it (or ARPACK's ``eigsh``) to ``H``.
* :func:`hutchinson_trace` -- :math:`\operatorname{tr} H \approx \frac1m \sum_j z_j^\top H z_j`
  with Rademacher :math:`z_j` (Hutchinson 1990), with its standard error.
* :func:`spectral_density` -- stochastic Lanczos quadrature (Golub & Meurant 2010;
  Ghorbani, Krishnan & Xiao, ICML 2019): the spectral density
  :math:`\phi(t) = \frac1d \sum_i \delta(t - \lambda_i)` from Gauss quadrature nodes and
  weights of Lanczos runs started at random unit vectors.

Data are a ``torch.utils.data.DataLoader`` or a tuple ``(X, y)`` of tensors; ``loss_fn(output,
target)`` returns the *mean* loss of a batch (as ``torch.nn.CrossEntropyLoss()`` does).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Union

import numpy as np
import torch
from scipy.sparse.linalg import LinearOperator, eigsh
from torch import nn
from torch.func import functional_call, grad, jvp, vmap
from torch.utils.data import DataLoader

from sgdnoise.errors import UsageError
from sgdnoise.progress import progress_bar

Data = Union[DataLoader, tuple[torch.Tensor, torch.Tensor]]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
HVP_METHODS = ("double-backward", "forward-over-reverse")
SOLVERS = ("lanczos", "eigsh")


class ParameterVector:
    """The trainable parameters of a model as one flat vector of length ``dim``.

    Flat vectors follow the order of ``model.parameters()``; blocks of vectors are
    tensors of shape ``(dim, m)``.
    """

    def __init__(self, model: nn.Module) -> None:
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        if not named:
            raise UsageError("the model has no trainable parameters")
        self.names = [n for n, _ in named]
        self.params = [p for _, p in named]
        self.shapes = [p.shape for p in self.params]
        self.sizes = [p.numel() for p in self.params]
        self.dim = sum(self.sizes)

    def flatten(self, tensors: list[torch.Tensor] | tuple[torch.Tensor, ...], batch: int = 0) -> torch.Tensor:
        """Concatenate per-parameter tensors: shape ``(dim,)``, or ``(dim, batch)`` when each
        tensor carries a leading batch axis of that length."""
        if batch:
            return torch.cat([t.reshape(batch, -1) for t in tensors], dim=1).T
        return torch.cat([t.reshape(-1) for t in tensors])

    def unflatten(self, vectors: torch.Tensor) -> list[torch.Tensor]:
        """Split ``(dim,)`` into parameter shapes, or ``(dim, m)`` into ``(m, *shape)`` tensors."""
        if vectors.ndim == 1:
            return [t.reshape(s) for t, s in zip(vectors.split(self.sizes), self.shapes)]
        m = vectors.shape[1]
        return [t.T.reshape(m, *s) for t, s in zip(vectors.split(self.sizes), self.shapes)]

    def values(self) -> torch.Tensor:
        """Current parameter values as a flat vector (a detached copy)."""
        return self.flatten([p.detach() for p in self.params])


def data_chunks(data: Data, chunk_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Batches ``(X, y)`` of ``data`` in a fixed order (a loader's own batches, or chunks of tensors)."""
    if isinstance(data, DataLoader):
        yield from ((X, y) for X, y, *_ in data)
    else:
        X, y = data
        yield from zip(X.split(chunk_size), y.split(chunk_size))


def check_data(model: nn.Module, loss_fn: LossFn, data: Data) -> int:
    """Validate ``data`` against ``model`` and ``loss_fn``; return the number of examples P.

    Raises
    ------
    UsageError
        ``data`` is neither a DataLoader nor a pair of tensors of equal length, is empty, or
        its examples do not fit the model (the forward pass or the loss fails on one example).
    """
    if isinstance(data, DataLoader):
        P = len(data.dataset)  # type: ignore[arg-type]
        X, y, *_ = next(iter(data))
    else:
        if not (isinstance(data, (tuple, list)) and len(data) == 2
                and all(isinstance(t, torch.Tensor) for t in data) and len(data[0]) == len(data[1])):
            raise UsageError("data must be a DataLoader or a tuple (X, y) of tensors with the same "
                             "number of rows")
        X, y = data
        P = len(X)
    if P == 0:
        raise UsageError("data must hold at least one example; got none")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            loss = loss_fn(model(X[:1]), y[:1])
    except (RuntimeError, ValueError, IndexError) as exc:
        raise UsageError(f"data with examples of shape {tuple(X.shape[1:])} do not fit the model: "
                         f"{str(exc).splitlines()[0]}") from None
    finally:
        model.train(was_training)
    if loss.ndim != 0:
        raise UsageError(f"loss_fn must return the mean loss of a batch (a scalar); got shape "
                         f"{tuple(loss.shape)}")
    return P


def scipy_operator(matmat: Callable[[torch.Tensor], torch.Tensor], dim: int) -> LinearOperator:
    """A symmetric torch operator ``matmat((dim, m)) -> (dim, m)`` as a float64 scipy LinearOperator."""

    def apply(x: np.ndarray) -> np.ndarray:
        block = torch.as_tensor(np.asarray(x).reshape(dim, -1))
        return matmat(block).detach().cpu().double().numpy().reshape(np.shape(x))

    return LinearOperator((dim, dim), matvec=apply, matmat=apply, rmatvec=apply, dtype=np.float64)


class _SavedBytes:
    """Counts the bytes autograd saves for backward while the context is active."""

    def __init__(self) -> None:
        self.total = 0
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t)

    def _pack(self, t: torch.Tensor) -> torch.Tensor:
        self.total += t.numel() * t.element_size()
        return t

    def __enter__(self) -> "_SavedBytes":
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._hooks.__exit__(*exc)


class HessianOperator:
    r"""The Hessian :math:`H = \nabla^2_\theta \frac1P \sum_n \ell_n(\theta)` as an operator.

    Parameters
    ----------
    model : torch.nn.Module
        Evaluated at its current parameters; put in eval mode during each product.
    loss_fn : callable
        ``loss_fn(output, target)`` -> mean loss of the batch.
    data : DataLoader or (X, y)
        The whole data set, visited in a fixed order.
    method : {"double-backward", "forward-over-reverse"}
        How each Hessian-vector product is formed (module docstring).
    chunk_size : int
        Examples per forward pass when ``data`` is a tuple of tensors.
    cache_bytes : int
        With ``method="double-backward"`` and tensor data, the gradient graphs of the data
        chunks are kept between products (each later product then costs one backward pass
        instead of a forward and two backward passes) while the tensors they save total at
        most this many bytes; 0 disables the cache.

    Notes
    -----
    Products of blocks ``V`` of shape ``(d, m)`` are batched over the ``m`` columns.  With the
    graph cache the operator keeps the Hessian at the weights of its first product: make a new
    operator after changing the weights.
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        data: Data,
        method: str = "double-backward",
        chunk_size: int = 1024,
        cache_bytes: int = 2**30,
    ) -> None:
        if method not in HVP_METHODS:
            raise UsageError(f"method must be one of {', '.join(HVP_METHODS)}; got {method!r}")
        if chunk_size < 1:
            raise UsageError(f"chunk_size must be at least 1; got {chunk_size}")
        self.model, self.loss_fn, self.data = model, loss_fn, data
        self.method, self.chunk_size = method, chunk_size
        self.n_examples = check_data(model, loss_fn, data)
        self.space = ParameterVector(model)
        self.dim = self.space.dim
        self.dtype = self.space.params[0].dtype
        self.device = self.space.params[0].device
        self.n_products = 0
        self._cache_budget = cache_bytes if (method == "double-backward" and not isinstance(data, DataLoader)) else 0
        self._cache: list[torch.Tensor] = []

    @property
    def shape(self) -> tuple[int, int]:
        return (self.dim, self.dim)

    def _chunk_gradient(self, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Flat gradient of ``len(X) * mean loss`` with its graph (for double backward)."""
        loss = self.loss_fn(self.model(X), y) * len(X)
        return self.space.flatten(torch.autograd.grad(loss, self.space.params, create_graph=True))

    def _double_backward(self, g: torch.Tensor, V: torch.Tensor, keep: bool) -> torch.Tensor:
        m = V.shape[1]
        out = torch.autograd.grad(
            g, self.space.params, grad_outputs=V.T if m > 1 else V[:, 0], retain_graph=keep,
            is_grads_batched=m > 1, materialize_grads=True,
        )
        return self.space.flatten(out, batch=m) if m > 1 else self.space.flatten(out)[:, None]

    def _forward_over_reverse(self, X: torch.Tensor, y: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
        params = dict(zip(self.space.names, (p.detach() for p in self.space.params)))
        buffers = dict(self.model.named_buffers())

        def chunk_loss(p: dict[str, torch.Tensor]) -> torch.Tensor:
            return self.loss_fn(functional_call(self.model, {**p, **buffers}, (X,)), y) * len(X)

        def hvp(v: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
            return jvp(grad(chunk_loss), (params,), (v,))[1]

        tangents = dict(zip(self.space.names, self.space.unflatten(V)))
        out = vmap(hvp)(tangents)
        return self.space.flatten([out[n] for n in self.space.names], batch=V.shape[1])

    def matmat(self, V: torch.Tensor) -> torch.Tensor:
        """``H V`` for ``V`` of shape ``(d, m)`` (or ``(d,)``), in the model's dtype and device."""
        squeeze = V.ndim == 1
        V = (V[:, None] if squeeze else V).to(dtype=self.dtype, device=self.device)
        was_training = self.model.training
        self.model.eval()
        total = torch.zeros_like(V)
        count = 0
        try:
            with torch.enable_grad():
                for index, (X, y) in enumerate(data_chunks(self.data, self.chunk_size)):
                    X, y = X.to(self.device), y.to(self.device)
                    count += len(X)
                    if self.method == "forward-over-reverse":
                        total += self._forward_over_reverse(X, y, V)
                    elif index < len(self._cache):
                        total += self._double_backward(self._cache[index], V, keep=True)
                    else:
                        with _SavedBytes() as saved:
                            g = self._chunk_gradient(X, y)
                        keep = index == len(self._cache) and saved.total <= self._cache_budget
                        total += self._double_backward(g, V, keep=keep)
                        if keep:
                            self._cache.append(g)
                            self._cache_budget -= saved.total
        finally:
            self.model.train(was_training)
        self.n_products += V.shape[1]
        result = total / count
        return result[:, 0] if squeeze else result

    def __matmul__(self, V: torch.Tensor) -> torch.Tensor:
        return self.matmat(V)

    def to_scipy(self) -> LinearOperator:
        """This operator as a float64 :class:`scipy.sparse.linalg.LinearOperator` (for ``eigsh``)."""
        return scipy_operator(self.matmat, self.dim)


@dataclass(frozen=True)
class Eigenpairs:
    """Top eigenpairs; unpacks as ``eigenvalues, eigenvectors = result``.

    Attributes
    ----------
    eigenvalues : torch.Tensor (k,)
        In descending order.
    eigenvectors : torch.Tensor (d, k)
        Orthonormal columns.
    residuals : torch.Tensor (k,)
        Relative residuals ``||H v_i - lambda_i v_i|| / |lambda_i|`` (the solver's estimates).
    n_products : int
        Operator-vector products used.
    """

    eigenvalues: torch.Tensor
    eigenvectors: torch.Tensor
    residuals: torch.Tensor
    n_products: int

    def __iter__(self) -> Iterator[torch.Tensor]:
        return iter((self.eigenvalues, self.eigenvectors))


def default_tolerance(dtype: torch.dtype) -> float:
    """Relative-residual tolerance: 1e-4 in single precision, 1e-8 in double precision."""
    return 1e-8 if dtype == torch.float64 else 1e-4


def _orthogonalise(W: torch.Tensor, Q: torch.Tensor) -> torch.Tensor:
    """Remove from ``W`` its components in the span of the orthonormal columns of ``Q``
    (classical Gram-Schmidt applied twice, which keeps orthogonality at round-off level)."""
    for _ in range(2):
        W = W - Q @ (Q.T @ W)
    return W


def _orthonormal_block(W: torch.Tensor, Q: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """QR of ``W`` (already orthogonal to ``Q``): ``W = Qn R``; columns that vanished (an invariant
    subspace was found) are replaced by random vectors orthogonal to ``Q`` and ``Qn``."""
    Qn, R = torch.linalg.qr(W)
    scale = torch.linalg.norm(W) + torch.finfo(W.dtype).tiny
    lost = torch.diagonal(R).abs() <= 100 * torch.finfo(W.dtype).eps * scale
    if lost.any():
        fresh = torch.randn(W.shape[0], int(lost.sum()), dtype=W.dtype, device=W.device, generator=generator)
        basis = torch.cat([Q, Qn[:, ~lost]], dim=1)
        Qn = Qn.clone()
        Qn[:, lost] = torch.linalg.qr(_orthogonalise(fresh, basis))[0]
        R = R.clone()
        R[lost, :] = 0.0
    return Qn, R


def lanczos(
    matmat: Callable[[torch.Tensor], torch.Tensor],
    dim: int,
    k: int,
    *,
    block_size: int = 1,
    tol: float | None = None,
    max_dim: int | None = None,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
    seed: int = 0,
    progress: bool = False,
) -> Eigenpairs:
    r"""Largest ``k`` eigenpairs of a symmetric operator by block Lanczos.

    Builds an orthonormal basis :math:`Q = [Q_0, Q_1, \dots]` of the block Krylov space of
    ``matmat`` from a random block :math:`Q_0`, with the three-term recurrence
    :math:`A Q_j = Q_{j-1} B_{j-1}^\top + Q_j A_j + Q_{j+1} B_j` and full
    reorthogonalisation, and takes Ritz pairs of the block-tridiagonal :math:`T = Q^\top A Q`.
    A Ritz pair :math:`(\vartheta, Q s)` has residual norm :math:`\|B_j s_{\rm last}\|`
    (:math:`s_{\rm last}`: the last block of :math:`s`); the iteration stops when the top
    ``k`` satisfy ``residual <= tol * max(|theta_i|, eps**(2/3) |theta_1|)`` (ARPACK's rule),
    or when the basis reaches ``max_dim`` columns or spans the whole space.

    Parameters
    ----------
    matmat : callable
        ``matmat(V)`` returns ``A V`` for ``V`` of shape ``(dim, m)``.
    dim : int
        Size of the operator.
    k : int
        Number of eigenpairs, ``1 <= k <= dim``.
    block_size : int
        Columns per Lanczos block (batched products).
    tol : float, optional
        Relative residual tolerance; default :func:`default_tolerance` of ``dtype``.
    max_dim : int, optional
        Largest basis (memory ``max_dim * dim``); default ``min(dim, max(10 k, 200))``.
    dtype, device
        Of the basis vectors (the products use the operator's own).
    seed : int
        Seed of the starting block.
    progress : bool
        Show a progress bar of the products.

    Returns
    -------
    Eigenpairs
        Eigenvalues descending, orthonormal eigenvectors, residual estimates; when the
        iteration stopped at ``max_dim`` without convergence, some residuals exceed ``tol``.
    """
    if not 1 <= k <= dim:
        raise UsageError(f"k must be between 1 and the number of parameters ({dim}); got {k}")
    if block_size < 1:
        raise UsageError(f"block_size must be at least 1; got {block_size}")
    tol = default_tolerance(dtype) if tol is None else tol
    max_dim = min(dim, max(10 * k, 200)) if max_dim is None else min(dim, max_dim)
    if max_dim < k:
        raise UsageError(f"max_dim must be at least k = {k}; got {max_dim}")
    block_size = min(block_size, dim)
    generator = torch.Generator(device=device).manual_seed(seed)
    eps23 = torch.finfo(dtype).eps ** (2 / 3)
    basis = torch.empty(dim, max_dim, dtype=dtype, device=device)
    T = torch.zeros(max_dim, max_dim, dtype=torch.float64)
    start = torch.randn(dim, block_size, dtype=dtype, device=device, generator=generator)
    block, _ = torch.linalg.qr(start)
    n = 0
    bar = progress_bar(progress, total=max_dim, desc="Lanczos", unit="product")
    try:
        while True:
            b = block.shape[1]
            basis[:, n : n + b] = block
            W = matmat(block).to(dtype=dtype, device=device)
            bar.update(b)
            T[n : n + b, n : n + b] = (block.T @ W).double().cpu()
            n += b
            W = _orthogonalise(W, basis[:, :n])
            theta, S = torch.linalg.eigh((T[:n, :n] + T[:n, :n].T) / 2)
            theta, S = theta.flip(0)[:k], S.flip(1)[:, :k]
            next_b = min(block_size, dim - n)  # a smaller block only where it completes the space
            if n >= dim:  # the basis spans the whole space: exact up to round-off
                residual = torch.zeros(len(theta), dtype=torch.float64)
            else:
                new_block, R = _orthonormal_block(W, basis[:, :n], generator)
                residual = torch.linalg.norm(R.double().cpu() @ S[n - b : n], dim=0)
            scale = torch.maximum(theta.abs(), eps23 * theta.abs().max()).clamp_min(torch.finfo(dtype).tiny)
            converged = int((residual <= tol * scale).sum()) if len(theta) == k else 0
            bar.set_postfix(converged=f"{converged}/{k}")
            if converged == k or n >= dim or n + next_b > max_dim:
                break
            block = new_block[:, :next_b]
            T[n : n + next_b, n - b : n] = R[:next_b].double().cpu()
            T[n - b : n, n : n + next_b] = R[:next_b].T.double().cpu()
    finally:
        bar.close()
    vectors = basis[:, :n] @ S.to(dtype=dtype, device=device)
    return Eigenpairs(theta.to(dtype=dtype, device=device), vectors,
                      (residual / theta.abs()).to(dtype=dtype, device=device), n)


def _eigsh(operator: HessianOperator, k: int, tol: float, seed: int) -> Eigenpairs:
    """Top-``k`` eigenpairs by ARPACK (``scipy.sparse.linalg.eigsh``, which="LA")."""
    v0 = np.random.default_rng(seed).standard_normal(operator.dim)
    start = operator.n_products
    values, vectors = eigsh(operator.to_scipy(), k=k, which="LA", tol=tol, v0=v0)
    order = np.argsort(values)[::-1].copy()
    values, vectors = values[order], vectors[:, order]
    V = torch.as_tensor(vectors, dtype=operator.dtype, device=operator.device)
    lam = torch.as_tensor(values.copy(), dtype=operator.dtype, device=operator.device)
    residual = torch.linalg.norm(operator.matmat(V) - V * lam, dim=0) / lam.abs()
    return Eigenpairs(lam, V, residual, operator.n_products - start)


def hessian_eigenpairs(
    model: nn.Module,
    loss_fn: LossFn,
    data: Data,
    k: int,
    *,
    method: str = "double-backward",
    solver: str = "lanczos",
    tol: float | None = None,
    block_size: int = 1,
    max_dim: int | None = None,
    chunk_size: int = 1024,
    seed: int = 0,
    progress: bool = False,
) -> Eigenpairs:
    r"""Largest ``k`` eigenpairs of the Hessian of the mean loss over ``data``.

    Parameters
    ----------
    model : torch.nn.Module
        At the weights where the Hessian is wanted (eval mode is used for the products).
    loss_fn : callable
        ``loss_fn(output, target)`` -> mean loss of a batch.
    data : DataLoader or (X, y)
        The data set (all of it enters :math:`L`).
    k : int
        Number of eigenpairs, ``1 <= k <= d`` (the number of trainable parameters).
    method : {"double-backward", "forward-over-reverse"}
        Hessian-vector products (:class:`HessianOperator`).
    solver : {"lanczos", "eigsh"}
        Block Lanczos in torch (:func:`lanczos`) or ARPACK via ``scipy.sparse.linalg.eigsh``.
    tol : float, optional
        Relative residual :math:`\|Hv - \lambda v\| / |\lambda|`; default 1e-4 for float32
        models, 1e-8 for float64.
    block_size, max_dim : int
        Of the Lanczos solver.
    chunk_size : int
        Examples per forward pass for tensor data.
    seed : int
        Seed of the starting vectors.
    progress : bool
        Progress bar of the solver.

    Returns
    -------
    Eigenpairs
        Unpacks as ``(eigenvalues, eigenvectors)``: eigenvalues descending, shape ``(k,)``,
        eigenvectors a ``(d, k)`` tensor with orthonormal columns, in the model's dtype.

    Examples
    --------
    >>> import torch, sgdnoise
    >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    >>> X, y = torch.randn(20, 3), torch.randint(0, 2, (20,))
    >>> lam, V = sgdnoise.hessian_eigenpairs(model, torch.nn.CrossEntropyLoss(), (X, y), k=3)
    >>> V.shape
    torch.Size([26, 3])
    """
    if solver not in SOLVERS:
        raise UsageError(f"solver must be one of {', '.join(SOLVERS)}; got {solver!r}")
    operator = HessianOperator(model, loss_fn, data, method=method, chunk_size=chunk_size)
    if not (isinstance(k, int) and 1 <= k <= operator.dim):
        raise UsageError(f"k must be between 1 and the number of parameters ({operator.dim}); got {k}")
    tol = default_tolerance(operator.dtype) if tol is None else tol
    if solver == "eigsh":
        if k >= operator.dim:
            raise UsageError(f"solver 'eigsh' needs k < the number of parameters ({operator.dim}); got {k}")
        return _eigsh(operator, k, tol, seed)
    return lanczos(operator.matmat, operator.dim, k, block_size=block_size, tol=tol, max_dim=max_dim,
                   dtype=operator.dtype, device=operator.device, seed=seed, progress=progress)


def _rademacher(dim: int, m: int, generator: torch.Generator, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    return torch.randint(0, 2, (dim, m), generator=generator, device=device).to(dtype) * 2 - 1


def hutchinson_trace(operator: HessianOperator, n_samples: int = 32, block_size: int = 8,
                     seed: int = 0) -> tuple[float, float]:
    r"""Hutchinson's estimate of :math:`\operatorname{tr} H` and its standard error.

    :math:`\widehat{\operatorname{tr}} = \frac1m \sum_{j=1}^m z_j^\top H z_j` with i.i.d.
    Rademacher vectors :math:`z_j` (Hutchinson, Commun. Stat. Simul. Comput. 19, 433, 1990);
    the standard error is the sample standard deviation of :math:`z_j^\top H z_j` over
    :math:`\sqrt m`.
    """
    if n_samples < 2:
        raise UsageError(f"n_samples must be at least 2; got {n_samples}")
    generator = torch.Generator(device=operator.device).manual_seed(seed)
    samples = []
    for start in range(0, n_samples, block_size):
        Z = _rademacher(operator.dim, min(block_size, n_samples - start), generator, operator.dtype, operator.device)
        samples.append((Z * operator.matmat(Z)).sum(0).double())
    values = torch.cat(samples)
    return float(values.mean()), float(values.std() / math.sqrt(n_samples))


@dataclass(frozen=True)
class SpectralDensity:
    r"""Gauss quadrature nodes and weights of stochastic Lanczos quadrature.

    ``nodes`` and ``weights`` have shape ``(n_vectors, n_steps)``; for each starting vector the
    weights sum to 1, and :math:`\frac1d \sum_i f(\lambda_i) \approx` the mean over vectors of
    ``sum(weights * f(nodes))``.
    """

    nodes: np.ndarray
    weights: np.ndarray

    def density(self, grid: np.ndarray, width: float) -> np.ndarray:
        """The density smoothed by a Gaussian of standard deviation ``width``, on ``grid``."""
        t = np.asarray(grid, dtype=np.float64)[:, None, None]
        kernel = np.exp(-0.5 * ((t - self.nodes) / width) ** 2) / (width * math.sqrt(2 * math.pi))
        return (kernel * self.weights).sum(axis=2).mean(axis=1)


def spectral_density(operator: HessianOperator, n_vectors: int = 8, n_steps: int = 64, seed: int = 0,
                     progress: bool = False) -> SpectralDensity:
    r"""Spectral density of ``operator`` by stochastic Lanczos quadrature.

    Runs ``n_vectors`` independent single-vector Lanczos recurrences (full
    reorthogonalisation) side by side, so that each product is one batched ``matmat``; the
    eigen-decomposition :math:`T = U \operatorname{diag}(\vartheta) U^\top` of each
    tridiagonal matrix gives nodes :math:`\vartheta_l` and weights :math:`U_{1l}^2`
    (Golub & Meurant, *Matrices, Moments and Quadrature*, 2010; Ghorbani et al. 2019).
    """
    if n_vectors < 1 or n_steps < 1:
        raise UsageError(f"n_vectors and n_steps must be at least 1; got {n_vectors}, {n_steps}")
    n_steps = min(n_steps, operator.dim)
    generator = torch.Generator(device=operator.device).manual_seed(seed)
    q = _rademacher(operator.dim, n_vectors, generator, operator.dtype, operator.device)
    q = q / torch.linalg.norm(q, dim=0)
    basis = torch.empty(n_steps, operator.dim, n_vectors, dtype=operator.dtype, device=operator.device)
    alpha = torch.zeros(n_steps, n_vectors, dtype=torch.float64)
    beta = torch.zeros(n_steps, n_vectors, dtype=torch.float64)
    for j in progress_bar(progress, iterable=range(n_steps), desc="SLQ", unit="step"):
        basis[j] = q
        w = operator.matmat(q)
        alpha[j] = (q * w).sum(0).double().cpu()
        for _ in range(2):  # full reorthogonalisation, per vector
            w = w - torch.einsum("jdv,jv->dv", basis[: j + 1], torch.einsum("jdv,dv->jv", basis[: j + 1], w))
        norm = torch.linalg.norm(w, dim=0)
        if j + 1 < n_steps:
            beta[j] = norm.double().cpu()
            q = w / norm.clamp_min(torch.finfo(w.dtype).tiny)
    T = torch.diag_embed(alpha.T) + torch.diag_embed(beta.T[:, :-1], 1) + torch.diag_embed(beta.T[:, :-1], -1)
    nodes, U = torch.linalg.eigh(T)
    return SpectralDensity(nodes.numpy(), (U[:, 0, :] ** 2).numpy())
