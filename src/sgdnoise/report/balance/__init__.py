"""Report of ``sgdnoise balance`` and its reproductions: figures, arrays, summary, terminal lines.

- :func:`save` / :func:`show`: one ``balance`` run (``density.png``, ``balance.png``,
  ``samples.npz``, ``summary.json``; docs/balance.md);
- :func:`save_densities`, :func:`save_inversion`, :func:`save_tail`, :func:`save_ergodicity`: the reproductions.
"""
from __future__ import annotations

from sgdnoise.experiments.balance import BalanceResult, DensitiesResult
from sgdnoise.report.balance.ergodicity import save_ergodicity
from sgdnoise.report.balance.panels import draw_density_panel, save_balance, save_density
from sgdnoise.report.balance.reproductions import save_inversion, save_tail
from sgdnoise.report.balance.reproductions import save_densities as _save_densities
from sgdnoise.report.folder import ResultFolder
from sgdnoise.report.terminal import print_written

__all__ = ["draw_density_panel", "save", "save_densities", "save_ergodicity", "save_inversion", "save_tail", "show"]

SAMPLES = ("per run (sgd, sde, balance_sgd, balance_sde, balance_gradient_flow): <run>_times (n,), "
           "<run>_v (n, R) the output at the record times, <run>_imbalance (n, R, D) u_k^2 - u_{k+1}^2 of path 0")


def save(result: BalanceResult, folder: ResultFolder) -> None:
    """Write ``samples.npz``, ``density.png``, ``balance.png`` (``D >= 1``) and ``summary.json``.

    A figure that would have empty panels is not drawn; ``figures_not_drawn`` says why.
    """
    folder.write_arrays("samples.npz", result.arrays(), SAMPLES)
    not_drawn = {}
    reason = save_density(result, folder)
    if reason is not None:
        not_drawn["density.png"] = reason
    if result.balance is not None and any((~r.diverged).any() for r in result.balance_runs.values()):
        save_balance(result, folder)
    elif result.config.depth >= 1:
        not_drawn["balance.png"] = f"the imbalance-decay runs did not complete ({result.status})"
    summary = result.to_summary()
    if not_drawn:
        summary["figures_not_drawn"] = not_drawn
    folder.write_summary(summary)


def show(result: BalanceResult, folder: ResultFolder) -> None:
    """The temperature, ``T_c``, the KS distance (or the regime), the balance rate, the files."""
    if result.status != "completed":
        print(f"status: {result.status}")
    dist = result.samples["sgd"].distance
    print(f"T = {result.T:g}, T_c = {result.T_c:.4g}; "
          + (f"KS distance {dist['value']:.4f} (critical {dist['critical']:.4f}, n = {dist['n']})"
             if dist else result.regime))
    if result.balance is not None:
        first = result.balance.pairs[0]
        print(f"balance rate measured {first.measured:.4g} +- {first.measured_se:.2g}, "
              f"predicted {first.predicted:.4g}")
    print_written(folder, result.status)


def save_densities(result: DensitiesResult, folder: ResultFolder) -> None:
    """``densities.png``, a ``balance`` result folder per case, and ``summary.json``."""
    _save_densities(result, folder, save)
