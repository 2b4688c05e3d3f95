r"""What a ``net`` run measured and predicted: typed results and the ``summary.json`` they make.

:class:`NetResult` holds, for the pre-trained point, the :class:`Curvature` (top Hessian
eigenpairs, the projected per-example noise covariance, trace, spectral density) and, per
sampler, a :class:`SamplerResult`: the gradient noise along the eigenvectors
(:math:`\sigma^2_{\delta g,i} = f\sigma^2_{1,i}` and its autocorrelation by lag, docs/theory.md
§2), the Kühn-Rosenow prediction (§3d) and the late phase (:class:`LatePhase`, with the
measured :class:`Fluctuations`); then the :class:`Crossover` of the two samplers around
:math:`\lambda_{\rm cross}` and the test :class:`Accuracy` of complete trainings.
:meth:`NetResult.to_summary` gives the keys of docs/net.md.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sgdnoise.experiments.net.config import NetConfig
from sgdnoise.stats.streaming import Estimate

#: Measured quantities per eigendirection, in the order of the ``measured`` block.
MEASURED = ("var_theta", "var_v", "tau", "mean_theta", "var_theta_raw", "trend")
#: Kühn-Rosenow predictions per eigendirection.
PREDICTED = ("var_theta", "var_v", "tau")


@dataclass(frozen=True)
class Pretrain:
    """The pre-training phase: steps done, mean loss per epoch, accuracies at its end."""

    steps: int
    epoch_losses: list[float]
    train_accuracy: float
    test_accuracy: float

    def to_summary(self) -> dict[str, Any]:
        return {"steps": self.steps, "final_loss": self.epoch_losses[-1] if self.epoch_losses else None,
                "train_accuracy": self.train_accuracy, "test_accuracy": self.test_accuracy}


@dataclass(frozen=True)
class SpectralLines:
    """Stochastic Lanczos quadrature nodes and weights, ``(vectors, steps)`` (docs/theory.md §9)."""

    nodes: np.ndarray
    weights: np.ndarray


@dataclass(frozen=True)
class Curvature:
    r"""The Hessian and the gradient noise at the pre-trained point.

    Attributes
    ----------
    eigenvalues : ndarray (k,)
        Top eigenvalues :math:`\lambda_i` of the objective including weight decay, descending.
    residuals : ndarray (k,)
        Relative residuals :math:`\|Hv_i - \lambda_i v_i\| / |\lambda_i|`.
    products : int
        Hessian-vector products of the eigen-solve.
    noise_covariance : ndarray (k, k)
        :math:`V^\top \Sigma_1 V`, the per-example gradient covariance in the eigenbasis.
    trace : Estimate or None
        Hutchinson's :math:`\operatorname{tr} H` (scalars), when asked for.
    spectrum : SpectralLines or None
        Stochastic Lanczos quadrature, when asked for.
    seconds : dict
        Wall time of the eigen-solve (``eigenpairs``), the noise projection and the Hessian blocks.
    hessian_spread : ndarray (k, k)
        :math:`S_{ij} = \frac1P\sum_n (B_n - \bar B)_{ij}^2`, the spread of the per-example
        Hessians in the eigenbasis (:func:`sgdnoise.theory.net_noise.hessian_spread`).
    """

    eigenvalues: np.ndarray
    residuals: np.ndarray
    products: int
    noise_covariance: np.ndarray
    trace: Estimate | None
    spectrum: SpectralLines | None
    seconds: dict[str, float]
    hessian_spread: np.ndarray

    @property
    def noise_variance_per_example(self) -> np.ndarray:
        r""":math:`\sigma^2_{1,i} = v_i^\top \Sigma_1 v_i`."""
        return np.diag(self.noise_covariance)


@dataclass(frozen=True)
class Fluctuations:
    """Var theta_i (linear drift removed), Var v_i, tau_i, the trend and the verdicts over the recorded window.

    ``var_theta`` is the variance about the window's least-squares line
    (:mod:`sgdnoise.measure.window`), ``var_theta_raw`` the variance about the window mean
    (nothing removed); ``trend`` the slope of the projected mean per step;
    ``autocorrelation_time`` the measured integrated autocorrelation time of theta_i,
    ``relaxation_time`` t_i the larger of it and the heavy-ball relaxation time
    (:func:`sgdnoise.theory.net_noise.relaxation_time`); ``block_length`` the steps per
    batch-means block behind each standard error (at least t_i where the window allows).
    ``equilibrated``: the window holds at least 20 t_i; ``trending``: the trend
    differs from zero by more than 3 standard errors; ``stationary``: equilibrated and not
    trending (:func:`sgdnoise.experiments.net.late_phase.stationarity`).
    """

    var_theta: Estimate
    var_v: Estimate
    tau: Estimate
    mean_theta: Estimate
    var_theta_raw: Estimate
    trend: Estimate
    autocorrelation_time: np.ndarray
    relaxation_time: np.ndarray
    block_length: np.ndarray
    equilibrated: np.ndarray
    trending: np.ndarray

    @property
    def stationary(self) -> np.ndarray:
        return self.equilibrated & ~self.trending


@dataclass(frozen=True)
class LatePhase:
    """One sampler's late phase from the pre-trained point.

    ``recorded_steps``, the accuracies and ``noise_variance_per_example_at_end`` are None
    when the burn-in diverged; ``fluctuations`` is None when fewer than 3 steps were recorded;
    ``loss_trend`` holds :func:`sgdnoise.experiments.net.late_phase.loss_trend` of the burn-in
    (``burn_in``) and of the recorded window (``window``).
    """

    burn_in_steps: int
    epoch_losses: list[float]
    recorded_steps: int | None = None
    train_accuracy: float | None = None
    test_accuracy: float | None = None
    noise_variance_per_example_at_end: np.ndarray | None = None
    fluctuations: Fluctuations | None = None
    loss_trend: dict[str, dict[str, float | None]] | None = None
    mechanism: dict[str, Any] | None = None

    def to_summary(self) -> dict[str, Any]:
        block: dict[str, Any] = {"burn_in_steps": self.burn_in_steps, "epoch_losses": self.epoch_losses,
                                 "loss_trend": self.loss_trend}
        if self.recorded_steps is not None:
            block.update(recorded_steps=self.recorded_steps, train_accuracy=self.train_accuracy,
                         test_accuracy=self.test_accuracy,
                         noise_variance_per_example_at_end=self.noise_variance_per_example_at_end)
        return block


@dataclass(frozen=True)
class SamplerResult:
    r"""Noise, prediction and late phase of one sampler.

    Attributes
    ----------
    noise_variance : ndarray (k,)
        :math:`\sigma^2_{\delta g,i} = f \sigma^2_{1,i}` (docs/theory.md §2).
    autocorrelation_per_direction, autocorrelation_trace : Estimate
        Measured :math:`\mathrm{cov}(\delta g_k, \delta g_{k+h})` along each eigenvector,
        ``(max_lag + 1, k)``, and its trace, ``(max_lag + 1,)``.
    noise_kernel : ndarray (max_lag + 1,)
        :math:`\kappa_h` of docs/theory.md §2.
    theory : dict
        Kühn-Rosenow ``var_theta``, ``var_v``, ``tau`` per direction (NaN where not stable).
    late_phase : LatePhase
    weight_dependent : dict
        kernel (``white``; for epochs also ``epoch``) -> ``var_theta``, ``var_v``, ``tau``,
        ``weight_dependent_share``, ``spectral_radius`` of :mod:`sgdnoise.theory.net_noise`.
    """

    noise_variance: np.ndarray
    autocorrelation_per_direction: Estimate
    autocorrelation_trace: Estimate
    noise_kernel: np.ndarray
    theory: dict[str, np.ndarray]
    late_phase: LatePhase
    weight_dependent: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)


@dataclass(frozen=True)
class CrossoverSide:
    """Geometric-mean ratios of Var theta over the directions on one side of lambda_cross."""

    directions: int
    measured_var_theta_ratio: float | None
    theory_var_theta_ratio: float | None


@dataclass(frozen=True)
class Crossover:
    """Var theta(numerator) / Var theta(denominator) below and above lambda_cross (docs/theory.md §3d)."""

    numerator: str
    denominator: str
    below: CrossoverSide
    above: CrossoverSide

    def to_summary(self) -> dict[str, Any]:
        return {"numerator": self.numerator, "denominator": self.denominator,
                "below": vars(self.below).copy(), "above": vars(self.above).copy()}


@dataclass(frozen=True)
class Accuracy:
    """Test accuracies of complete trainings with one sampler; mean and standard error (NaN for one)."""

    test: np.ndarray
    mean: float | None
    stderr: float | None


@dataclass(frozen=True)
class NetResult:
    """Everything a ``net`` run produced (module docstring); ``status`` says how it ended."""

    config: NetConfig
    n_parameters: int
    n_train: int
    n_test: int
    batches_per_epoch: int
    lambda_cross: float
    tau_sgd: float
    pretrain: Pretrain
    curvature: Curvature | None = None
    samplers: dict[str, SamplerResult] = field(default_factory=dict)
    crossover: Crossover | None = None
    accuracy: dict[str, Accuracy] | None = None
    status: str = "completed"
    wall_seconds: float = 0.0
    resumed_from: dict[str, str] = field(default_factory=dict)

    @property
    def completed(self) -> bool:
        return self.status == "completed"

    def fluctuations(self) -> dict[str, Fluctuations]:
        """The measured fluctuations of the samplers whose late phase recorded them."""
        return {s: r.late_phase.fluctuations for s, r in self.samplers.items()
                if r.late_phase.fluctuations is not None}

    def to_summary(self) -> dict[str, Any]:
        """The ``summary.json`` keys of docs/net.md (without ``files`` and ``provenance``)."""
        settings = self.config.to_mapping()
        summary: dict[str, Any] = {
            "config": {**settings, "settings": settings}, "n_parameters": self.n_parameters,
            "n_train": self.n_train, "n_test": self.n_test, "batches_per_epoch": self.batches_per_epoch,
            "lambda_cross": self.lambda_cross, "tau_sgd": self.tau_sgd, "pretrain": self.pretrain.to_summary(),
        }
        if self.curvature is not None:
            summary.update(self._measurement_summary(self.curvature))
        if self.crossover is not None:
            summary["crossover"] = self.crossover.to_summary()
        from sgdnoise.experiments.net.analysis import analyse

        summary["analysis"] = analyse(self) or None
        if self.accuracy is not None:
            summary["accuracy"] = {s: vars(a).copy() for s, a in self.accuracy.items()}
        summary["status"] = self.status
        summary["resumed_from"] = self.resumed_from or None
        summary["wall_seconds"] = self.wall_seconds
        return summary

    def stationary_counts(self) -> dict[str, tuple[int, int]]:
        """Per sampler with measured fluctuations: (stationary directions, directions)."""
        return {s: (int(np.sum(f.stationary)), int(np.size(f.stationary))) for s, f in self.fluctuations().items()}

    def _measurement_summary(self, curv: Curvature) -> dict[str, Any]:
        trace = None if curv.trace is None else {"value": curv.trace.value, "stderr": curv.trace.stderr}
        measured: dict[str, dict[str, np.ndarray]] = {key: {} for name in MEASURED
                                                      for key in (name, f"{name}_stderr")}
        measured.update(autocorrelation_time={}, relaxation_time={}, block_length={}, equilibrated={}, trending={},
                        stationary={})
        for sampling, fluct in self.fluctuations().items():
            for name in MEASURED:
                measured[name][sampling] = getattr(fluct, name).value
                measured[f"{name}_stderr"][sampling] = getattr(fluct, name).stderr
            for name in ("autocorrelation_time", "relaxation_time", "block_length", "equilibrated", "trending",
                         "stationary"):
                measured[name][sampling] = getattr(fluct, name)
        measured["stationary_count"] = {s: n for s, (n, _) in self.stationary_counts().items()}
        s = self.samplers
        return {
            "hessian_eigenvalues": curv.eigenvalues, "hessian_residuals": curv.residuals,
            "hessian_products": curv.products, "hessian_trace": trace,
            "noise_variance_per_example": curv.noise_variance_per_example,
            "noise_variance": {k: r.noise_variance for k, r in s.items()},
            "noise_autocorrelation": {k: r.autocorrelation_trace.value / r.autocorrelation_trace.value[0]
                                      for k, r in s.items()},
            "timing": curv.seconds, "measured": measured,
            "theory": {"kuehn_rosenow": {name: {k: r.theory[name] for k, r in s.items()} for name in PREDICTED},
                       "weight_dependent": {k: r.weight_dependent for k, r in s.items()},
                       "noise_kernel": {k: r.noise_kernel for k, r in s.items()}},
            "late_phase": {k: r.late_phase.to_summary() for k, r in s.items()},
        }
