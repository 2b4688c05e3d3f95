"""``sgdnoise balance`` and the Ziyin, Li, Ueda reproductions: config -> run -> report."""
from __future__ import annotations

from sgdnoise.commands import Experiment, Reproduction
from sgdnoise.experiments import balance
from sgdnoise.report import balance as report

EXPERIMENT = Experiment(
    config_class=balance.BalanceConfig,
    help="noise balance and stationary distribution of a diagonal linear net (Ziyin, Li, Ueda)",
    run=balance.run, save=report.save, show=report.show, status=balance.status,
    default_out="results/balance")

#: ``sgdnoise reproduce NAME``: (name, what the figure shows, computation, report).
REPRODUCTIONS = {name: Reproduction(f"Ziyin et al. 2308.06671: {what}", compute, save)
                 for name, what, compute, save in (
    ("ziyin-densities", "p(v) for D = 0, 1 at T = 0.05, 0.5 vs SGD/SDE histograms",
     balance.densities, report.save_densities),
    ("ziyin-inversion", "Var v against T (fluctuation inversion) and T_c, D = 1",
     balance.inversion, report.save_inversion),
    ("ziyin-tail", "tails |v|^(-5+3/(D+1)) on log-log axes, infinite depth",
     balance.tail, report.save_tail),
    ("ziyin-balance", "law of balance, imbalance decay vs gradient-flow conservation",
     balance.law_of_balance, report.save),
    ("ziyin-ergodicity", "width d = 2, D = 2: sign sectors never cross; sector densities, collapse of k = 0",
     balance.ergodicity, report.save_ergodicity),
)}
