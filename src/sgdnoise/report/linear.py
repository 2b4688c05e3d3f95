"""Result folders of ``sgdnoise linear``, ``sgdnoise demo`` and the Kühn & Rosenow reproductions.

A linear run's folder:

``summary.json``
    schema in the README;
``arrays.npz``
    full-resolution arrays (:data:`sgdnoise.experiments.linear.run.ARRAY_DOCS`);
``fluctuations.png/.pdf``
    Var theta_i, Var v_i and tau_i against the Hessian eigenvalue, measured with
    ±2 s.e. and every theory that applies;
``noise_autocorrelation.png/.pdf``
    tr cov(dg_k, dg_{k+h}) / tr C by lag, measured and Kühn & Rosenow eq. 2;
``trajectory_noise.png/.pdf``
    the noise along the trajectory split at w* (:mod:`sgdnoise.report.trajectory_noise`).

A comparison of samplers (demo, reproductions) holds one such folder per sampler
and the two figures with both samplers overlaid.
"""
from __future__ import annotations

from typing import Any

from sgdnoise.experiments.linear.demo import SamplerComparison
from sgdnoise.experiments.linear.reproductions import var_theta_ratio
from sgdnoise.experiments.linear.run import ARRAY_DOCS, LinearResult
from sgdnoise.report.fluctuations import FluctuationSeries, plot_fluctuations
from sgdnoise.report.folder import ResultFolder
from sgdnoise.report.terminal import print_written
from sgdnoise.theory.noise import noise_kernel
from sgdnoise.report.noise_autocorrelation import AutocorrelationSeries, plot_noise_autocorrelation
from sgdnoise.report.trajectory_noise import plot_trajectory_noise, print_trajectory_noise

#: Theories drawn on the figures of a sampler comparison (the full set stays in each run's own figure).
COMPARISON_METHODS = ("kuehn-rosenow", "exact", "anticorrelated", "epoch")


def _series(result: LinearResult) -> FluctuationSeries:
    m = result.measured
    return FluctuationSeries(m.hessian_eigenvalues, m.var_theta, m.var_v, m.tau)


def _autocorrelation(result: LinearResult) -> AutocorrelationSeries | None:
    if result.autocorrelation is None:
        return None
    M = result.problem.n_examples // result.simulation.batch_size
    trace = result.autocorrelation.trace
    label = "theory" + (f" (M = {M})" if result.sampling == "epoch" else "")
    return AutocorrelationSeries.from_trace(trace, noise_kernel(result.sampling, M, trace.value.size - 1), label)


def _split_panels(runs: dict[str, LinearResult]) -> dict[str, tuple]:
    """(trajectory noise, M) of each run that measured it."""
    return {s: (r.trajectory_noise, r.problem.n_examples // r.simulation.batch_size)
            for s, r in runs.items() if not isinstance(r.trajectory_noise, str)}


def _drawable(result: LinearResult) -> bool:
    """A run whose measured fluctuations mean something: measured steps and no divergence."""
    return result.measured.steps_measured > 0 and result.measured.diverged_at is None


def settings_footer(result: LinearResult) -> str:
    """The run's settings in one line, for the figure footer."""
    c, source = result.simulation, result.problem.source
    problem = ", ".join(f"{k} = {source[k]}" for k in ("kind", "N", "P", "label_noise", "path") if k in source)
    return (f"{problem}; lr = {c.lr:g}, S = {c.batch_size}, beta = {c.momentum:g}; {c.replicas} replicas x "
            f"{result.measured.steps_measured} measured steps after {c.burn_in} burn-in; seed {c.seed}; "
            "error bars ±2 standard errors over independent segments")


def _title(runs: dict[str, LinearResult]) -> str:
    title = "Stationary fluctuations along Hessian eigendirections"
    stopped = [f"{s}: {r.measured.steps_measured} of {r.simulation.steps} steps" for s, r in runs.items()
               if r.measured.interrupted_at is not None]
    return title + (f" (interrupted; {', '.join(stopped)})" if stopped else "")


def save_linear(result: LinearResult, folder: ResultFolder) -> None:
    """Write one run: arrays, its two figures, then summary.json.

    The fluctuation figure is left out for a run that diverged or measured nothing
    (summary.json says why); an interrupted run's figure says so in its title.
    """
    folder.write_arrays("arrays.npz", result.arrays(), ARRAY_DOCS)
    summary = result.to_summary()
    if _drawable(result):
        plot_fluctuations(folder, {result.sampling: _series(result)}, {result.sampling: result.theory_curves()},
                          result.theory.get("markers"), title=_title({result.sampling: result}),
                          footer=settings_footer(result))
    else:
        summary["figures_not_drawn"] = {"fluctuations.png": result.status}
    autocorrelation = _autocorrelation(result)
    if autocorrelation is not None:
        plot_noise_autocorrelation(folder, {result.sampling: autocorrelation})
    if panels := _split_panels({result.sampling: result}):
        plot_trajectory_noise(folder, panels, settings_footer(result))
    folder.write_summary(summary)


def save_comparison(comparison: SamplerComparison, folder: ResultFolder, name: str = "fluctuations",
                    extra: dict[str, Any] | None = None) -> None:
    """Write each sampler's folder, the overlaid figures and a summary pointing to the runs."""
    for sampling, result in comparison.runs.items():
        save_linear(result, folder.subfolder(sampling, f"the full `sgdnoise linear` result of {sampling}"))
    measured = {s: r for s, r in comparison.runs.items() if _drawable(r)}
    not_drawn = {s: r.status for s, r in comparison.runs.items() if s not in measured}
    if measured:
        theories = {s: {m: v for m, v in r.theory_curves().items() if m in COMPARISON_METHODS}
                    for s, r in measured.items()}
        plot_fluctuations(folder, {s: _series(r) for s, r in measured.items()}, theories,
                          comparison.markers, name=name, title=_title(measured)
                          + (f"\nnot shown: {', '.join(not_drawn)} (see summary.json)" if not_drawn else ""),
                          footer=settings_footer(next(iter(measured.values()))))
    autocorrelations = {s: a for s, r in comparison.runs.items() if (a := _autocorrelation(r)) is not None}
    if autocorrelations:
        plot_noise_autocorrelation(folder, autocorrelations)
    first = next(iter(comparison.runs.values()))
    if panels := _split_panels(comparison.runs):
        plot_trajectory_noise(folder, panels, settings_footer(first))
    folder.write_summary({
        "status": comparison.status,
        "config": {"experiment": "demo", "settings": comparison.settings, "problem": first.problem.source,
                   "samplers": list(comparison.runs)},
        "runs": {s: f"{s}/summary.json" for s in comparison.runs},
        **({"figures_not_drawn": {f"{name}.png": not_drawn}} if not_drawn else {}),
        **(extra or {}),
    })


def save_kuehn_rosenow(comparison: SamplerComparison, folder: ResultFolder, name: str) -> None:
    """A Kühn & Rosenow reproduction: the comparison plus the crossover numbers."""
    first = next(iter(comparison.runs.values()))
    save_comparison(comparison, folder, name.replace("-", "_"), {
        "hessian_eigenvalues": first.measured.hessian_eigenvalues,
        "lambda_cross": comparison.markers.get("lambda_cross"),
        "tau_sgd": comparison.markers.get("tau_SGD"),
        "var_theta_ratio_epoch_over_with_replacement": var_theta_ratio(comparison),
        "comparison": {s: r.theory.get("comparison") for s, r in comparison.runs.items()},
        "note": {s: r.theory.get("note") for s, r in comparison.runs.items()},
    })


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
    if any(c.get("directions_compared") == 0 for c in block["comparison"].values()):
        print("  max|z| dirs is '-': no direction equilibrated, so none was compared one by one "
              "(the trace still sums all directions)")


def print_equilibration(label: str, result: LinearResult) -> None:
    """Say how many directions equilibrated and what burn-in and steps would equilibrate all."""
    m = result.measured
    if not m.steps_measured or m.diverged_at is not None or m.equilibrated.all():
        return
    need = result.equilibration_needed()
    advice = ("some directions are flat and never relax" if need is None else
              f"--burn-in {need[0]} and --steps {need[1]} would equilibrate all")
    print(f"  {label}: {int(m.equilibrated.sum())} of {m.equilibrated.size} directions equilibrated "
          f"(burn-in >= 10 and measurement >= 50 relaxation times); the others are left out of "
          f"max|z| and may still carry the start at w*: {advice}")


def show_linear(result: LinearResult, folder: ResultFolder) -> None:
    print_comparison(result.sampling, result.theory)
    print_equilibration(result.sampling, result)
    print_trajectory_noise(result.sampling, result.trajectory_noise)
    print_written(folder, result.status)


def show_comparison(comparison: SamplerComparison, folder: ResultFolder) -> None:
    for sampling, result in comparison.runs.items():
        print_comparison(sampling, result.theory)
        print_equilibration(sampling, result)
        print_trajectory_noise(sampling, result.trajectory_noise)
    print_written(folder, comparison.status)
