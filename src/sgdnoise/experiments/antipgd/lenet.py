r"""GD, PGD, Anti-PGD and SGD on a real network: LeNet-5 on scikit-learn's digits.

Per seed a LeNet-5 (:func:`sgdnoise.problems.networks.build_model`) is trained by full-batch
gradient descent for ``pretrain_steps`` steps; from that common point each method trains
``steps`` more steps at the same learning rate (:func:`sgdnoise.dynamics.training.train`):

* ``gd``: full-batch gradient descent;
* ``pgd`` / ``anti-pgd``: the same wrapped by :class:`~sgdnoise.dynamics.injection.PerturbedGD` /
  :class:`~sgdnoise.dynamics.injection.AntiPGD` (noise ``sigma`` per parameter and step);
* ``sgd-epoch`` / ``sgd-with-replacement``: mini-batches of ``batch`` examples drawn in epochs
  (anti-correlated noise, Kühn & Rosenow) or with replacement.

After training: the training loss, the test accuracy, and :math:`\operatorname{tr}\nabla^2 L` of
the training loss by Hutchinson's estimator (:func:`sgdnoise.measure.spectrum.hutchinson_trace`,
Rademacher vectors, Hessian-vector products of :class:`sgdnoise.measure.hessian.HessianOperator`)
with its standard error.  Anti-PGD descends :math:`L + \frac{\sigma^2}{2}\operatorname{tr}\nabla^2 L`
in expectation (docs/theory.md §7), so it should end flatter than GD; PGD's i.i.d. noise has no
such drift.
"""
from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from sgdnoise._spec import rng, torch_seed
from sgdnoise.dynamics.injection import INJECTIONS, injected_sgd
from sgdnoise.dynamics.training import train
from sgdnoise.measure.hessian import HessianOperator
from sgdnoise.measure.spectrum import hutchinson_trace
from sgdnoise.problems.datasets import load_dataset
from sgdnoise.problems.networks import build_model
from sgdnoise.sampling import Sampler

METHODS = ("gd", "pgd", "anti-pgd", "sgd-epoch", "sgd-with-replacement")
#: What is measured after each training (NaN for a run whose loss diverged).
METRICS = ("train_loss", "train_accuracy", "test_accuracy", "trace", "trace_stderr")


@dataclass(frozen=True)
class LenetSettings:
    """Run settings (chosen here to fit 10 minutes on 2 cores; not the paper's CIFAR-10 runs)."""

    seeds: int = 3
    pretrain_steps: int = 300
    steps: int = 500
    lr: float = 0.2
    sigma: float = 0.01
    batch: int = 32
    trace_samples: int = 32
    train_examples: int | None = None
    methods: tuple[str, ...] = METHODS
    seed: int = 0


@dataclass
class LenetResult:
    """``runs[method]``: one dict per seed with ``train_loss``, ``train_accuracy``, ``test_accuracy``,
    ``trace``, ``trace_stderr`` (NaN where the loss diverged), ``seconds`` and ``status``;
    ``pretrained``: the same at the common start."""

    settings: LenetSettings
    runs: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    pretrained: list[dict[str, float]] = field(default_factory=list)
    status: str = "completed"
    examples: tuple[int, int] = (0, 0)
    wall_seconds: float = 0.0

    def footer(self) -> str:
        s = self.settings
        return (f"LeNet-5 on digits ({self.examples[0]} train / {self.examples[1]} test examples), cross-entropy, "
                f"{len(self.pretrained)} seeds; GD pre-training {s.pretrain_steps} steps then {s.steps} steps of "
                f"each method, lr = {s.lr:g}; PGD/Anti-PGD sigma = {s.sigma:g} per parameter; SGD batch {s.batch}; "
                f"tr H: Hutchinson, {s.trace_samples} Rademacher vectors, on the training loss; "
                f"error bars ± 2 s.e.; wall {self.wall_seconds:.0f} s; status {self.status}")

    def mean_over_seeds(self, method: str, key: str) -> tuple[float, float]:
        """Mean of ``key`` over the seeds whose run completed, with its standard error (NaN if < 2)."""
        values = np.array([r[key] for r in self.runs[method]], dtype=float)
        values = values[np.isfinite(values)]
        if not values.size:
            return float("nan"), float("nan")
        se = float(values.std(ddof=1) / np.sqrt(values.size)) if values.size > 1 else float("nan")
        return float(values.mean()), se

    def paired(self, method: str, key: str, reference: str = "gd") -> tuple[float, float, int]:
        """Mean over seeds of ``key`` of ``method`` minus that of ``reference`` from the same start
        (seeds where both completed), its standard error and the number of pairs."""
        pairs = [(a[key], b[key]) for a, b in zip(self.runs.get(method, []), self.runs.get(reference, []))]
        diff = np.array([a - b for a, b in pairs if np.isfinite(a) and np.isfinite(b)], dtype=float)
        if diff.size < 2:
            return float(diff.mean()) if diff.size else float("nan"), float("nan"), int(diff.size)
        return float(diff.mean()), float(diff.std(ddof=1) / np.sqrt(diff.size)), int(diff.size)

    def to_summary(self) -> dict[str, Any]:
        means = {}
        for method, runs in self.runs.items():
            means[method] = {"diverged": sum(r["status"] != "completed" for r in runs)}
            for key in ("trace", "test_accuracy", "train_loss"):
                mean, se = self.mean_over_seeds(method, key)
                means[method][key] = {"mean": mean, "stderr_over_seeds": se}
        paired = {m: {key: dict(zip(("mean", "stderr_over_seeds", "pairs"), self.paired(m, key)))
                      for key in ("trace", "test_accuracy")} for m in self.runs if m != "gd"}
        return {"config": asdict(self.settings), "status": self.status, "examples_train_test": self.examples,
                "wall_seconds": self.wall_seconds, "mean_over_seeds": means,
                "minus_gd_same_seed": paired, "runs": self.runs,
                "pretrained": self.pretrained}


def _optimizer(method: str, model: nn.Module, s: LenetSettings, seed: int) -> Any:
    """Plain SGD for GD and the SGD methods; wrapped for PGD and Anti-PGD."""
    kind = method if method in INJECTIONS else "gd"
    return injected_sgd(kind, model, s.lr, s.sigma, torch_seed(seed, method))


def _sampler(method: str, n: int, s: LenetSettings, seed: int) -> Sampler:
    if method.startswith("sgd-"):
        return Sampler(method.removeprefix("sgd-"), n, s.batch, rng=rng(seed, "batches", method))
    return Sampler("epoch", n, n, rng=rng(seed, "batches", method))  # every step the whole set


def _evaluate(model: nn.Module, data, test, s: LenetSettings, seed: int) -> dict[str, float]:
    loss_fn = nn.CrossEntropyLoss()
    model.eval()
    with torch.no_grad():
        out = model(data[0])
        found = {"train_loss": float(loss_fn(out, data[1])),
                 "train_accuracy": float((out.argmax(1) == data[1]).float().mean()),
                 "test_accuracy": float((model(test[0]).argmax(1) == test[1]).float().mean())}
    trace, se = hutchinson_trace(HessianOperator(model, loss_fn, data), s.trace_samples, 8, torch_seed(seed, "trace"))
    return {**found, "trace": trace, "trace_stderr": se}


def run_lenet(settings: LenetSettings = LenetSettings(), progress: bool = False) -> LenetResult:
    """Every method of ``settings.methods`` from a common GD-pre-trained LeNet-5, for each seed."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a 21k-parameter model: more threads only contend on a shared machine
    try:
        return _run(settings, progress)
    finally:
        torch.set_num_threads(threads)


def _run(s: LenetSettings, progress: bool) -> LenetResult:
    start = time.perf_counter()
    dataset = load_dataset("digits", train_examples=s.train_examples, seed=s.seed)
    data, test = dataset.train, dataset.test
    result = LenetResult(s, {m: [] for m in s.methods}, examples=(len(data[0]), len(test[0])))
    loss_fn = nn.CrossEntropyLoss()
    for k in range(s.seeds):
        seed = int(torch_seed(s.seed, "lenet", k))
        torch.manual_seed(torch_seed(seed, "init"))
        base = build_model("lenet", tuple(data[0].shape[1:]), dataset.n_classes)
        log = train(base, loss_fn, data, _sampler("gd", len(data[0]), s, seed), s.pretrain_steps,
                    torch.optim.SGD(base.parameters(), lr=s.lr), progress=progress, desc=f"seed {k}: pre-train")
        if log.interrupted or log.diverged:
            result.status = f"{'interrupted' if log.interrupted else 'diverged'} in the pre-training of seed {k}"
            break
        result.pretrained.append(_evaluate(base, data, test, s, seed))
        for method in s.methods:
            model = copy.deepcopy(base)
            tick = time.perf_counter()
            log = train(model, loss_fn, data, _sampler(method, len(data[0]), s, seed), s.steps,
                        _optimizer(method, model, s, seed), progress=progress, desc=f"seed {k}: {method}")
            if log.interrupted:
                result.status = f"interrupted: seed {k}, {method}, after {log.steps} of {s.steps} steps"
                break
            found = dict.fromkeys(METRICS, float("nan")) if log.diverged else _evaluate(model, data, test, s, seed)
            result.runs[method].append({**found, "seconds": time.perf_counter() - tick,
                                        "status": f"diverged at step {log.steps}" if log.diverged else "completed"})
        if result.status != "completed":
            break
    result.wall_seconds = time.perf_counter() - start
    return result
