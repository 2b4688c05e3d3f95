"""``sgdnoise net`` and its reproductions: config -> run -> result folder (docs/net.md)."""
from __future__ import annotations

from sgdnoise.commands import Experiment, Reproduction
from sgdnoise.experiments.net import NetConfig, reproductions, run
from sgdnoise.report import net as report

EXPERIMENT = Experiment(
    NetConfig, "Hessian eigenbasis, gradient noise and weight fluctuations of a network",
    run, report.save, report.show, lambda result: 0 if result.completed else 1, "results/net")

REPRODUCTIONS = {
    "kuehn-rosenow-lenet-digits": Reproduction(
        "Kuehn & Rosenow Figs. 17/20/24: LeNet-5 on digits, Var theta, Var v, tau against lambda, "
        "epoch vs with-replacement", reproductions.lenet_digits, report.save,
        lambda result: 0 if result.completed else 1),
}
