"""``sgdnoise balance``: noise balance and stationary distributions of diagonal linear networks.

Reproduces Ziyin, Li, Ueda, "Noise balance and stationary distribution of
stochastic gradient descent" (arXiv 2308.06671; docs/theory.md §6):

problem
    one-dimensional regression ``y = k x + eps`` (or a data file) fitted by
    ``v = sum_i prod_k u_i^(k)`` (:mod:`sgdnoise.problems.diagonal`);
dynamics
    SGD on many independent replicas and the SDE of SGD
    (:mod:`sgdnoise.dynamics.balance_sgd`);
theory
    law of balance, stationary densities, ``T_c``, tails (:mod:`sgdnoise.theory.balance`);
comparison
    Kolmogorov-Smirnov distance of the final ``v`` of the replicas (independent
    samples) to the density, with its critical value and its null distribution;
    measured against predicted decay rate of the layer imbalances.

Results go to ``--out``: ``summary.json``, ``samples.npz``, ``density.png`` and
``balance.png`` (PNG and PDF).  ``REPRODUCTIONS`` holds the figures of the paper
for ``sgdnoise reproduce``.
"""
from __future__ import annotations

import argparse
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from sgdnoise.dynamics.balance_sgd import BalanceRun, simulate_sde, simulate_sgd
from sgdnoise.errors import UsageError
from sgdnoise.experiments.reproduce import Reproduction
from sgdnoise.stats.distributions import histogram, mean_and_variance, replica_slopes
from sgdnoise.stats.streaming import segment_mean
from sgdnoise.problems.diagonal import (
    DataMoments,
    Dataset,
    DiagonalNetwork,
    TeacherStream,
)
from sgdnoise.report.figures import plt, save_figure
from sgdnoise.report.summary import write_summary
from sgdnoise.theory import balance as theory

ALPHA = 1e-3  # significance level of every comparison (two-sided)
Z_CRIT = float(stats.norm.isf(ALPHA / 2))
COLLAPSED = 1e-6  # |v| below this times the scale of v counts as collapsed onto v = 0
DENSITY_POINTS = 2000


# --- configuration ---------------------------------------------------------------------------

@dataclass(frozen=True)
class BalanceConfig:
    """Everything that defines a ``balance`` run (recorded under ``config`` in summary.json).

    Exactly one of ``T`` and ``lr`` is given; the other follows from ``T = lr / batch``.
    ``time`` (in units of ``lr`` x steps) defaults to 40 relaxation times of ``v``
    (:func:`relaxation_time`).
    """

    depth: int = 1
    width: int = 1
    T: float | None = None
    lr: float | None = None
    batch: int = 1
    weight_decay: float = 0.0
    slope: float = 1.0
    noise_std: float = 1.0
    x_std: float = 0.1
    data: str | None = None
    replicas: int = 10_000
    time: float | None = None
    records: int = 20
    balance_replicas: int = 2_000
    imbalance: float = 0.5
    sde: bool = True
    tol: float = 0.003
    seed: int = 0

    @property
    def temperature(self) -> float:
        return self.T if self.T is not None else self.lr / self.batch

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else self.T * self.batch

    def validate(self) -> tuple[DiagonalNetwork, TeacherStream | Dataset, DataMoments]:
        """Check every option (UsageError naming it); return the network, data and moments."""
        if (self.T is None) == (self.lr is None):
            raise UsageError("give exactly one of --T and --lr (T = lr / batch)")
        for name, value in (("--T", self.T), ("--lr", self.lr)):
            if value is not None and not (math.isfinite(value) and value > 0):
                raise UsageError(f"{name} must be a finite number > 0; got {value}")
        positive_ints = (("--batch", self.batch, 1), ("--replicas", self.replicas, 10),
                         ("--records", self.records, 2), ("--balance-replicas",
                                                          self.balance_replicas, 2))
        for name, value, low in positive_ints:
            if value < low:
                raise UsageError(f"{name} must be an integer >= {low}; got {value}")
        if self.time is not None and not (math.isfinite(self.time) and self.time > 0):
            raise UsageError(f"--time must be a finite number > 0; got {self.time}")
        if not (math.isfinite(self.imbalance) and self.imbalance > 0):
            raise UsageError(f"--imbalance must be > 0; got {self.imbalance}")
        if not (0 < self.tol <= 1):
            raise UsageError(f"--tol must be in (0, 1]; got {self.tol}")
        if not (math.isfinite(self.noise_std) and self.noise_std >= 0):
            raise UsageError(f"--noise-std must be >= 0; got {self.noise_std}")
        net = DiagonalNetwork(self.depth, self.width, self.weight_decay)
        data = load_data(Path(self.data)) if self.data else TeacherStream(
            self.slope, self.noise_std, self.x_std)
        return net, data, data.moments


def load_data(path: Path) -> Dataset:
    """Pairs ``(x, y)`` from ``.npz`` (arrays ``x`` and ``y``) or a two-column text/CSV file."""
    if not path.is_file():
        raise UsageError(f"--data: no such file {path}")
    try:
        if path.suffix == ".npz":
            with np.load(path) as f:
                x, y = f["x"], f["y"]
        else:
            table = np.loadtxt(path, delimiter="," if path.suffix == ".csv" else None, ndmin=2)
            x, y = table[:, 0], table[:, 1]
    except (KeyError, ValueError, IndexError, OSError) as exc:
        raise UsageError(f"--data: {path} must hold arrays x and y (.npz) or two columns x y; "
                         f"{exc}") from None
    x, y = np.asarray(x, np.float64).ravel(), np.asarray(y, np.float64).ravel()
    if x.size != y.size or x.size < 2 or not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise UsageError(f"--data: {path} needs at least two finite pairs (x, y)")
    return Dataset(x, y)


# --- comparison of samples with a density ----------------------------------------------------

def ks_distance(samples: np.ndarray, density: theory.StationaryDensity) -> dict[str, float]:
    """Kolmogorov-Smirnov distance of independent samples to the density, with its null law.

    Under the null the distance of ``n`` samples follows ``stats.kstwo(n)``: its mean and
    standard deviation are the sampling error, ``critical`` its ``1 - ALPHA`` quantile.
    """
    n = samples.size
    result = stats.kstest(samples, density.cdf_at)
    null = stats.kstwo(n)
    return {"statistic": "Kolmogorov-Smirnov", "value": float(result.statistic),
            "p_value": float(result.pvalue), "n": int(n), "alpha": ALPHA,
            "critical": float(null.ppf(1 - ALPHA)), "null_mean": float(null.mean()),
            "null_sd": float(null.std())}


# --- one experiment ---------------------------------------------------------------------------

def minimiser(moments: DataMoments, net: DiagonalNetwork) -> float:
    """``v`` at the minimum of the expected loss (on the balanced manifold for ``D = 1``)."""
    if net.depth == 0:
        return moments.beta2 / (moments.beta1 + net.weight_decay / net.width)
    if net.depth == 1:
        return math.copysign(max(abs(moments.beta2) - net.weight_decay, 0.0), moments.beta2
                             ) / moments.beta1
    return moments.beta2 / moments.beta1


def relaxation_time(moments: DataMoments, net: DiagonalNetwork, v_star: float, T: float) -> float:
    """Time for ``v`` to forget its start.

    ``1 / (2 beta_1 |grad v|^2)`` at the balanced minimiser; for ``D = 1`` below ``T_c`` at
    least the mixing time of the mass near ``v = 0``, where ``log v`` has an exponential
    density of rate ``a = (T_c/T - 1)/2`` and diffuses at ``16 T alpha_3``:
    ``1/(16 T alpha_3 a^2)``.
    """
    D, d = net.depth, net.width
    scale = max(abs(v_star), 1e-3 * abs(moments.beta2) / moments.beta1)
    time = 1.0 / (2.0 * moments.beta1 * d * (D + 1) * (scale / d) ** (2.0 * D / (D + 1)))
    T_c = theory.critical_temperature(moments, D, net.weight_decay)
    if D == 1 and T < T_c:
        a = 0.5 * (T_c / T - 1.0)
        time = max(time, 1.0 / (16.0 * T * moments.alpha3 * a * a))
    return time


def unbalanced(net: DiagonalNetwork, v0: float, replicas: int, imbalance: float) -> np.ndarray:
    """Parameters with output ``v0``, layer ``k`` of each path scaled by ``exp(eps (2k/D - 1))``
    from the balanced magnitude ``|v0/d|^(1/(D+1))`` (the product is unchanged)."""
    theta = net.balanced(np.full(replicas, v0))
    if net.depth:
        theta *= np.exp(imbalance * (2.0 * np.arange(net.depth + 1) / net.depth - 1.0))
    return theta


def _density_or_reason(moments: DataMoments, net: DiagonalNetwork, T: float
                       ) -> tuple[theory.StationaryDensity | None, str]:
    try:
        return theory.stationary_density(moments, net.depth, T, net.width, net.weight_decay), \
            "nonzero branch"
    except UsageError as exc:
        return None, str(exc)


def compare_samples(v: np.ndarray, density: theory.StationaryDensity | None,
                    scale: float) -> dict[str, Any]:
    """Histogram, moments, collapsed fraction and KS distance of the final ``v`` of a run."""
    v = v[np.isfinite(v)]
    out: dict[str, Any] = {"n": int(v.size), "histogram": histogram(v), **mean_and_variance(v),
                           "collapsed_fraction": float(np.mean(np.abs(v) < COLLAPSED * scale))}
    out["distance"] = ks_distance(v, density) if density is not None else None
    return out


def balance_rates(run: BalanceRun, moments: DataMoments, T: float, weight_decay: float,
                  density: theory.StationaryDensity | None, net: DiagonalNetwork
                  ) -> list[dict[str, float]]:
    """Measured and predicted decay rates of ``log|u_k^2 - u_{k+1}^2|``, per pair of layers.

    Each replica's rate is the least-squares slope over the record times; the mean over
    replicas and its standard error are reported, next to the prediction of the law of
    balance integrated along the same paths (continuous, and with the first-order
    finite-step term) and averaged over the stationary density.
    """
    others = 2.0 * (net.depth - 1.0) / (net.depth + 1.0)
    stationary = (density.expect(lambda v: theory.balance_rate(
        moments, v, T, weight_decay, np.abs(v / net.width) ** others))
        if density is not None else None)
    ok = ~run.diverged
    rates = []
    for k in range(net.depth):
        measured = -replica_slopes(run.times, np.log(np.abs(run.imbalance[:, ok, k])))
        est = segment_mean(measured)
        row: dict[str, float] = {"pair": k, "measured": float(est.value),
                                 "measured_se": float(est.stderr)}
        for key, discrete in (("predicted", False), ("predicted_discrete", True)):
            path = theory.predicted_log_imbalance(moments, T, weight_decay,
                                                  run.integrals[:, ok, k, :],
                                                  run.times[:, None], discrete)
            predicted = -replica_slopes(run.times, path)
            difference = measured - predicted
            row[key] = float(predicted.mean())
            row[key + "_difference_se"] = float(segment_mean(difference).stderr)
        row["predicted_stationary"] = stationary
        rates.append(row)
    return rates


def run_balance(config: BalanceConfig, out_dir: Path | None, progress: bool | None = None
                ) -> dict[str, Any]:
    """Run the experiment of ``config``; write the results folder when ``out_dir`` is given.

    Steps: (1) validate and build the problem; (2) theory: ``T_c``, density, tail exponent;
    (3) SGD (and the SDE) from the balanced minimiser, final ``v`` compared with the density;
    (4) for ``D >= 1`` SGD, the SDE and gradient flow from unbalanced layers, imbalance
    decay compared with the law of balance; (5) summary, arrays, figures.
    """
    net, data, moments = config.validate()
    start = time.perf_counter()
    T, lr = config.temperature, config.learning_rate
    density, regime = _density_or_reason(moments, net, T)
    v_star = minimiser(moments, net)
    scale = theory.v_scale(moments)
    duration = config.time or 40.0 * relaxation_time(moments, net, v_star, T)
    steps = max(1, round(duration / lr))
    record_every = max(1, steps // config.records)
    v0 = v_star if v_star != 0 else math.copysign(1e-3 * scale, moments.beta2)
    seeds = np.random.SeedSequence(config.seed).generate_state(5)
    theta0 = net.balanced(np.full(config.replicas, v0))
    runs = {"sgd": simulate_sgd(net, data, lr, config.batch, theta0, steps, record_every,
                                int(seeds[0]), progress)}
    if config.sde:
        runs["sde"] = simulate_sde(net, moments, T, theta0, runs["sgd"].times, config.tol,
                                   seed=int(seeds[1]), progress=progress)
    results = {name: compare_samples(run.v[-1][~run.diverged], density, scale)
               for name, run in runs.items()}
    for name, run in runs.items():
        results[name]["variance_over_time"] = np.var(run.v[:, ~run.diverged], axis=1)
        results[name]["diverged"] = int(run.diverged.sum())

    balance: dict[str, Any] | None = None
    balance_runs: dict[str, BalanceRun] = {}
    if net.depth >= 1:
        rate_guess = float(theory.balance_rate(moments, v0, T, net.weight_decay,
                                                abs(v0 / net.width) ** (2.0 * (net.depth - 1)
                                                                        / (net.depth + 1))))
        b_steps = max(config.records, min(steps, round(15.0 / rate_guess / lr)))
        b_every = max(1, b_steps // config.records)
        # start away from the minimiser too, so that gradient flow moves (and conserves)
        theta_b = unbalanced(net, 0.5 * v0, config.balance_replicas, config.imbalance)
        balance_runs["sgd"] = simulate_sgd(net, data, lr, config.batch, theta_b, b_steps, b_every,
                                           int(seeds[2]), progress)
        times = balance_runs["sgd"].times
        if config.sde:
            balance_runs["sde"] = simulate_sde(net, moments, T, theta_b, times, config.tol,
                                               seed=int(seeds[3]), progress=progress)
        balance_runs["gradient_flow"] = simulate_sde(net, moments, 0.0, theta_b[:1], times,
                                                     config.tol, seed=int(seeds[4]))
        rates = {name: balance_rates(run, moments, T, net.weight_decay, density, net)
                 for name, run in balance_runs.items() if name != "gradient_flow"}
        flow = balance_runs["gradient_flow"].imbalance[:, 0, :]
        balance = {**{key: rates["sgd"][0][key] for key in
                      ("measured", "measured_se", "predicted", "predicted_discrete",
                       "predicted_stationary")},
                   "pairs": rates["sgd"], "sde": rates.get("sde"),
                   "gradient_flow_max_relative_change": float(np.max(np.abs(flow / flow[0] - 1)))}

    summary: dict[str, Any] = {
        "experiment": "balance",
        "reference": "Ziyin, Li, Ueda, arXiv 2308.06671",
        "config": asdict(config),
        "moments": moments.as_dict(),
        "T": T, "lr": lr, "batch": config.batch,
        "T_c": theory.critical_temperature(moments, net.depth, net.weight_decay),
        "regime": regime,
        "tail_exponent": theory.tail_exponent(net.depth, moments, T, net.width,
                                              net.weight_decay),
        "time": float(runs["sgd"].times[-1]), "steps": int(steps),
        "density": _density_summary(density),
        "predicted_mean": density.mean if density else None,
        "predicted_variance": density.variance if density else None,
        "measured_histogram": results["sgd"]["histogram"],
        "distance": results["sgd"]["distance"],
        "sgd": results["sgd"],
        "sde": results.get("sde"),
        "balance_rate": balance,
        "runtime_s": time.perf_counter() - start,
    }
    if out_dir is not None:
        out = Path(out_dir)
        write_summary(out, summary)
        np.savez_compressed(out / "samples.npz", **{
            f"{name}_{key}": value for name, run in {**runs, **{
                f"balance_{k}": r for k, r in balance_runs.items()}}.items()
            for key, value in (("times", run.times), ("v", run.v),
                               ("imbalance", run.imbalance))})
        plot_density(summary, density, out)
        if balance_runs:
            plot_balance(balance_runs, summary, moments, out)
    return summary


def _density_summary(density: theory.StationaryDensity | None) -> dict[str, Any] | None:
    """The density on at most ``DENSITY_POINTS`` grid points inside its 1e-7..1-1e-7 quantiles."""
    if density is None:
        return None
    inside = np.flatnonzero((density.cdf > 1e-7) & (density.cdf < 1 - 1e-7))
    pick = inside[np.unique(np.linspace(0, inside.size - 1, DENSITY_POINTS).astype(int))]
    return {"label": density.label, "v": density.v[pick], "pdf": density.pdf[pick]}


# --- figures ---------------------------------------------------------------------------------

def draw_density_panel(ax: "plt.Axes", summary: dict[str, Any]) -> None:
    """Histograms of SGD (and SDE) with the predicted density and the KS distances."""
    for name, colour in (("sgd", "C0"), ("sde", "C1")):
        result = summary.get(name)
        if result is None:
            continue
        h = result["histogram"]
        dist = result["distance"]
        label = name.upper() + (f", KS {dist['value']:.4f} (crit. {dist['critical']:.4f})"
                                if dist else "")
        ax.stairs(h["density"], h["edges"], color=colour, label=label, lw=1.2)
    density = summary["density"]
    if density is not None:
        ax.plot(density["v"], density["pdf"], "k-", lw=1, label="theory")
    hist = summary["sgd"]["histogram"]
    ax.set_xlim(hist["edges"][0], hist["edges"][-1])
    ax.set_ylim(0, 1.3 * max(np.max(summary[name]["histogram"]["density"])
                             for name in ("sgd", "sde") if summary.get(name)))
    config = summary["config"]
    ax.set_title(f"D = {config['depth']}, d = {config['width']}, T = {summary['T']:g}"
                 f"  (T_c = {summary['T_c']:.3g})", fontsize=9)
    ax.set_xlabel("v")
    ax.set_ylabel("p(v)")
    ax.legend(fontsize=7)


def plot_density(summary: dict[str, Any], density: theory.StationaryDensity | None,
                 out: Path) -> None:
    fig, ax = plt.subplots(figsize=(5, 3.6))
    draw_density_panel(ax, summary)
    save_figure(fig, out, "density")


def plot_balance(runs: dict[str, BalanceRun], summary: dict[str, Any], moments: DataMoments,
                 out: Path) -> None:
    """Mean ``log|u_k^2 - u_{k+1}^2|`` against time, with the law of balance along the SGD paths."""
    fig, ax = plt.subplots(figsize=(5, 3.6))
    styles = {"sgd": "C0-", "sde": "C1--", "gradient_flow": "k:"}
    T, gamma = summary["T"], summary["config"]["weight_decay"]
    for name, run in runs.items():
        ok = ~run.diverged
        for k in range(run.imbalance.shape[2]):
            y = np.mean(np.log(np.abs(run.imbalance[:, ok, k])), axis=1)
            ax.plot(run.times, y - y[0], styles[name], lw=1.2,
                    label=f"{name.replace('_', ' ')}" + (f", layers {k},{k + 1}"
                                                         if run.imbalance.shape[2] > 1 else ""))
            if name == "sgd":
                path = theory.predicted_log_imbalance(moments, T, gamma, run.integrals[:, ok, k],
                                                      run.times[:, None])
                ax.plot(run.times, path.mean(axis=1), color="grey", lw=3, alpha=0.4,
                        label="law of balance along the SGD paths" if k == 0 else None)
    ax.set_xlabel("time (lr x steps)")
    ax.set_ylabel("mean log|u_k^2 - u_{k+1}^2| - initial")
    ax.set_title(f"law of balance, D = {summary['config']['depth']}, T = {summary['T']:g}",
                 fontsize=9)
    ax.legend(fontsize=7)
    save_figure(fig, out, "balance")


# --- command line ----------------------------------------------------------------------------

def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "balance", help="noise balance and stationary distribution of a diagonal linear net "
                        "(Ziyin, Li, Ueda)")
    p.add_argument("--depth", type=int, default=1, help="D >= 0: layers per path minus one")
    p.add_argument("--width", type=int, default=1, help="d >= 1 parallel paths")
    p.add_argument("--T", type=float, default=None, help="temperature lr/batch (or give --lr)")
    p.add_argument("--lr", type=float, default=None, help="learning rate (T = lr / batch)")
    p.add_argument("--batch", type=int, default=1, help="batch size S")
    p.add_argument("--weight-decay", type=float, default=0.0,
                   help="gamma in the loss (vx - y)^2 + gamma |theta|^2")
    p.add_argument("--slope", type=float, default=1.0, help="teacher slope k in y = k x + eps")
    p.add_argument("--noise-std", type=float, default=1.0, help="std of the label noise eps")
    p.add_argument("--x-std", type=float, default=0.1, help="std of the input x")
    p.add_argument("--data", default=None,
                   help="file of pairs x y (.npz with x, y; or two columns) instead of the teacher")
    p.add_argument("--replicas", type=int, default=10_000, help="independent SGD runs")
    p.add_argument("--time", type=float, default=None,
                   help="duration in units of lr x steps (default 40 relaxation times)")
    p.add_argument("--records", type=int, default=20, help="snapshots along the run")
    p.add_argument("--balance-replicas", type=int, default=2_000,
                   help="replicas of the imbalance-decay runs")
    p.add_argument("--imbalance", type=float, default=0.5,
                   help="initial log-ratio of the outer layer magnitudes in those runs")
    p.add_argument("--no-sde", dest="sde", action="store_false",
                   help="skip the SDE comparison runs")
    p.add_argument("--tol", type=float, default=0.003,
                   help="step control of the SDE integrator (weak error O(tol))")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.set_defaults(func=run_command)


def run_command(args: argparse.Namespace) -> int:
    names = {f.name for f in BalanceConfig.__dataclass_fields__.values()}
    config = BalanceConfig(**{k: v for k, v in vars(args).items() if k in names})
    config.validate()
    summary = run_balance(config, args.out)
    dist = summary["distance"]
    print(f"T = {summary['T']:g}, T_c = {summary['T_c']:.4g}; "
          + (f"KS distance {dist['value']:.4f} (critical {dist['critical']:.4f}, n = {dist['n']})"
             if dist else summary["regime"]))
    if summary["balance_rate"]:
        b = summary["balance_rate"]
        print(f"balance rate measured {b['measured']:.4g} +- {b['measured_se']:.2g}, "
              f"predicted {b['predicted']:.4g}")
    print(f"wrote {args.out}/summary.json")
    return 0


# --- reproductions ---------------------------------------------------------------------------

#: Data of the density and inversion figures: T_c = 0.98, and lr = T keeps SGD close to its
#: SDE at small T (lr beta_1 = T / 100).
FIGURE_DATA = {"slope": 1.0, "noise_std": 1.0, "x_std": 0.1}
#: Data of the tail figure: the noise crossover sqrt(alpha_3/alpha_1) ~ the minimiser, so the
#: power law sets in within a decade of the bulk.
TAIL_DATA = {"slope": 1.0, "noise_std": 0.5, "x_std": 1.0}


def reproduce_densities(out_dir: Path, seed: int) -> dict[str, Any]:
    """Densities of ``v`` for ``D = 0, 1`` at ``T = 0.05, 0.5`` with SGD and SDE histograms."""
    out_dir = Path(out_dir)
    fig, axes = plt.subplots(2, 2, figsize=(10, 7))
    cases: dict[str, Any] = {}
    for ax, (depth, T) in zip(axes.flat, [(D, T) for D in (0, 1) for T in (0.05, 0.5)]):
        name = f"D{depth}_T{T:g}"
        s = run_balance(BalanceConfig(depth=depth, T=T, seed=seed, **FIGURE_DATA), out_dir / name)
        draw_density_panel(ax, s)
        cases[name] = {"depth": depth, "T": T, "T_c": s["T_c"], "distance": s["distance"],
                       "sde_distance": s["sde"]["distance"],
                       "predicted_variance": s["predicted_variance"],
                       "sgd_variance": s["sgd"]["variance"], "sde_variance": s["sde"]["variance"]}
    save_figure(fig, out_dir, "densities")
    summary = {"reproduction": "ziyin-densities", "seed": seed, "data": FIGURE_DATA,
               "cases": cases}
    write_summary(out_dir, summary)
    return summary


def measure_variance(run: BalanceRun, burn_in: int) -> dict[str, float]:
    """Stationary ``Var v`` from the records after ``burn_in``, SE from independent replicas.

    Each replica gives time averages ``m1_r, m2_r`` of ``v, v^2``; ``Var = <m2> - <m1>^2``,
    and its standard error is that of ``m2_r - 2 <m1> m1_r`` (delta method).
    """
    v = run.v[burn_in:, ~run.diverged]
    m1, m2 = v.mean(axis=0), (v**2).mean(axis=0)
    mean = m1.mean()
    z = m2 - 2.0 * mean * m1
    return {"variance": float(m2.mean() - mean**2), "variance_se": float(segment_mean(z).stderr)}


def measure_growth_rate(run: BalanceRun) -> dict[str, float]:
    """Rate of ``log|v|`` between the first and last record, mean and SE over replicas."""
    ok = ~run.diverged
    rate = np.log(np.abs(run.v[-1, ok] / run.v[0, ok])) / (run.times[-1] - run.times[0])
    est = segment_mean(rate)
    return {"rate": float(est.value), "rate_se": float(est.stderr)}


def critical_temperature_fit(temperatures: np.ndarray, rates: np.ndarray, ses: np.ndarray
                             ) -> dict[str, float]:
    """Zero of a weighted straight-line fit ``rate = a + b T``, with its delta-method SE."""
    X = np.column_stack([np.ones_like(temperatures), temperatures])
    W = 1.0 / ses**2
    cov = np.linalg.inv(X.T @ (W[:, None] * X))
    a, b = cov @ X.T @ (W * rates)
    T_c = -a / b
    grad = np.array([-1.0 / b, a / b**2])
    return {"T_c": float(T_c), "T_c_se": float(math.sqrt(grad @ cov @ grad))}


def reproduce_inversion(out_dir: Path, seed: int, replicas: int = 2000) -> dict[str, Any]:
    """Fluctuation inversion (``Var v`` against ``T``) and the critical temperature, ``D = 1``.

    ``Var v`` from time averages of SGD and SDE runs next to the theory for ``D = 0, 1, 2``;
    ``T_c`` from the growth rate of ``log v`` started at ``v = 1e-20``: the SDE against
    ``4 beta_2 - 4 T alpha_3``, SGD (``lr = T``) against its finite-lr counterpart.
    """
    out_dir = Path(out_dir)
    data = TeacherStream(**FIGURE_DATA)
    moments = data.moments
    net = DiagonalNetwork(1)
    T_c = theory.critical_temperature(moments, 1)
    seeds = iter(np.random.SeedSequence(seed).generate_state(64))
    grid = np.linspace(0.01, 1.2, 120) * T_c
    curves = {f"D{D}": theory.stationary_variance(moments, D, grid) for D in (0, 1, 2)}
    v_star = minimiser(moments, net)
    duration, burn_in, records = 5000.0, 1500.0, 100  # mixing time ~500 at 0.8 T_c
    sim_T = np.array([0.1, 0.3, 0.5, 0.65, 0.8]) * T_c
    points: dict[str, list[dict[str, float]]] = {"sgd": [], "sde": []}
    theta0 = net.balanced(np.full(replicas, v_star))
    for T in sim_T:
        steps = round(duration / T)
        sgd = simulate_sgd(net, data, T, 1, theta0, steps, steps // records, int(next(seeds)))
        sde = simulate_sde(net, moments, T, theta0, sgd.times, 0.003, seed=int(next(seeds)))
        first = int(np.searchsorted(sgd.times, burn_in))
        for name, run in (("sgd", sgd), ("sde", sde)):
            points[name].append({"T": float(T), **measure_variance(run, first)})
    # critical temperature from the growth rate of log v near v = 0
    crit_T = np.array([0.85, 0.95, 1.05, 1.15]) * T_c
    theta_small = net.balanced(np.full(replicas, 1e-20))
    growth: dict[str, list[dict[str, float]]] = {"sgd": [], "sde": []}
    x, y = data.draw(np.random.default_rng(int(next(seeds))), (2_000_000,))
    G0 = -2.0 * x * y
    for T in crit_T:
        steps = round(400.0 / T)
        sgd = simulate_sgd(net, data, T, 1, theta_small, steps, steps, int(next(seeds)))
        sde = simulate_sde(net, moments, T, theta_small, [0.0, 400.0], 0.001,
                           seed=int(next(seeds)))
        growth["sgd"].append({"T": float(T), **measure_growth_rate(sgd),
                              "predicted": theory.sgd_growth_rate_at_origin(G0, T)})
        growth["sde"].append({"T": float(T), **measure_growth_rate(sde),
                              "predicted": theory.growth_rate_at_origin(moments, T)})
    fits = {name: critical_temperature_fit(np.array([r["T"] for r in rows]),
                                           np.array([r["rate"] for r in rows]),
                                           np.array([r["rate_se"] for r in rows]))
            for name, rows in growth.items()}
    lr_grid = np.linspace(0.8, 1.2, 41) * T_c
    sgd_curve = np.array([theory.sgd_growth_rate_at_origin(G0, T) for T in lr_grid])
    sign = np.flatnonzero(np.diff(np.sign(sgd_curve)))
    sgd_T_c = float(np.interp(0.0, sgd_curve[sign[0]:sign[0] + 2][::-1],
                              lr_grid[sign[0]:sign[0] + 2][::-1])) if sign.size else None

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    for (name, curve), style in zip(curves.items(), ("C2:", "k-", "C3--")):
        ax1.plot(grid, curve, style, lw=1.2, label=f"theory {name}")
    for name, marker in (("sgd", "o"), ("sde", "s")):
        rows = points[name]
        ax1.errorbar([r["T"] for r in rows], [r["variance"] for r in rows],
                     [Z_CRIT * r["variance_se"] for r in rows], fmt=marker, ms=4,
                     label=f"{name.upper()}, D1")
    ax1.axvline(T_c, color="grey", lw=0.8)
    ax1.set(xlabel="T = lr / S", ylabel="Var v", ylim=(0, 1.2 * max(curves["D1"].max(), 0.1)),
            title=f"fluctuation inversion (T_c = {T_c:.3f})")
    ax1.legend(fontsize=7)
    ax2.plot(lr_grid, [theory.growth_rate_at_origin(moments, T) for T in lr_grid], "k-",
             label="SDE theory 4 beta_2 - 4 T alpha_3")
    ax2.plot(lr_grid, sgd_curve, "C0--", label="SGD, lr = T (finite-lr)")
    for name, marker in (("sgd", "o"), ("sde", "s")):
        rows = growth[name]
        ax2.errorbar([r["T"] for r in rows], [r["rate"] for r in rows],
                     [Z_CRIT * r["rate_se"] for r in rows], fmt=marker, ms=4,
                     label=f"{name.upper()}: T_c = {fits[name]['T_c']:.3f} +- "
                           f"{fits[name]['T_c_se']:.3f}")
    ax2.axhline(0, color="grey", lw=0.8)
    ax2.axvline(T_c, color="grey", lw=0.8)
    ax2.set(xlabel="T", ylabel="growth rate of log v at v -> 0", title="phase transition")
    ax2.legend(fontsize=7)
    save_figure(fig, out_dir, "inversion")
    summary = {"reproduction": "ziyin-inversion", "seed": seed, "data": FIGURE_DATA,
               "moments": moments.as_dict(), "T_c": T_c, "replicas": replicas,
               "variance_theory": {"T": grid, **curves}, "variance_measured": points,
               "growth_rate": growth, "T_c_measured": fits, "T_c_sgd_finite_lr": sgd_T_c}
    write_summary(out_dir, summary)
    return summary


def tail_fit(samples: np.ndarray, low: float, high: float) -> dict[str, float]:
    """Exponent of ``|v|^e`` on ``[low, high]`` from samples (n_times, R), SE over replicas.

    Samples of one replica are correlated in time; the replicas are independent, so the
    standard error of ``mean log|v|`` is that of a ratio estimator over replicas.
    """
    s = np.abs(samples)
    inside = (s >= low) & (s <= high)
    logs = np.where(inside, np.log(np.where(inside, s, 1.0)), 0.0)
    S_r, N_r = logs.sum(axis=0), inside.sum(axis=0)
    n = int(N_r.sum())
    if n < 10:
        return {"n": n, "exponent": None, "exponent_se": None}
    mean_log = S_r.sum() / n
    R = s.shape[1]
    se_mean_log = math.sqrt(R / (R - 1) * np.sum((S_r - mean_log * N_r) ** 2)) / n
    e, info = theory.truncated_power_law_mle(mean_log, low, high)
    return {"n": n, "exponent": e, "exponent_se": se_mean_log / info}


def reproduce_tail(out_dir: Path, seed: int, replicas: int = 2000) -> dict[str, Any]:
    """Tails of the stationary density on log-log axes, ``D = 1, 2``, and the infinite-depth limit.

    SDE samples pooled over time after burn-in; the exponent fitted on a window is compared
    with the same fit applied to the density, and with the asymptote ``-5 + 3/(D+1)``.
    """
    out_dir = Path(out_dir)
    moments = TeacherStream(**TAIL_DATA).moments
    T = 0.6 * theory.critical_temperature(moments, 1)
    low, high = 3.0, 30.0
    seeds = iter(np.random.SeedSequence(seed).generate_state(8))
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.9))
    depths: dict[str, Any] = {}
    for ax, depth in zip(axes, (1, 2)):
        net = DiagonalNetwork(depth)
        density = theory.stationary_density(moments, depth, T)
        times = np.linspace(10.0, 210.0, 401)
        run = simulate_sde(net, moments, T, net.balanced(np.full(replicas, 1.0)), times, 0.01,
                           seed=int(next(seeds)))
        samples = run.v[1:]
        fit = tail_fit(samples, low, high)
        expected = theory.windowed_power_law_exponent(density, low, high)
        asymptote = theory.tail_exponent(depth)
        pooled = np.abs(samples.ravel())
        edges = np.logspace(-2, 2.5, 60)
        counts, _ = np.histogram(pooled, bins=edges)
        ax.loglog(0.5 * (edges[1:] + edges[:-1]), counts / (pooled.size * np.diff(edges)), "C1o",
                  ms=3, label="SDE samples")
        ax.loglog(np.abs(density.v), density.pdf, "k-", lw=1, label="theory")
        anchor = np.searchsorted(np.abs(density.v), 300.0)
        ref = density.pdf[anchor] * (np.abs(density.v) / np.abs(density.v[anchor])) ** asymptote
        ax.loglog(np.abs(density.v), ref, "C3--", lw=1, label=f"|v|^{asymptote:g}")
        ax.axvspan(low, high, color="grey", alpha=0.15)
        ax.set(xlim=(1e-2, 1e3), ylim=(1e-9, 10), xlabel="|v|", ylabel="p(v)",
               title=f"D = {depth}, T = {T:.3f}: fit {fit['exponent']:.2f} +- "
                     f"{fit['exponent_se']:.2f} vs {expected:.2f}")
        ax.legend(fontsize=7)
        depths[f"D{depth}"] = {"fit": fit, "window": [low, high], "expected_window": expected,
                               "asymptote": asymptote, "pooled_samples": int(pooled.size)}
    tau = 0.3
    limit = theory.infinite_depth_density(moments, tau)
    convergence = {}
    for depth in (1, 2, 5, 20, 100):
        d = theory.stationary_density(moments, depth, tau / depth)
        axes[2].loglog(np.abs(d.v), d.pdf, lw=1, label=f"D = {depth}")
        convergence[depth] = float(np.max(np.abs(d.cdf_at(limit.v) - limit.cdf)))
    axes[2].loglog(np.abs(limit.v), limit.pdf, "k--", lw=1.5, label="D = inf")
    axes[2].set(xlim=(1e-2, 1e3), ylim=(1e-9, 10), xlabel="|v|",
                title=f"infinite depth at T D / d = {tau}")
    axes[2].legend(fontsize=7)
    save_figure(fig, out_dir, "tail")
    summary = {"reproduction": "ziyin-tail", "seed": seed, "data": TAIL_DATA,
               "moments": moments.as_dict(), "T": T, "replicas": replicas, "depths": depths,
               "infinite_depth": {"tau": tau, "sup_cdf_distance_to_limit": convergence}}
    write_summary(out_dir, summary)
    return summary


def reproduce_balance(out_dir: Path, seed: int) -> dict[str, Any]:
    """Law of balance for ``D = 2``: imbalance decay of SGD and the SDE, conservation by
    gradient flow."""
    return run_balance(BalanceConfig(depth=2, T=0.2, seed=seed, **FIGURE_DATA), Path(out_dir))


REPRODUCTIONS = {
    "ziyin-densities": Reproduction(
        "Ziyin et al. 2308.06671: p(v) for D = 0, 1 at T = 0.05, 0.5 vs SGD/SDE histograms",
        reproduce_densities),
    "ziyin-inversion": Reproduction(
        "Ziyin et al. 2308.06671: Var v against T (fluctuation inversion) and T_c, D = 1",
        reproduce_inversion),
    "ziyin-tail": Reproduction(
        "Ziyin et al. 2308.06671: tails |v|^(-5+3/(D+1)) on log-log axes, infinite depth",
        reproduce_tail),
    "ziyin-balance": Reproduction(
        "Ziyin et al. 2308.06671: law of balance, imbalance decay vs gradient-flow conservation",
        reproduce_balance),
}
