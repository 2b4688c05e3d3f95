r"""``sgdnoise net``: Hessian eigenbasis, gradient noise and fluctuations of a real network.

The experiment of Kühn & Rosenow (arXiv 2306.05300, Figs. 17-24) on a PyTorch model:

1. **problem** -- a built-in model (MLP, LeNet-5, ResNet-20) and a local data set (digits,
   CIFAR-10 python batches, ``.npz``), all arguments checked before any training;
2. **pre-training** -- SGD with momentum, ``--pretrain-epochs`` epochs from ``--pretrain-lr``
   to ``--lr`` (``--schedule``);
3. **measurement at the pre-trained point** -- the top ``--k`` Hessian eigenpairs
   (:func:`sgdnoise.hessian_eigenpairs`), the per-example gradient covariance projected onto
   them (:math:`\sigma^2_{1,i} = v_i^\top\Sigma_1 v_i`), Hutchinson's trace and the stochastic
   Lanczos spectral density, and the projected noise autocorrelation by lag of each sampler;
4. **late phase** -- for each sampler of ``--sampling``, from that same point, ``--burn-in-epochs``
   then ``--epochs`` epochs at constant ``--lr``, recording at every step the projections of
   :math:`\theta_k - \theta_{\rm start}` and :math:`v_k = \theta_k - \theta_{k-1}` on the
   eigenvectors (streaming: :math:`\mathrm{Var}\,\theta_i`, :math:`\mathrm{Var}\,v_i`,
   :math:`\tau_i`);
5. **theory** -- :func:`sgdnoise.theory.kuehn_rosenow` evaluated with the measured
   :math:`\lambda_i` and :math:`\sigma^2_{\delta g,i} = f\,\sigma^2_{1,i}` (``f`` of the sampler),
   :math:`\lambda_{\rm cross}` and :math:`\tau_{\rm SGD}`;
6. **generalisation** -- test accuracy of complete trainings with each sampler over
   ``--accuracy-seeds`` seeds (mean and standard error).

Output folder: ``summary.json`` (keys in docs/net.md), ``arrays.npz``, figures
``fluctuations`` (Var theta, Var v, tau against lambda, like Kühn & Rosenow Figs. 17, 20, 24),
``noise_autocorrelation``, ``spectrum``, ``training``, and ``checkpoints/`` (rerunning the
same command resumes from them).

Numbers are float32 by default (``--dtype float64`` for validation-grade runs): the Hessian
eigenpairs then have relative residuals of about 1e-4.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from sgdnoise.errors import UsageError
from sgdnoise.experiments.linear import plot_fluctuations, plot_noise_autocorrelation, report_paths
from sgdnoise.experiments.reproduce import Reproduction
from sgdnoise.stats.streaming import segment_mean
from sgdnoise.report.figures import plt, save_figure
from sgdnoise.report.summary import write_summary

NET_SAMPLINGS = ("epoch", "with-replacement", "random-batch")
SCHEDULES = ("cosine", "linear", "constant")
DTYPES = ("float32", "float64")
MEASURED = ("var_theta", "var_v", "tau", "mean_theta")
ARRAY_DOCS = {
    "hessian_eigenvalues": "(k,) descending, at the pre-trained point",
    "hessian_residuals": "(k,) relative residuals ||H v - lambda v|| / |lambda|",
    "noise_covariance_projected": "(k, k) V^T Sigma_1 V, per-example gradient covariance",
    "SAMPLING_var_theta, SAMPLING_var_v, SAMPLING_tau (+ _stderr)": "(k,) measured, per eigenvector",
    "SAMPLING_theory_var_theta, SAMPLING_theory_var_v, SAMPLING_theory_tau": "(k,) Kuehn-Rosenow",
    "SAMPLING_noise_autocorrelation (+ _stderr)": "(max_lag + 1, k) projected cov(dg_k, dg_k+h)",
    "SAMPLING_epoch_losses": "mean mini-batch loss per epoch of the late phase",
    "pretrain_epoch_losses": "mean mini-batch loss per epoch of the pre-training",
    "slq_nodes, slq_weights": "(vectors, steps) stochastic Lanczos quadrature",
}


@dataclass(frozen=True)
class NetConfig:
    """Every setting of a ``net`` run (the command-line options, validated by :func:`validate`)."""

    model: str = "lenet"
    width: float = 1.0
    data: str = "digits"
    data_dir: str | None = None
    train_examples: int | None = None
    test_fraction: float = 0.2
    sampling: tuple[str, ...] = ("epoch", "with-replacement")
    batch: int = 64
    lr: float = 0.005
    momentum: float = 0.9
    weight_decay: float = 5e-3
    pretrain_epochs: int = 60
    pretrain_lr: float = 0.05
    schedule: str = "cosine"
    burn_in_epochs: int = 100
    epochs: int = 100
    k: int = 40
    hvp: str = "double-backward"
    solver: str = "lanczos"
    tol: float | None = None
    noise_epochs: int = 20
    noise_replicas: int = 8
    max_lag: int | None = None
    slq_vectors: int = 4
    slq_steps: int = 48
    trace_samples: int = 16
    accuracy_seeds: int = 3
    dtype: str = "float32"
    device: str = "cpu"
    threads: int | None = None
    checkpoint_every: int = 2000
    seed: int = 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    d = NetConfig()
    p = subparsers.add_parser(
        "net", help="Hessian eigenbasis, gradient noise and weight fluctuations of a network",
        description=__doc__.splitlines()[0])
    g = p.add_argument_group("problem")
    g.add_argument("--model", default=d.model, help="mlp, lenet or resnet20 (default %(default)s)")
    g.add_argument("--width", type=float, default=d.width, help="layer-size factor (default %(default)s)")
    g.add_argument("--data", default=d.data,
                   help="digits (built in), cifar10 (with --data-dir) or a path ending in .npz")
    g.add_argument("--data-dir", default=d.data_dir, help="folder of the CIFAR-10 python batches")
    g.add_argument("--train-examples", type=int, default=d.train_examples,
                   help="use a random subset of this many training examples (default all)")
    g.add_argument("--test-fraction", type=float, default=d.test_fraction,
                   help="held-out share when the data have no test split (default %(default)s)")
    g = p.add_argument_group("training")
    g.add_argument("--sampling", default=",".join(d.sampling),
                   help=f"comma-separated samplers of the late phase, from {', '.join(NET_SAMPLINGS)} "
                        "(default %(default)s)")
    g.add_argument("--batch", type=int, default=d.batch, help="batch size S (default %(default)s)")
    g.add_argument("--lr", type=float, default=d.lr, help="late-phase learning rate (default %(default)s)")
    g.add_argument("--momentum", type=float, default=d.momentum, help="beta (default %(default)s)")
    g.add_argument("--weight-decay", type=float, default=d.weight_decay,
                   help="L2 coefficient gamma of every phase; the Hessian eigenvalues include it "
                        "(default %(default)s)")
    g.add_argument("--pretrain-epochs", type=int, default=d.pretrain_epochs, help="(default %(default)s)")
    g.add_argument("--pretrain-lr", type=float, default=d.pretrain_lr,
                   help="learning rate at the start of pre-training (default %(default)s)")
    g.add_argument("--schedule", default=d.schedule,
                   help=f"pre-training lr from --pretrain-lr to --lr: {', '.join(SCHEDULES)} (default %(default)s)")
    g.add_argument("--burn-in-epochs", type=int, default=d.burn_in_epochs,
                   help="late-phase epochs before recording (default %(default)s)")
    g.add_argument("--epochs", type=int, default=d.epochs, help="recorded late-phase epochs (default %(default)s)")
    g = p.add_argument_group("measurement")
    g.add_argument("--k", type=int, default=d.k, help="Hessian eigenpairs (default %(default)s)")
    g.add_argument("--hvp", default=d.hvp, help="double-backward or forward-over-reverse (default %(default)s)")
    g.add_argument("--solver", default=d.solver, help="lanczos or eigsh (default %(default)s)")
    g.add_argument("--tol", type=float, default=d.tol,
                   help="eigenpair relative residual (default 1e-4 in float32, 1e-8 in float64)")
    g.add_argument("--noise-epochs", type=int, default=d.noise_epochs,
                   help="epochs of batches per replica for the noise autocorrelation (default %(default)s)")
    g.add_argument("--noise-replicas", type=int, default=d.noise_replicas, help="(default %(default)s)")
    g.add_argument("--max-lag", type=int, default=d.max_lag,
                   help="largest lag of the noise autocorrelation (default 2 M)")
    g.add_argument("--slq-vectors", type=int, default=d.slq_vectors,
                   help="random vectors of the spectral density, 0 to skip (default %(default)s)")
    g.add_argument("--slq-steps", type=int, default=d.slq_steps, help="Lanczos steps per vector (default %(default)s)")
    g.add_argument("--trace-samples", type=int, default=d.trace_samples,
                   help="Hutchinson samples of tr H, 0 to skip (default %(default)s)")
    g.add_argument("--accuracy-seeds", type=int, default=d.accuracy_seeds,
                   help="complete trainings per sampler for the test accuracy, 0 to skip (default %(default)s)")
    g = p.add_argument_group("run")
    g.add_argument("--dtype", default=d.dtype, help="float32 or float64 (default %(default)s)")
    g.add_argument("--device", default=d.device, help="torch device, e.g. cpu or cuda (default %(default)s)")
    g.add_argument("--threads", type=int, default=d.threads, help="torch CPU threads (default torch's)")
    g.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every,
                   help="steps between checkpoints, 0 for phase ends only (default %(default)s)")
    g.add_argument("--seed", type=int, default=d.seed, help="random seed (default %(default)s)")
    g.add_argument("--out", type=Path, default=Path("results/net"), help="output folder (default %(default)s)")
    g.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run_command)


def config_from_args(args: argparse.Namespace) -> NetConfig:
    """The :class:`NetConfig` of parsed arguments (not yet validated)."""
    fields = {name: getattr(args, name) for name in NetConfig.__dataclass_fields__ if name != "sampling"}
    return NetConfig(**fields, sampling=tuple(s.strip() for s in args.sampling.split(",") if s.strip()))


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise UsageError(message)


def validate(config: NetConfig) -> tuple[Any, Any]:
    """Check every setting, load the data and build the model; return ``(data, model)``.

    Raises :class:`UsageError` naming the option at fault, before any training.
    """
    import torch

    from sgdnoise.measure.hessian import HVP_METHODS, check_data
    from sgdnoise.measure.lanczos import SOLVERS
    from sgdnoise.problems.datasets import load_dataset
    from sgdnoise.problems.networks import MODELS, build_model

    _check(config.model in MODELS, f"--model must be one of {', '.join(MODELS)}; got {config.model!r}")
    unknown = [s for s in config.sampling if s not in NET_SAMPLINGS]
    _check(bool(config.sampling) and not unknown and len(set(config.sampling)) == len(config.sampling),
           f"--sampling must be a comma-separated list of distinct samplers from {', '.join(NET_SAMPLINGS)}; "
           f"got {','.join(config.sampling)!r}")
    _check(config.schedule in SCHEDULES, f"--schedule must be one of {', '.join(SCHEDULES)}; got {config.schedule!r}")
    _check(config.hvp in HVP_METHODS, f"--hvp must be one of {', '.join(HVP_METHODS)}; got {config.hvp!r}")
    _check(config.solver in SOLVERS, f"--solver must be one of {', '.join(SOLVERS)}; got {config.solver!r}")
    _check(config.dtype in DTYPES, f"--dtype must be one of {', '.join(DTYPES)}; got {config.dtype!r}")
    _check(config.lr > 0, f"--lr must be positive; got {config.lr}")
    _check(config.pretrain_lr > 0, f"--pretrain-lr must be positive; got {config.pretrain_lr}")
    _check(0 <= config.momentum < 1, f"--momentum must be in [0, 1); got {config.momentum}")
    _check(config.weight_decay >= 0, f"--weight-decay must be >= 0; got {config.weight_decay}")
    _check(config.pretrain_epochs >= 0, f"--pretrain-epochs must be >= 0; got {config.pretrain_epochs}")
    _check(config.burn_in_epochs >= 0, f"--burn-in-epochs must be >= 0; got {config.burn_in_epochs}")
    _check(config.epochs >= 1, f"--epochs must be at least 1; got {config.epochs}")
    _check(config.noise_epochs >= 1, f"--noise-epochs must be at least 1; got {config.noise_epochs}")
    _check(config.noise_replicas >= 2, f"--noise-replicas must be at least 2; got {config.noise_replicas}")
    _check(config.slq_vectors >= 0 and config.slq_steps >= 1,
           f"--slq-vectors must be >= 0 and --slq-steps >= 1; got {config.slq_vectors}, {config.slq_steps}")
    _check(config.trace_samples == 0 or config.trace_samples >= 2,
           f"--trace-samples must be 0 or at least 2; got {config.trace_samples}")
    _check(config.accuracy_seeds >= 0, f"--accuracy-seeds must be >= 0; got {config.accuracy_seeds}")
    _check(config.checkpoint_every >= 0, f"--checkpoint-every must be >= 0; got {config.checkpoint_every}")
    _check(config.tol is None or 0 < config.tol < 1, f"--tol must be in (0, 1); got {config.tol}")
    _check(config.threads is None or config.threads >= 1, f"--threads must be at least 1; got {config.threads}")
    try:
        device = torch.device(config.device)
    except RuntimeError:
        raise UsageError(f"--device must name a torch device such as cpu or cuda; got {config.device!r}") from None
    _check(device.type != "cuda" or torch.cuda.is_available(),
           f"--device {config.device}: CUDA is not available on this machine; use --device cpu")
    data = load_dataset(config.data, config.data_dir, config.test_fraction, config.train_examples,
                        config.seed, getattr(torch, config.dtype))
    P = len(data.y_train)
    _check(1 <= config.batch <= P // 2, f"--batch must be between 1 and half the training examples ({P // 2}); "
                                         f"got {config.batch}")
    torch.manual_seed(config.seed)
    model = build_model(config.model, data.input_shape, data.n_classes, config.width)
    model = model.to(device=device, dtype=getattr(torch, config.dtype))
    check_data(model, torch.nn.CrossEntropyLoss(), (data.x_train[:1].to(device), data.y_train[:1].to(device)))
    d = sum(p.numel() for p in model.parameters())
    _check(1 <= config.k < d, f"--k must be between 1 and the number of parameters - 1 ({d - 1}); got {config.k}")
    M = P // config.batch
    max_lag = 2 * M if config.max_lag is None else config.max_lag
    _check(1 <= max_lag < config.noise_epochs * M,
           f"--max-lag must be between 1 and the noise series length ({config.noise_epochs * M - 1}); got {max_lag}")
    return data, model


RESUME_INDEPENDENT = ("threads", "accuracy_seeds")


def check_checkpoints(config: NetConfig, out: Path) -> None:
    """Refuse an output folder whose checkpoints come from another configuration; else record this one.

    Rerunning a command resumes from ``out/checkpoints``; only ``--threads`` and ``--accuracy-seeds``
    may differ between the runs (the accuracy runs keep no checkpoints).
    """
    record = Path(out) / "checkpoints" / "config.json"
    current = {k: v for k, v in json.loads(json.dumps(asdict(config))).items() if k not in RESUME_INDEPENDENT}
    if record.is_file():
        previous = json.loads(record.read_text())
        changed = sorted(k for k in current.keys() | previous.keys() if current.get(k) != previous.get(k))
        _check(not changed, f"--out {out} holds checkpoints of a run with other settings "
                            f"({', '.join('--' + k.replace('_', '-') for k in changed)}); "
                            f"choose another --out or delete {record.parent}")
    else:
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps(current, indent=1) + "\n")


def lr_schedule(kind: str, start: float, end: float, steps: int) -> Callable[[int], float]:
    """Learning rate of step ``t`` going from ``start`` to ``end`` over ``steps`` steps.

    ``cosine``: :math:`\\eta_t = e + (s - e)(1 + \\cos(\\pi t / T))/2` (Loshchilov & Hutter 2017,
    without restarts); ``linear``: straight line; ``constant``: ``start`` throughout.
    """

    def rate(t: int) -> float:
        x = t / max(steps, 1)
        if kind == "cosine":
            return end + (start - end) * 0.5 * (1 + math.cos(math.pi * x))
        if kind == "linear":
            return start + (end - start) * x
        return start

    return rate


def accuracy(model: Any, X: Any, y: Any, chunk: int = 1024) -> float:
    """Share of examples whose largest logit is the label (eval mode, in chunks)."""
    import torch

    was_training = model.training
    model.eval()
    with torch.no_grad():
        correct = sum(int((model(Xc).argmax(1) == yc).sum()) for Xc, yc in zip(X.split(chunk), y.split(chunk)))
    model.train(was_training)
    return correct / len(y)


class _Run:
    """State of one ``net`` run: data, model, loss, output folder, and the training helper."""

    def __init__(self, config: NetConfig, data: Any, model: Any, out: Path, progress: bool) -> None:
        import torch

        self.config, self.data, self.model, self.out, self.progress = config, data, model, Path(out), progress
        self.device = torch.device(config.device)
        self.loss_fn = torch.nn.CrossEntropyLoss()
        self.train_set = (data.x_train.to(self.device), data.y_train.to(self.device))
        self.test_set = (data.x_test.to(self.device), data.y_test.to(self.device))
        self.P = len(data.y_train)
        self.M = self.P // config.batch
        self.status = "completed"

    def sampler(self, sampling: str, stream: int, replicas: int = 1) -> Any:
        from sgdnoise.sampling import Sampler

        rng = np.random.default_rng([self.config.seed, stream])
        return Sampler(sampling, self.P, self.config.batch, replicas=replicas, rng=rng)

    def optimizer(self, lr: float) -> Any:
        import torch

        return torch.optim.SGD(self.model.parameters(), lr=lr, momentum=self.config.momentum,
                               weight_decay=self.config.weight_decay)

    def train(self, name: str, sampler: Any, optimizer: Any, epochs: int, checkpoint: str | None,
              schedule: Any = None, recorder: Any = None) -> Any:
        """Train ``epochs`` epochs; on divergence set the status and return the log."""
        from sgdnoise.dynamics.training import train

        path = self.out / "checkpoints" / f"{checkpoint}.pt" if checkpoint else None
        log = train(self.model, self.loss_fn, self.train_set, sampler, epochs * self.M, optimizer,
                    schedule=schedule, recorder=recorder, checkpoint=path,
                    checkpoint_every=self.config.checkpoint_every, progress=self.progress, desc=name)
        if log.diverged and self.status == "completed":
            self.status = f"diverged: the loss of {name} became non-finite at step {log.steps + 1}"
        return log

    def pretrain(self, sampling: str, stream: int, checkpoint: str | None) -> Any:
        """The pre-training phase with ``sampling``: epochs from --pretrain-lr to --lr."""
        c = self.config
        steps = c.pretrain_epochs * self.M
        return self.train(f"pre-train ({sampling})", self.sampler(sampling, stream), self.optimizer(c.pretrain_lr),
                          c.pretrain_epochs, checkpoint, schedule=lr_schedule(c.schedule, c.pretrain_lr, c.lr, steps))


def _curvature(run: _Run) -> dict[str, Any]:
    """Top-k Hessian eigenpairs, projected per-example noise, trace and density at the current weights."""
    import torch

    from sgdnoise.measure.hessian import HessianOperator
    from sgdnoise.measure.lanczos import hessian_eigenpairs
    from sgdnoise.measure.spectrum import hutchinson_trace, spectral_density
    from sgdnoise.measure.network_noise import PerExampleGradients, projected_covariance

    c = run.config
    cache = run.out / "checkpoints" / "curvature.pt"
    if cache.is_file():
        return torch.load(cache, weights_only=False)
    start = time.perf_counter()
    pairs = hessian_eigenpairs(run.model, run.loss_fn, run.train_set, c.k, method=c.hvp, solver=c.solver,
                               tol=c.tol, seed=c.seed, progress=run.progress)
    eigen_seconds = time.perf_counter() - start
    start = time.perf_counter()
    projections = PerExampleGradients(run.model, run.loss_fn, run.train_set).project(pairs.eigenvectors, run.progress)
    noise_seconds = time.perf_counter() - start
    operator = HessianOperator(run.model, run.loss_fn, run.train_set, method=c.hvp)
    result = {
        "eigenvalues": pairs.eigenvalues.double().cpu().numpy() + c.weight_decay,
        "eigenvectors": pairs.eigenvectors,
        "residuals": pairs.residuals.double().cpu().numpy(),
        "products": pairs.n_products,
        "projections": projections.double().cpu().numpy(),
        "noise_covariance": projected_covariance(projections).double().cpu().numpy(),
        "trace": hutchinson_trace(operator, c.trace_samples, seed=c.seed) if c.trace_samples else None,
        "slq": spectral_density(operator, c.slq_vectors, c.slq_steps, seed=c.seed, progress=run.progress)
        if c.slq_vectors else None,
        "seconds": {"eigenpairs": eigen_seconds, "noise_projection": noise_seconds},
    }
    cache.parent.mkdir(parents=True, exist_ok=True)
    torch.save(result, cache)
    return result


def _late_phase(run: _Run, sampling: str, stream: int, start_state: dict[str, Any],
                basis: Any) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """Burn-in and recorded epochs with ``sampling`` from ``start_state``; (fluctuations, log info)."""
    from sgdnoise.measure.recorder import ProjectedFluctuations
    from sgdnoise.problems.networks import flat_parameters
    from sgdnoise.measure.network_noise import PerExampleGradients, projected_covariance

    c = run.config
    run.model.load_state_dict(start_state)
    sampler, optimizer = run.sampler(sampling, stream), run.optimizer(c.lr)
    burn = run.train(f"burn-in ({sampling})", sampler, optimizer, c.burn_in_epochs, f"{sampling}-burn-in")
    info: dict[str, Any] = {"burn_in_steps": burn.steps, "epoch_losses": list(burn.epoch_losses)}
    if burn.diverged:
        return None, info
    recorder = ProjectedFluctuations(basis, flat_parameters(run.model), c.epochs * run.M)
    log = run.train(f"late phase ({sampling})", sampler, optimizer, c.epochs, f"{sampling}-record", recorder=recorder)
    projections = PerExampleGradients(run.model, run.loss_fn, run.train_set).project(basis)
    info.update(recorded_steps=log.steps, epoch_losses=info["epoch_losses"] + list(log.epoch_losses),
                train_accuracy=accuracy(run.model, *run.train_set), test_accuracy=accuracy(run.model, *run.test_set),
                noise_variance_per_example_at_end=np.diag(projected_covariance(projections).double().cpu().numpy()))
    return (recorder.result() if recorder.steps >= 2 else None), info


def _generalisation(run: _Run) -> dict[str, Any]:
    """Test accuracy after complete trainings with each sampler, over --accuracy-seeds seeds."""
    import torch

    from sgdnoise.problems.networks import build_model

    c = run.config
    accuracies: dict[str, list[float]] = {s: [] for s in c.sampling}
    for seed in range(c.accuracy_seeds):
        for index, sampling in enumerate(c.sampling):
            torch.manual_seed(c.seed + 1000 + seed)
            run.model = build_model(c.model, run.data.input_shape, run.data.n_classes, c.width).to(
                device=run.device, dtype=getattr(torch, c.dtype))
            stream = 100 + 10 * seed + index
            log = run.pretrain(sampling, stream, None)
            if not log.diverged:
                sampler = run.sampler(sampling, stream + 5)
                run.train(f"accuracy run {seed + 1} ({sampling})", sampler, run.optimizer(c.lr),
                          c.burn_in_epochs + c.epochs, None)
            accuracies[sampling].append(accuracy(run.model, *run.test_set))
    summary: dict[str, Any] = {}
    for sampling, values in accuracies.items():
        a = np.asarray(values)
        est = segment_mean(a) if a.size else None  # stderr NaN (null in JSON) for one seed
        summary[sampling] = {"test": a, "mean": None if est is None else est.value,
                             "stderr": None if est is None else est.stderr}
    return summary


def _theory(lam: np.ndarray, sigma2: np.ndarray, sampling: str, config: NetConfig, M: int) -> dict[str, np.ndarray]:
    """Kuehn-Rosenow var_theta, var_v, tau per direction; NaN where lambda <= 0 or lr lambda is unstable."""
    from sgdnoise.theory import kuehn_rosenow

    valid = (lam > 0) & (config.lr * lam < 2 * (1 + config.momentum))
    out = {key: np.full(lam.shape, np.nan) for key in ("var_theta", "var_v", "tau")}
    if valid.any():
        kr = kuehn_rosenow(lam[valid], sigma2[valid], config.lr, config.momentum, M if sampling == "epoch" else 1)
        for key in out:
            out[key][valid] = getattr(kr, key)
    return out


def _crossover(lam: np.ndarray, measured: dict[str, Any], theory: dict[str, Any], lam_cross: float,
               numerator: str, denominator: str) -> dict[str, Any]:
    """Geometric-mean ratio of var_theta (numerator / denominator sampler) below and above lambda_cross."""
    result: dict[str, Any] = {"numerator": numerator, "denominator": denominator}
    for side, mask in (("below", lam < lam_cross), ("above", lam >= lam_cross)):
        m = measured[numerator].var_theta.value[mask] / measured[denominator].var_theta.value[mask]
        t = theory[numerator]["var_theta"][mask] / theory[denominator]["var_theta"][mask]
        result[side] = {
            "directions": int(mask.sum()),
            "measured_var_theta_ratio": float(np.exp(np.nanmean(np.log(m)))) if mask.any() else None,
            "theory_var_theta_ratio": float(np.exp(np.nanmean(np.log(t)))) if mask.any() else None,
        }
    return result


def _plot_spectrum(curv: dict[str, Any], lam_cross: float, out: Path) -> None:
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    lam = curv["eigenvalues"]
    if curv["slq"] is not None:
        slq = curv["slq"]
        top = max(float(slq.nodes.max()), float(lam.max()))
        bottom = min(float(slq.nodes.min()), 0.0)
        grid = np.linspace(bottom, top * 1.05, 600)
        density = slq.density(grid, 0.01 * (top - bottom))
        ax.plot(grid, density, lw=1.2, label="SLQ density (smoothed)")
        ax.set_yscale("log")
        ax.set_ylim(bottom=1e-6 * density.max())
    for value in lam:
        ax.axvline(value, color="C1", lw=0.6, alpha=0.6)
    ax.plot([], [], color="C1", lw=0.6, label=f"top {lam.size} eigenvalues (Lanczos)")
    ax.axvline(lam_cross, color="grey", ls="--", lw=1, label=f"lambda_cross = {lam_cross:.3g}")
    ax.set_xlabel(r"Hessian eigenvalue $\lambda$")
    ax.set_ylabel("spectral density")
    ax.set_title("Hessian spectrum at the pre-trained point")
    ax.legend(fontsize=8)
    save_figure(fig, out, "spectrum")


def _plot_training(pretrain: list[float], late: dict[str, list[float]], out: Path) -> None:
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    ax.plot(np.arange(1, len(pretrain) + 1), pretrain, color="black", lw=1, label="pre-training")
    for sampling, losses in late.items():
        ax.plot(len(pretrain) + np.arange(1, len(losses) + 1), losses, lw=1, label=f"late phase: {sampling}")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("mean mini-batch loss")
    ax.legend(fontsize=8)
    save_figure(fig, out, "training")


def run_net(config: NetConfig, out: Path, progress: bool = True) -> dict[str, Any]:
    """Run the whole experiment (module docstring) into ``out``; return the summary written."""
    import torch

    from sgdnoise.measure.gradient_noise import noise_autocorrelation
    from sgdnoise.theory import batch_noise_factor, lambda_cross, noise_kernel, tau_sgd

    wall = time.perf_counter()
    data, model = validate(config)
    check_checkpoints(config, out)
    if config.threads:
        torch.set_num_threads(config.threads)
    run = _Run(config, data, model, out, progress)
    c, P, M = config, run.P, run.M
    summary: dict[str, Any] = {
        "config": asdict(config), "n_parameters": sum(p.numel() for p in model.parameters()),
        "n_train": P, "n_test": len(data.y_test), "batches_per_epoch": M,
        "lambda_cross": lambda_cross(c.lr, c.momentum, c.batch, P), "tau_sgd": tau_sgd(c.momentum, M),
    }
    arrays: dict[str, np.ndarray] = {}
    pre = run.pretrain("epoch", 0, "pretrain")
    arrays["pretrain_epoch_losses"] = np.asarray(pre.epoch_losses)
    summary["pretrain"] = {"steps": pre.steps, "final_loss": pre.epoch_losses[-1] if pre.epoch_losses else None,
                           "train_accuracy": accuracy(run.model, *run.train_set),
                           "test_accuracy": accuracy(run.model, *run.test_set)}
    late_losses: dict[str, list[float]] = {}
    if not pre.diverged:
        start_state = copy.deepcopy(run.model.state_dict())
        curv = _curvature(run)
        lam = curv["eigenvalues"]
        sigma2_1 = np.diag(curv["noise_covariance"])
        summary.update(
            hessian_eigenvalues=lam, hessian_residuals=curv["residuals"], hessian_products=curv["products"],
            hessian_trace=None if curv["trace"] is None else {"value": curv["trace"][0], "stderr": curv["trace"][1]},
            noise_variance_per_example=sigma2_1, noise_variance={}, noise_autocorrelation={},
            timing=curv["seconds"],
            measured={key: {} for name in MEASURED for key in (name, f"{name}_stderr")},
            theory={"kuehn_rosenow": {"var_theta": {}, "var_v": {}, "tau": {}}, "noise_kernel": {}},
            late_phase={},
        )
        arrays.update(hessian_eigenvalues=lam, hessian_residuals=curv["residuals"],
                      noise_covariance_projected=curv["noise_covariance"])
        if curv["slq"] is not None:
            arrays.update(slq_nodes=curv["slq"].nodes, slq_weights=curv["slq"].weights)
        max_lag = 2 * M if c.max_lag is None else c.max_lag
        results, autocorrs, theories = {}, {}, {}
        for index, sampling in enumerate(c.sampling):
            key = sampling.replace("-", "_")
            sigma2 = batch_noise_factor(sampling, P, c.batch) * sigma2_1
            summary["noise_variance"][sampling] = sigma2
            theories[sampling] = _theory(lam, sigma2, sampling, c, M)
            for name, values in theories[sampling].items():
                summary["theory"]["kuehn_rosenow"][name][sampling] = values
                arrays[f"{key}_theory_{name}"] = values
            autocorrs[sampling] = noise_autocorrelation(
                curv["projections"], run.sampler(sampling, 50 + index, replicas=c.noise_replicas),
                c.noise_epochs * M, max_lag)
            kappa = autocorrs[sampling].trace
            summary["noise_autocorrelation"][sampling] = kappa.value / kappa.value[0]
            summary["theory"]["noise_kernel"][sampling] = noise_kernel(sampling, M, max_lag)
            arrays[f"{key}_noise_autocorrelation"] = autocorrs[sampling].per_direction.value
            arrays[f"{key}_noise_autocorrelation_stderr"] = autocorrs[sampling].per_direction.stderr
            fluct, info = _late_phase(run, sampling, 10 + index, start_state, curv["eigenvectors"])
            late_losses[sampling] = info["epoch_losses"]
            arrays[f"{key}_epoch_losses"] = np.asarray(info["epoch_losses"])
            summary["late_phase"][sampling] = info
            if fluct is None:
                break
            results[sampling] = SimpleNamespace(hessian_eigenvalues=lam, **fluct)
            for name in MEASURED:
                summary["measured"][name][sampling] = fluct[name].value
                summary["measured"][f"{name}_stderr"][sampling] = fluct[name].stderr
                arrays[f"{key}_{name}"] = fluct[name].value
                arrays[f"{key}_{name}_stderr"] = fluct[name].stderr
        if len(results) == len(c.sampling) and {"epoch", "with-replacement"} <= set(c.sampling):
            summary["crossover"] = _crossover(lam, results, theories, summary["lambda_cross"],
                                              "epoch", "with-replacement")
        markers = {"lambda_cross": summary["lambda_cross"], "tau_SGD": summary["tau_sgd"]}
        if results:
            plot_fluctuations(results, run.out, {s: {"kuehn-rosenow": theories[s]} for s in results}, markers)
        plot_noise_autocorrelation(autocorrs, {s: SimpleNamespace(batch_size=c.batch) for s in autocorrs},
                                   SimpleNamespace(n_examples=P), run.out)
        _plot_spectrum(curv, summary["lambda_cross"], run.out)
    _plot_training(list(pre.epoch_losses), late_losses, run.out)
    if c.accuracy_seeds and run.status == "completed":
        summary["accuracy"] = _generalisation(run)
    summary["status"] = run.status
    summary["wall_seconds"] = time.perf_counter() - wall
    summary["files"] = {"arrays.npz": ARRAY_DOCS, "fluctuations.png": "Var theta, Var v, tau against lambda",
                        "noise_autocorrelation.png": "projected noise autocorrelation by lag",
                        "spectrum.png": "Hessian spectral density and top eigenvalues",
                        "training.png": "loss per epoch", "checkpoints/": "resume data"}
    np.savez(run.out / "arrays.npz", **arrays)
    write_summary(run.out, summary)
    return summary


def print_summary(summary: dict[str, Any]) -> None:
    """A few lines: eigenvalue range, lambda_cross, the crossover, accuracies, wall time."""
    lam = summary.get("hessian_eigenvalues")
    if lam is not None:
        print(f"Hessian: top {len(lam)} eigenvalues {lam[0]:.4g} ... {lam[-1]:.4g}; "
              f"lambda_cross = {summary['lambda_cross']:.4g}, tau_SGD = {summary['tau_sgd']:.4g}")
    for side, block in summary.get("crossover", {}).items():
        if isinstance(block, dict) and block.get("directions"):
            print(f"var_theta epoch / with-replacement {side} lambda_cross ({block['directions']} directions): "
                  f"measured {block['measured_var_theta_ratio']:.3g}, theory {block['theory_var_theta_ratio']:.3g}")
    for sampling, block in summary.get("accuracy", {}).items():
        if block["mean"] is not None:
            se = f" +- {block['stderr']:.4f}" if np.isfinite(block["stderr"]) else ""
            print(f"test accuracy {sampling}: {block['mean']:.4f}{se} over {len(block['test'])} seeds")
    print(f"wall time {summary['wall_seconds']:.0f} s")


def run_command(args: argparse.Namespace) -> int:
    summary = run_net(config_from_args(args), args.out, progress=not args.no_progress)
    print_summary(summary)
    report_paths(args.out, summary)
    return 0 if summary["status"] == "completed" else 1


def _reproduce_lenet_digits(out: Path, seed: int) -> dict[str, Any]:
    summary = run_net(NetConfig(seed=seed), out, progress=sys.stderr.isatty())
    print_summary(summary)
    return summary


def _reproduce_widening_valley(out: Path, seed: int) -> dict[str, Any]:
    from sgdnoise.dynamics.injection import INJECTIONS, widening_valley

    settings = {"steps": 10_000, "lr": 0.05, "sigma": 0.1, "dim": 10, "u0": 1.0, "v0": 1.0, "seed": seed}
    paths = {m: widening_valley(m, **settings) for m in INJECTIONS}
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for method, path in paths.items():
        axes[0].plot(path["step"], path["hessian_trace"], label=method)
        axes[1].plot(path["u_norm"], np.abs(path["v"]), lw=1, label=method)
    axes[0].set_yscale("log")
    axes[0].set_xlabel("step")
    axes[0].set_ylabel(r"tr $\nabla^2 L$ = $\|u\|^2$ + dim $v^2$")
    axes[1].set_xlabel(r"$\|u\|$")
    axes[1].set_ylabel(r"$|v|$")
    axes[0].legend()
    fig.suptitle(r"Widening valley $L = \frac{1}{2} v^2 \|u\|^2$: GD, PGD and Anti-PGD")
    save_figure(fig, out, "widening_valley")
    summary = {"config": settings, "final": {m: {k: p[k][-1] for k in ("loss", "hessian_trace", "u_norm", "v")}
                                            for m, p in paths.items()}}
    write_summary(out, summary)
    return summary


REPRODUCTIONS = {
    "kuehn-rosenow-lenet-digits": Reproduction(
        "Kuehn & Rosenow Figs. 17/20/24: LeNet-5 on digits, Var theta, Var v, tau against lambda, "
        "epoch vs with-replacement", _reproduce_lenet_digits),
    "orvieto-widening-valley": Reproduction(
        "Orvieto et al. 2022 / Kuehn & Rosenow Fig. 25: GD, PGD and Anti-PGD in the widening valley",
        _reproduce_widening_valley),
}
