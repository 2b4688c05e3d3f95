r"""The Hessian of a network's loss as an operator: Hessian-vector products over a data set.

The loss is the mean over the whole data set, :math:`L(\theta) = \frac1P \sum_{n=1}^P
\ell_n(\theta)`, and :math:`H = \nabla^2 L` is its Hessian with respect to every trainable
parameter of the model, flattened in the order of ``model.parameters()`` (``d`` entries)
(docs/theory.md §9).  Products are deterministic: the data are visited in a fixed order and
the model is put in evaluation mode (batch norm uses its running statistics, dropout is off)
during each product.

* :class:`ParameterVector` -- the trainable parameters as one flat vector;
* :func:`data_chunks`, :func:`check_data` -- the data set in a fixed order, checked against the model;
* :class:`HessianOperator` -- :math:`V \mapsto H V` for a block of vectors, by double
  backward (Pearlmutter 1994: :math:`Hv = \nabla_\theta (\nabla_\theta L \cdot v)`, batched
  over the columns of ``V`` with ``is_grads_batched``) or forward-over-reverse
  (:math:`Hv = \partial_\epsilon \nabla L(\theta + \epsilon v)`, ``torch.func.jvp`` of
  ``torch.func.grad``, batched with ``vmap``); converts to a
  :class:`scipy.sparse.linalg.LinearOperator`.

Its eigenpairs: :mod:`sgdnoise.measure.lanczos`; its trace and spectral density:
:mod:`sgdnoise.measure.spectrum`.

Data are a ``torch.utils.data.DataLoader`` or a tuple ``(X, y)`` of tensors; ``loss_fn(output,
target)`` returns the *mean* loss of a batch (as ``torch.nn.CrossEntropyLoss()`` does).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Union

import numpy as np
import torch
from scipy.sparse.linalg import LinearOperator
from torch import nn
from torch.func import functional_call, grad, jvp, vmap
from torch.utils.data import DataLoader

from sgdnoise.errors import UsageError

Data = Union[DataLoader, tuple[torch.Tensor, torch.Tensor]]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
HVP_METHODS = ("double-backward", "forward-over-reverse")


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
