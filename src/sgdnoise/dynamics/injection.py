r"""Noise injection around any torch optimizer: perturbed GD and Anti-PGD (docs/theory.md §7).

Orvieto, Kersting, Proske, Bach & Lucchi, "Anticorrelated noise injection for improved
generalization", ICML 2022 (arXiv 2202.02831).  With i.i.d. :math:`\xi_n \sim N(0, \sigma^2 I)`
and the wrapped optimizer's update :math:`\Delta_n` (for plain GD :math:`-\eta\nabla L(\theta_n)`):

* :class:`PerturbedGD` (PGD): :math:`\theta_{n+1} = \theta_n + \Delta_n + \xi_{n+1}`;
* :class:`AntiPGD`: :math:`\theta_{n+1} = \theta_n + \Delta_n + (\xi_{n+1} - \xi_n)`, whose
  perturbations are anti-correlated and sum to a telescoping :math:`\xi_{N} - \xi_0`.  In
  expectation :math:`z_n = \theta_n - \xi_n` follows GD on
  :math:`L + \frac{\sigma^2}{2} \operatorname{tr} \nabla^2 L`, a bias towards flat minima.

Both wrap an optimizer (``step``, ``zero_grad``, ``param_groups``, ``state_dict``,
``load_state_dict`` pass through, the noise state included), so they combine with any
optimizer and with :func:`sgdnoise.dynamics.training.train`.

:func:`widening_valley` runs the test case of docs/theory.md §7, the widening valley
:math:`L(u, v) = \frac12 v^2 \|u\|^2` (:class:`WideningValley`): every point with
:math:`v = 0` is a minimum with :math:`\operatorname{tr}\nabla^2 L = \|u\|^2 + \dim(u)\, v^2
= \|u\|^2`, so the valley floor is flatter the closer :math:`u` is to 0.  GD stops where it
reaches the floor, PGD diffuses along it (on average to larger :math:`\|u\|`), Anti-PGD drifts
towards the flat end (rate :math:`\eta\sigma^2` per step for :math:`\|u\|`).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from sgdnoise.errors import UsageError
from sgdnoise.progress import progress_bar

INJECTIONS = ("gd", "pgd", "anti-pgd")


class NoiseInjection:
    """Base of the wrappers: after each step of ``optimizer`` add a perturbation to every parameter.

    Parameters
    ----------
    optimizer : torch.optim.Optimizer
        The wrapped optimizer (its ``param_groups`` are shared, so schedules still apply).
    sigma : float
        Standard deviation of each component of :math:`\\xi_n` (>= 0).
    seed : int
        Seed of the noise.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, sigma: float, seed: int = 0) -> None:
        if not sigma >= 0:
            raise UsageError(f"--sigma must be non-negative; got {sigma}")
        self.optimizer = optimizer
        self.sigma = float(sigma)
        device = self._params()[0].device
        self.generator = torch.Generator(device=device).manual_seed(seed)

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return self.optimizer.param_groups

    def _params(self) -> list[torch.Tensor]:
        return [p for group in self.optimizer.param_groups for p in group["params"]]

    def _draw(self, p: torch.Tensor) -> torch.Tensor:
        return self.sigma * torch.randn(p.shape, dtype=p.dtype, device=p.device, generator=self.generator)

    def _perturbation(self, index: int, p: torch.Tensor) -> torch.Tensor:
        """The increment added to parameter number ``index`` after this step."""
        raise NotImplementedError

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def step(self, closure: Any = None) -> Any:
        """One step of the wrapped optimizer, then the perturbation."""
        loss = self.optimizer.step(closure)
        with torch.no_grad():
            for index, p in enumerate(self._params()):
                p.add_(self._perturbation(index, p))
        return loss

    def _noise_state(self) -> dict[str, Any]:
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict(), "generator": self.generator.get_state(),
                "sigma": self.sigma, "noise": self._noise_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.sigma = state["sigma"]
        self._load_noise_state(state["noise"])

    def _load_noise_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`_noise_state` saved (nothing here)."""


class PerturbedGD(NoiseInjection):
    r"""Uncorrelated perturbations: adds :math:`\xi_{n+1}` after each step."""

    def _perturbation(self, index: int, p: torch.Tensor) -> torch.Tensor:
        return self._draw(p)


class AntiPGD(NoiseInjection):
    r"""Anti-correlated perturbations: adds :math:`\xi_{n+1} - \xi_n` after each step
    (:math:`\xi_0` drawn at the first step)."""

    def __init__(self, optimizer: torch.optim.Optimizer, sigma: float, seed: int = 0) -> None:
        super().__init__(optimizer, sigma, seed)
        self.previous: list[torch.Tensor | None] = [None] * len(self._params())

    def _perturbation(self, index: int, p: torch.Tensor) -> torch.Tensor:
        if self.previous[index] is None:
            self.previous[index] = self._draw(p)
        fresh = self._draw(p)
        increment = fresh - self.previous[index]
        self.previous[index] = fresh
        return increment

    def _noise_state(self) -> dict[str, Any]:
        return {"previous": [None if t is None else t.clone() for t in self.previous]}

    def _load_noise_state(self, state: dict[str, Any]) -> None:
        self.previous = [None if t is None else t.clone() for t in state["previous"]]


class WideningValley(nn.Module):
    r"""The widening valley :math:`L(u, v) = \frac12 v^2 \|u\|^2` with :math:`u \in R^{\rm dim}`, :math:`v \in R`.

    Parameters
    ----------
    dim : int
        Dimension of :math:`u`.
    u0, v0 : float
        Start: every component of :math:`u` equal to ``u0``, :math:`v = v0`.
    """

    def __init__(self, dim: int = 10, u0: float = 1.0, v0: float = 1.0) -> None:
        super().__init__()
        if dim < 1:
            raise UsageError(f"dim must be at least 1; got {dim}")
        self.u = nn.Parameter(torch.full((dim,), float(u0), dtype=torch.float64))
        self.v = nn.Parameter(torch.tensor(float(v0), dtype=torch.float64))

    def forward(self) -> torch.Tensor:
        return 0.5 * self.v**2 * (self.u**2).sum()

    def hessian_trace(self) -> float:
        r""":math:`\operatorname{tr}\nabla^2 L = \|u\|^2 + \dim(u)\, v^2`."""
        return float((self.u**2).sum() + self.u.numel() * self.v**2)


def injected_sgd(method: str, model: nn.Module, lr: float, sigma: float, seed: int = 0) -> Any:
    """``torch.optim.SGD`` over ``model`` (plain for ``"gd"``), wrapped by :class:`PerturbedGD` for
    ``"pgd"`` or :class:`AntiPGD` for ``"anti-pgd"``."""
    if method not in INJECTIONS:
        raise UsageError(f"method must be one of {', '.join(INJECTIONS)}; got {method!r}")
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    if method == "pgd":
        return PerturbedGD(optimizer, sigma, seed)
    if method == "anti-pgd":
        return AntiPGD(optimizer, sigma, seed)
    return optimizer


def widening_valley(method: str, steps: int = 20_000, lr: float = 0.05, sigma: float = 0.1,
                    dim: int = 10, u0: float = 1.0, v0: float = 1.0, record_every: int = 100,
                    seed: int = 0, progress: bool = False) -> dict[str, np.ndarray]:
    r"""GD, PGD or Anti-PGD on :class:`WideningValley`; the path every ``record_every`` steps.

    Parameters
    ----------
    method : {"gd", "pgd", "anti-pgd"}
        Plain ``torch.optim.SGD`` (full gradient), or wrapped by :class:`PerturbedGD` /
        :class:`AntiPGD` with noise level ``sigma``.
    steps, lr, sigma, dim, u0, v0, seed
        Run settings (chosen here; Orvieto et al.'s own values are not reproduced).

    Returns
    -------
    dict
        ``step``, ``loss``, ``hessian_trace``, ``u_norm`` (:math:`\|u\|`) and ``v`` as arrays.
    """
    if method not in INJECTIONS:
        raise UsageError(f"method must be one of {', '.join(INJECTIONS)}; got {method!r}")
    if steps < 1 or record_every < 1:
        raise UsageError(f"steps and record_every must be at least 1; got {steps}, {record_every}")
    model = WideningValley(dim, u0, v0)
    optimizer = injected_sgd(method, model, lr, sigma, seed)
    path: dict[str, list[float]] = {"step": [], "loss": [], "hessian_trace": [], "u_norm": [], "v": []}
    for step in progress_bar(progress, iterable=range(steps + 1), desc=method, unit="step"):
        if step % record_every == 0:
            with torch.no_grad():
                path["step"].append(step)
                path["loss"].append(float(model()))
                path["hessian_trace"].append(model.hessian_trace())
                path["u_norm"].append(float(model.u.norm()))
                path["v"].append(float(model.v))
        if step == steps:
            break
        optimizer.zero_grad()
        model().backward()
        optimizer.step()
    return {key: np.asarray(values) for key, values in path.items()}


class WideningValleyReplicas(nn.Module):
    r"""``replicas`` independent copies of :class:`WideningValley`, as one module.

    ``u`` has shape ``(replicas, dim)`` and ``v`` shape ``(replicas,)``; :meth:`forward` returns
    the loss of each replica, and the gradient of their sum is each replica's own gradient, so
    one wrapped optimizer steps all replicas at once with independent noise in every entry.
    """

    def __init__(self, replicas: int, dim: int = 10, u0: float = 1.0, v0: float = 1.0) -> None:
        super().__init__()
        if replicas < 1 or dim < 1:
            raise UsageError(f"replicas and dim must be at least 1; got {replicas}, {dim}")
        self.u = nn.Parameter(torch.full((replicas, dim), float(u0), dtype=torch.float64))
        self.v = nn.Parameter(torch.full((replicas,), float(v0), dtype=torch.float64))

    def forward(self) -> torch.Tensor:
        return 0.5 * self.v**2 * (self.u**2).sum(1)


def valley_observables(u: torch.Tensor, v: torch.Tensor) -> dict[str, np.ndarray]:
    r"""Per replica: loss, :math:`\operatorname{tr}\nabla^2 L = \|u\|^2 + \dim\, v^2`, :math:`\|u\|`, :math:`|v|`."""
    u2 = (u**2).sum(-1)
    return {"loss": (0.5 * v**2 * u2).numpy(), "hessian_trace": (u2 + u.shape[-1] * v**2).numpy(),
            "u_norm": u2.sqrt().numpy(), "v_abs": v.abs().numpy()}


def valley_replicas(method: str, replicas: int, steps: int, lr: float, sigma: float, dim: int = 10,
                    u0: float = 1.0, v0: float = 1.0, record_every: int = 50, seed: int = 0,
                    progress: bool = False) -> dict[str, Any]:
    r"""GD, PGD or Anti-PGD on ``replicas`` independent widening valleys, stepped together.

    The same wrappers as :func:`widening_valley` (:class:`PerturbedGD`, :class:`AntiPGD`) around
    ``torch.optim.SGD`` on :class:`WideningValleyReplicas`.  For Anti-PGD the auxiliary
    :math:`z_n = \theta_n - \xi_n` (docs/theory.md §7a) is recorded too, with ``_z`` after the name.
    Stops early (``status`` says where) when a stop is requested or a loss stops being finite.

    Returns
    -------
    dict
        ``step`` (recorded steps), ``status``, and per observable of :func:`valley_observables`
        an array of shape ``(records, replicas)``.
    """
    from sgdnoise.interrupts import stop_requested

    if method not in INJECTIONS:
        raise UsageError(f"method must be one of {', '.join(INJECTIONS)}; got {method!r}")
    if steps < 1 or record_every < 1:
        raise UsageError(f"steps and record_every must be at least 1; got {steps}, {record_every}")
    model = WideningValleyReplicas(replicas, dim, u0, v0)
    optimizer = injected_sgd(method, model, lr, sigma, seed)
    records: dict[str, list[np.ndarray]] = {}
    recorded: list[int] = []
    status = "completed"

    def record(step: int) -> None:
        recorded.append(step)
        with torch.no_grad():
            found = valley_observables(model.u.detach().clone(), model.v.detach().clone())
            if method == "anti-pgd":
                xi = optimizer.previous  # xi_n, drawn at the last step (zero before the first)
                zu, zv = (model.u - xi[0], model.v - xi[1]) if xi[0] is not None else (model.u, model.v)
                found.update({f"{k}_z": a for k, a in valley_observables(zu.detach(), zv.detach()).items()})
        for key, values in found.items():
            records.setdefault(key, []).append(values)

    for step in progress_bar(progress, iterable=range(steps + 1), desc=method, unit="step"):
        if step % record_every == 0:
            record(step)
        if step == steps:
            break
        if step % record_every == 0 and stop_requested():
            status = f"interrupted after {step} of {steps} steps"
            break
        optimizer.zero_grad()
        loss = model().sum()
        if not torch.isfinite(loss):
            status = f"diverged at step {step}"
            break
        loss.backward()
        optimizer.step()
    return {"step": np.asarray(recorded), "status": status,
            **{key: np.stack(values) for key, values in records.items()}}
