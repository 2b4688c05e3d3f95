"""``sgdnoise linear``: SGD on linear regression, measured and held against theory.

config -> problem (teacher-student or .npz) -> simulation (streaming statistics)
-> measurements (noise covariance, noise autocorrelation) -> theory -> folder:

``summary.json``
    schema in the README;
``arrays.npz``
    full-resolution arrays (see :data:`ARRAY_DOCS`);
``fluctuations.png/.pdf``
    var_theta, var_v and tau against Hessian eigenvalue, measured with error
    bars and every theory that applies;
``noise_autocorrelation.png/.pdf``
    tr cov(dg_k, dg_{k+h}) / tr C by lag, measured and Kuehn-Rosenow eq. 2.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from sgdnoise.sampling import SAMPLINGS, Sampler
from sgdnoise.dynamics.simulator import BACKENDS, SimulationConfig, SimulationResult, simulate
from sgdnoise.errors import UsageError
from sgdnoise.experiments.comparison import noise_covariance_at_minimum, theory_block
from sgdnoise.measure.gradient_noise import NoiseAutocorrelation, noise_autocorrelation
from sgdnoise.problems.linear import LinearRegression, QuadraticProblem
from sgdnoise.report.figures import plt, save_figure
from sgdnoise.report.summary import write_summary
from sgdnoise.theory.noise import noise_kernel

FULL_COVARIANCE_MAX_DIM = 2000
METHOD_STYLES = {"exact": "-", "kuehn-rosenow": "--", "anticorrelated": (0, (5, 1, 1, 1)),
                 "continuum": ":", "discrete": "-.", "detailed-balance": (0, (1, 3))}
ARRAY_DOCS = {
    "hessian_eigenvalues": "(d,) ascending",
    "var_theta, var_theta_stderr, var_v, var_v_stderr, tau, tau_stderr":
        "(d,) per Hessian eigendirection, same order",
    "weight_covariance": "(d, d) stationary covariance of w - w* in the Hessian eigenbasis (d <= 2000)",
    "v_autocovariance, v_autocovariance_stderr": "(max_lag + 1, d) cov(v_t, v_{t+h}) per eigendirection",
    "noise_covariance_eigenvalues": "(d,) ascending, one-step noise covariance C at w*",
    "snapshots": "(n, R, d) w - w* in the Hessian eigenbasis every --snapshot-every measured steps",
    "noise_autocorrelation_trace, noise_autocorrelation_trace_stderr":
        "(max_lag + 1,) tr cov(dg_k, dg_{k+h}) measured at w*",
}


def add_simulation_arguments(p: argparse.ArgumentParser, *, lr: float, batch: int, momentum: float,
                             steps: int, burn_in: int, replicas: int) -> None:
    """Options shared by every command that runs the simulator."""
    g = p.add_argument_group("SGD")
    g.add_argument("--lr", type=float, default=lr, help="learning rate (default %(default)s)")
    g.add_argument("--batch", type=int, default=batch, help="batch size S (default %(default)s)")
    g.add_argument("--momentum", type=float, default=momentum, help="heavy-ball momentum beta in [0, 1)")
    g.add_argument("--steps", type=int, default=steps, help="measured steps per replica")
    g.add_argument("--burn-in", type=int, default=burn_in, help="steps before measuring")
    g.add_argument("--replicas", type=int, default=replicas, help="independent replicas run together")
    g.add_argument("--seed", type=int, default=0, help="random seed (same seed, same numbers)")
    g.add_argument("--backend", choices=BACKENDS, default="numpy",
                   help="numpy (numba-compiled, CPU) or torch (CPU or CUDA)")
    g.add_argument("--device", default="cpu", help="torch device, e.g. cuda (with --backend torch)")
    g.add_argument("--max-lag", type=int, default=30, help="largest lag of the autocorrelations")
    g.add_argument("--snapshot-every", type=int, default=0,
                   help="keep w - w* (Hessian eigenbasis) every this many measured steps in arrays.npz")
    g.add_argument("--out", type=Path, required=True, help="output folder")
    g.add_argument("--no-progress", action="store_true", help="hide progress bars")


def add_problem_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("problem (teacher-student unless --data is given)")
    g.add_argument("--N", type=int, default=None, help="input dimension (default 100)")
    g.add_argument("--P", type=int, default=None, help="number of examples (default 200)")
    g.add_argument("--label-noise", type=float, default=0.25, help="label-noise variance sigma_eps^2")
    g.add_argument("--outputs", type=int, default=1, help="output dimension K")
    g.add_argument("--data", type=Path, default=None, help=".npz with X (P x N) and y (P or P x K)")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("linear", help="SGD on linear regression: measure and predict fluctuations",
                              description=__doc__.splitlines()[0])
    add_problem_arguments(p)
    p.add_argument("--sampling", default="with-replacement",
                   help=f"one of {', '.join(SAMPLINGS)}")
    add_simulation_arguments(p, lr=0.1, batch=10, momentum=0.0, steps=20_000, burn_in=2_000, replicas=16)
    p.set_defaults(func=run_command)


def problem_from_args(args: argparse.Namespace) -> LinearRegression:
    """The data set the arguments describe (validated)."""
    if args.data is not None:
        return LinearRegression.from_npz(args.data, args.N, args.P)
    return LinearRegression.teacher_student(100 if args.N is None else args.N,
                                            200 if args.P is None else args.P, args.label_noise,
                                            outputs=args.outputs, seed=args.seed)


def config_from_args(args: argparse.Namespace, sampling: str, problem: QuadraticProblem) -> SimulationConfig:
    """SimulationConfig from the arguments, validated against the problem."""
    if sampling not in SAMPLINGS:
        raise UsageError(f"--sampling must be one of {', '.join(SAMPLINGS)}; got {sampling!r}")
    config = SimulationConfig(
        lr=args.lr, batch_size=args.batch, momentum=args.momentum, sampling=sampling,
        steps=args.steps, burn_in=args.burn_in, replicas=args.replicas, seed=args.seed,
        backend=args.backend, device=args.device, max_lag=args.max_lag,
        full_covariance=problem.dim <= FULL_COVARIANCE_MAX_DIM, snapshot_every=args.snapshot_every)
    config.validate(problem)
    return config


def run_command(args: argparse.Namespace) -> int:
    problem = problem_from_args(args)
    config = config_from_args(args, args.sampling, problem)
    summary = run_linear(problem, config, args.out, progress=not args.no_progress)
    print_comparison(config.sampling, summary["theory"])
    report_paths(args.out, summary)
    return 1 if summary["status"] != "completed" else 0


def measure_noise(problem: QuadraticProblem, config: SimulationConfig) -> tuple[np.ndarray, NoiseAutocorrelation | None]:
    """Eigenvalues of C at the minimiser, and the noise autocorrelation by lag (not for fixed-order)."""
    C = noise_covariance_at_minimum(problem, config)
    if config.sampling == "fixed-order":
        return np.linalg.eigvalsh(C), None
    sampler = Sampler(config.sampling, problem.n_examples, config.batch_size,
                      max(config.replicas, 10), np.random.default_rng(config.seed + 1))
    M = sampler.epoch_length
    steps = M * max(200, -(-20_000 // M))
    return np.linalg.eigvalsh(C), noise_autocorrelation(problem.per_example_gradients(), sampler, steps,
                                                        config.max_lag)


def fluctuation_summary(result: SimulationResult) -> dict[str, Any]:
    """The ``measured`` block of summary.json."""
    return {
        "var_theta": result.var_theta.value, "var_theta_stderr": result.var_theta.stderr,
        "var_v": result.var_v.value, "var_v_stderr": result.var_v.stderr,
        "tau": result.tau.value, "tau_stderr": result.tau.stderr,
        "mean_theta": result.mean_theta.value, "mean_theta_stderr": result.mean_theta.stderr,
        "loss_excess": result.loss_excess.value, "loss_excess_stderr": result.loss_excess.stderr,
        "steps_measured": result.steps_measured, "segments": result.segments,
    }


def run_linear(problem: QuadraticProblem, config: SimulationConfig, out: Path,
               progress: bool = True) -> dict[str, Any]:
    """Simulate, measure and write the result folder; return the summary."""
    return run_linear_result(problem, config, out, progress)[0]


def run_linear_result(problem: QuadraticProblem, config: SimulationConfig, out: Path,
                      progress: bool = True
                      ) -> tuple[dict[str, Any], SimulationResult, NoiseAutocorrelation | None]:
    """As :func:`run_linear`, also returning the simulation result and the noise autocorrelation."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    noise_eigenvalues, autocorr = measure_noise(problem, config)
    result = simulate(problem, config, progress=progress)
    summary = build_summary(problem, config, result, noise_eigenvalues, autocorr)
    if result.steps_measured:
        summary["theory"] = theory_block(problem, config, result)
    write_arrays(out, result, noise_eigenvalues, autocorr)
    summary["files"] = {"summary.json": "this file", "arrays.npz": ARRAY_DOCS,
                        "fluctuations.png": "var_theta, var_v, tau against Hessian eigenvalue",
                        "noise_autocorrelation.png": "noise autocorrelation by lag"}
    write_summary(out, summary)
    plot_fluctuations({config.sampling: result}, out, {config.sampling: theory_curves(summary["theory"])},
                      summary["theory"].get("markers"))
    if autocorr is not None:
        plot_noise_autocorrelation({config.sampling: autocorr}, {config.sampling: config},
                                   problem, out)
    return summary, result, autocorr


def build_summary(problem: QuadraticProblem, config: SimulationConfig, result: SimulationResult,
                  noise_eigenvalues: np.ndarray, autocorr: NoiseAutocorrelation | None) -> dict[str, Any]:
    status = "completed"
    if result.diverged_at is not None:
        status = (f"diverged at step {result.diverged_at}: weights became non-finite; "
                  f"statistics hold the {result.steps_measured} measured steps before")
    elif result.interrupted_at is not None:
        status = (f"interrupted at step {result.interrupted_at}; statistics hold the "
                  f"{result.steps_measured} measured steps before")
    summary: dict[str, Any] = {
        "status": status,
        "config": {"problem": problem.source, "simulation": asdict(config)},
        "hessian_eigenvalues": result.hessian_eigenvalues,
        "measured": fluctuation_summary(result),
        "noise_covariance_eigenvalues": noise_eigenvalues,
        "theory": {},
    }
    if autocorr is not None:
        summary["measured"]["noise_autocorrelation_trace"] = autocorr.trace.value
        summary["measured"]["noise_autocorrelation_trace_stderr"] = autocorr.trace.stderr
    return summary


def theory_curves(block: dict[str, Any]) -> dict[str, dict[str, np.ndarray]]:
    """The per-method predictions of a ``theory`` block (without markers, comparison, note)."""
    return {name: values for name, values in block.items() if isinstance(values, dict)
            and "var_theta" in values}


def print_comparison(label: str, block: dict[str, Any]) -> None:
    """A table of how far each theory is from the measurement."""
    if not block:
        return
    print(f"{label}: theory vs measurement ({block['note']})")
    if not block["comparison"]:
        return
    print(f"  {'method':18s} {'exact':>5s} {'trace rel.err':>13s} {'trace z':>9s} {'max|z| dirs':>11s}")
    for method, c in block["comparison"].items():
        if "error" in c:
            print(f"  {method:18s} {'yes' if c['exact_here'] else 'no':>5s}  no prediction: {c['error']}")
            continue
        max_z = "-" if c["max_abs_z"] is None else f"{c['max_abs_z']:.1f}"
        print(f"  {method:18s} {'yes' if c['exact_here'] else 'no':>5s} "
              f"{c['trace_relative_error']:>+13.2%} {c['trace_z']:>+9.1f} {max_z:>11s}")


def write_arrays(out: Path, result: SimulationResult, noise_eigenvalues: np.ndarray,
                 autocorr: NoiseAutocorrelation | None, prefix: str = "") -> None:
    arrays: dict[str, np.ndarray] = {
        "hessian_eigenvalues": result.hessian_eigenvalues,
        "noise_covariance_eigenvalues": noise_eigenvalues,
    }
    for name in ("var_theta", "var_v", "tau"):
        est = getattr(result, name)
        arrays[name], arrays[f"{name}_stderr"] = est.value, est.stderr
    if result.covariance is not None:
        arrays["weight_covariance"] = result.covariance
    if result.v_autocovariance is not None:
        arrays["v_autocovariance"] = result.v_autocovariance.value
        arrays["v_autocovariance_stderr"] = result.v_autocovariance.stderr
    if result.snapshots is not None:
        arrays["snapshots"] = result.snapshots
    if autocorr is not None:
        arrays["noise_autocorrelation_trace"] = autocorr.trace.value
        arrays["noise_autocorrelation_trace_stderr"] = autocorr.trace.stderr
    np.savez_compressed(out / f"{prefix}arrays.npz", **arrays)


def plot_fluctuations(results: dict[str, SimulationResult], out: Path,
                      theories: dict[str, dict[str, dict[str, np.ndarray]]] | None = None,
                      markers: dict[str, float] | None = None, name: str = "fluctuations") -> Path:
    """var_theta, var_v and tau against Hessian eigenvalue on log axes, with error bars.

    ``theories[sampling][method]`` holds arrays ``var_theta`` (and optionally
    ``var_v``, ``tau``) to overlay as lines; ``markers`` are vertical lines
    (e.g. ``lambda_cross``) and, for a key starting with ``tau``, horizontal
    lines in the tau panel.
    """
    fig, axes = plt.subplots(1, 3, figsize=(14, 5.2))
    quantities = (("var_theta", r"Var $\theta_i$"), ("var_v", r"Var $v_i$"), ("tau", r"$\tau_i$"))
    for colour, (sampling, res) in zip(plt.rcParams["axes.prop_cycle"].by_key()["color"], results.items()):
        lam = res.hessian_eigenvalues
        for ax, (key, label) in zip(axes, quantities):
            est = getattr(res, key)
            shown = np.isfinite(est.value) & (est.value > 0) & (lam > 0)
            ax.errorbar(lam[shown], est.value[shown], yerr=2 * np.nan_to_num(est.stderr[shown]),
                        fmt="o", ms=3, color=colour, alpha=0.75, label=f"{sampling} (measured, ±2 s.e.)")
            for method, values in ((theories or {}).get(sampling) or {}).items():
                if key in values:
                    order = np.argsort(lam)
                    ax.plot(lam[order], np.asarray(values[key])[order], color=colour,
                            ls=METHOD_STYLES.get(method, "-"), lw=1.2, label=f"{sampling}: {method}")
            if np.any(shown):
                ax.set_xscale("log")
                ax.set_yscale("log")
            ax.set_xlabel(r"Hessian eigenvalue $\lambda_i$")
            ax.set_ylabel(label)
    for key, value in (markers or {}).items():
        for ax in axes:
            if key.startswith("tau"):
                if ax is axes[2]:
                    ax.axhline(value, color="grey", ls=":", lw=1, label=f"{key} = {value:.3g}")
            else:
                ax.axvline(value, color="grey", ls="--", lw=1, label=f"{key} = {value:.3g}")
    handles, labels = axes[0].get_legend_handles_labels()
    extra = [(h, lab) for h, lab in zip(*axes[2].get_legend_handles_labels()) if lab not in labels]
    handles += [h for h, _ in extra]
    labels += [lab for _, lab in extra]
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=7, frameon=False)
    fig.suptitle("Stationary fluctuations along Hessian eigendirections")
    fig.tight_layout(rect=(0, 0.07 + 0.025 * (len(labels) // 4), 1, 1))
    return save_figure(fig, out, name, tight=False)


def plot_noise_autocorrelation(autocorrs: dict[str, NoiseAutocorrelation],
                               configs: dict[str, SimulationConfig], problem: QuadraticProblem,
                               out: Path) -> Path:
    """Measured tr cov(dg_k, dg_{k+h}) / tr C by lag against the kernel of Kuehn & Rosenow eq. 2."""
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for colour, (sampling, ac) in zip(plt.rcParams["axes.prop_cycle"].by_key()["color"], autocorrs.items()):
        config = configs[sampling]
        norm = ac.trace.value[0]
        lags = np.arange(ac.trace.value.size)
        ax.errorbar(lags, ac.trace.value / norm, yerr=2 * ac.trace.stderr / norm, fmt="o", ms=3,
                    color=colour, label=f"{sampling} (measured, ±2 s.e.)")
        M = problem.n_examples // config.batch_size
        ax.plot(lags, noise_kernel(sampling, M, lags[-1]), color=colour, lw=1,
                label=f"{sampling}: theory (M = {M})")
    ax.axhline(0, color="black", lw=0.5)
    ax.set_xlabel("lag h (steps)")
    ax.set_ylabel(r"tr cov($\delta g_k, \delta g_{k+h}$) / tr $C$")
    ax.set_title("Gradient-noise autocorrelation at $w^*$")
    ax.legend(fontsize=8)
    return save_figure(fig, out, "noise_autocorrelation")


def report_paths(out: Path, summary: dict[str, Any]) -> None:
    """Tell the user where the results are (and if the run diverged)."""
    if summary.get("status", "completed") != "completed":
        sys.stderr.write(f"warning: {summary['status']}\n")
    print(f"wrote {out}/summary.json and:")
    for path in sorted(Path(out).iterdir()):
        if path.suffix in (".png", ".npz") or path.is_dir():
            print(f"  {path}{'/' if path.is_dir() else ''}")
