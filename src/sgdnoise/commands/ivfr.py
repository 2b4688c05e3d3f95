"""``sgdnoise ivfr`` and its reproductions: config -> run -> report (docs/ivfr.md)."""
from __future__ import annotations

from sgdnoise.commands import Experiment, Reproduction
from sgdnoise.experiments import ivfr
from sgdnoise.experiments.ivfr import reproductions
from sgdnoise.report import ivfr as report

EXPERIMENT = Experiment(
    config_class=ivfr.IvfrConfig,
    help="inverse variance-flatness relation: trajectory PCA, flatness, curvature, linearised theory",
    run=ivfr.run, save=report.save, show=report.show, status=ivfr.status, default_out="results/ivfr")

REPRODUCTIONS = {
    "ivfr-single-layer": Reproduction(
        "Gross et al.: a single linear layer has no inverse variance-flatness relation (gamma ~ 0)",
        reproductions.single_layer, report.save, ivfr.status),
    "ivfr-two-layer": Reproduction(
        "Gross et al.: layer 2 of a two-layer linear network (h = K = 6), measured exponents vs the "
        "linearised theory",
        reproductions.two_layer, report.save, ivfr.status),
    "ivfr-two-layer-bottleneck": Reproduction(
        "the same with a hidden bottleneck (h = 3 < K = 6): no power law in layer 2, and why",
        reproductions.two_layer_bottleneck, report.save, ivfr.status),
    "ivfr-mlp-digits": Reproduction(
        "Feng & Tu: psi of the hidden-to-hidden weights of a 64-50-50-10 MLP on digits",
        reproductions.mlp_digits, report.save, ivfr.status),
}
