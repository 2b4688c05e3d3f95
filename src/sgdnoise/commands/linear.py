"""Commands ``sgdnoise linear`` and ``sgdnoise demo``, and the reproductions on quadratic problems."""
from __future__ import annotations

from functools import partial

from sgdnoise.commands import Experiment, Reproduction
from sgdnoise.experiments.linear import demo, gross, reproductions, run
from sgdnoise.experiments.linear.config import DemoConfig, LinearConfig
from sgdnoise.report import gross as gross_report
from sgdnoise.report import linear as report


def stopped_early(result) -> int:
    """Exit status: 0 when the run completed, 1 when it diverged or was interrupted."""
    return 0 if result.status == "completed" else 1


LINEAR = Experiment(LinearConfig, "SGD on linear regression: simulate, measure, predict, compare",
                    run.run, report.save_linear, report.show_linear, stopped_early, "results/linear")
DEMO = Experiment(DemoConfig, "the default experiment: epoch vs with-replacement sampling",
                  demo.run, report.save_comparison, report.show_comparison, stopped_early, "results/demo")

REPRODUCTIONS = {
    "gross-fig3": Reproduction(
        "Gross et al. Fig. 3a/3b: noise-covariance spectrum vs Hessian approximation",
        gross.fig3, gross_report.save_fig3, stopped_early),
    "gross-fig5b": Reproduction(
        "Gross et al. Fig. 5b: weight-covariance eigenvalues, measured vs theory",
        gross.fig5b, gross_report.save_fig5b, stopped_early),
    "kuehn-rosenow-quadratic": Reproduction(
        "Kuehn & Rosenow: Var theta, Var v, tau vs lambda, epoch vs with replacement; additive noise "
        "(closed form exact)", reproductions.quadratic,
        partial(report.save_kuehn_rosenow, name="kuehn-rosenow-quadratic"), stopped_early),
    "kuehn-rosenow-linear": Reproduction(
        "Kuehn & Rosenow: the same on teacher-student linear regression (state-dependent noise)",
        reproductions.linear, partial(report.save_kuehn_rosenow, name="kuehn-rosenow-linear"), stopped_early),
}
