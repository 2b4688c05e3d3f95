"""Commands ``sgdnoise linear`` and ``sgdnoise demo``, and the reproductions on quadratic problems."""
from __future__ import annotations

from functools import partial

from sgdnoise.commands import Experiment, Reproduction
from sgdnoise.experiments.linear import demo, epoch_map, reproductions, run
from sgdnoise.experiments.linear import gross_fig2, gross_fig3, gross_fig4, gross_fig5, gross_fig5b
from sgdnoise.experiments.linear.config import DemoConfig, LinearConfig
from sgdnoise.report import epoch_map as epoch_map_report
from sgdnoise.report import gross as gross_report
from sgdnoise.report import gross_fig3 as gross_report3
from sgdnoise.report import gross_fig5 as gross_report5
from sgdnoise.report import linear as report


def stopped_early(result) -> int:
    """Exit status: 0 when the run completed, 1 when it diverged or was interrupted."""
    return 0 if result.status == "completed" else 1


LINEAR = Experiment(LinearConfig, "SGD on linear regression: simulate, measure, predict, compare",
                    run.run, report.save_linear, report.show_linear, stopped_early, "results/linear")
DEMO = Experiment(DemoConfig, "the default experiment: epoch vs with-replacement sampling",
                  demo.run, report.save_comparison, report.show_comparison, stopped_early, "results/demo")

REPRODUCTIONS = {
    "epoch-accuracy-map": Reproduction(
        "accuracy of the epoch theories (Kuehn-Rosenow, anticorrelated, epoch) against simulation and the exact "
        "reference over N, P/N, S, lr, beta, against the strength of the weight-dependent noise",
        lambda seed, progress: epoch_map.run(seed, progress), epoch_map_report.save, stopped_early),
    "gross-fig2": Reproduction(
        "Gross et al. Fig. 2a/2b: variance of the elements of X^+X against P/N; ordered K vs i.i.d.",
        gross_fig2.fig2, gross_report.save_fig2, stopped_early),
    "gross-fig3": Reproduction(
        "Gross et al. Fig. 3a/3b/3c: noise spectrum along SGD and at w*, vs Hessian approximation; C in H basis",
        gross_fig3.fig3, gross_report3.save_fig3, stopped_early),
    "gross-fig4": Reproduction(
        "Gross et al. Fig. 4: relaxation of the loss and modes z_k against the moment recursion",
        gross_fig4.fig4, gross_report.save_fig4, stopped_early),
    "gross-fig5a": Reproduction(
        "Gross et al. Fig. 5a: weight variance against N at P = 200, train and test loss",
        gross_fig5.fig5a, gross_report5.save_fig5a, stopped_early),
    "gross-fig5b": Reproduction(
        "Gross et al. Fig. 5b: weight-covariance eigenvalues, measured vs theory, with the estimator's bias",
        gross_fig5b.fig5b, gross_report5.save_fig5b, stopped_early),
    "gross-fig5c": Reproduction(
        "Gross et al. Fig. 5c: extreme eigenvalues of M, exact vs detailed balance, and of Q, against P",
        gross_fig5.fig5c, gross_report5.save_fig5c, stopped_early),
    "kuehn-rosenow-quadratic": Reproduction(
        "Kuehn & Rosenow: Var theta, Var v, tau vs lambda, epoch vs with replacement; additive noise "
        "(closed form exact)", reproductions.quadratic,
        partial(report.save_kuehn_rosenow, name="kuehn-rosenow-quadratic"), stopped_early),
    "kuehn-rosenow-linear": Reproduction(
        "Kuehn & Rosenow: the same on teacher-student linear regression (state-dependent noise)",
        reproductions.linear, partial(report.save_kuehn_rosenow, name="kuehn-rosenow-linear"), stopped_early),
}
