"""``sgdnoise ivfr``: the inverse variance-flatness relation measured and predicted (docs/ivfr.md).

config -> data -> model at a balanced minimum -> SGD on R replicas with snapshots of all
weights -> per layer: trajectory PCA, flatness, curvature, fits (:mod:`.analysis`) -> for
the linear networks the linearised theory (:mod:`sgdnoise.theory.linear_networks`) ->
:class:`IvfrResult`.  No files are written here (:mod:`sgdnoise.report.ivfr` does).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from sgdnoise._spec import check_stable, rng
from sgdnoise.dynamics.checkpoint import Checkpoint
from sgdnoise.dynamics.linear_networks import LinearNetwork, SnapshotRun, balanced_minimum, simulate
from sgdnoise.errors import UsageError
from sgdnoise.experiments.ivfr.analysis import analyse_layer
from sgdnoise.experiments.ivfr.config import IvfrConfig
from sgdnoise.experiments.ivfr.mlp import run_mlp
from sgdnoise.experiments.ivfr.results import IvfrResult, profiles_of
from sgdnoise.interrupts import announce_phase
from sgdnoise.measure.pca import aggregate, projected_variances
from sgdnoise.sampling import Sampler
from sgdnoise.theory.linear_networks import (
    LinearisedCovariance,
    balance,
    layer_fits,
    layer_prediction,
    linearised_covariance,
    rebalanced_minimum,
    two_layer_structure,
)
from sgdnoise.theory.noise import batch_noise_factor
from sgdnoise.theory.pca_window import window_bias, window_samples

#: What ``theory.note`` says of the linearised theory.
NOTE = ("eigenvalues of the layer block of the stationary covariance (discrete §3b; continuum §3a beside it) "
        "at each replica's point of the minimum's orbit with its measured balance (two layers; w* otherwise); "
        "symmetry zero modes projected out (their variance is set by the law of balance §6a and the window); "
        "the noise is taken at the minimum, which underestimates the variances by a relative amount of order "
        "state_dependence = f lr tr H / (2 (1 - momentum)) (§3c)")
#: Relative size of the random offset of each replica's start from the balanced minimum.
INIT_SCALE = 1e-3


def run_status(sim: SnapshotRun, steps: int) -> str:
    if sim.diverged_at is not None:
        return f"diverged by step {sim.diverged_at}; {sim.snapshots.shape[1]} snapshots kept before"
    if sim.interrupted_at is not None:
        return (f"interrupted at step {sim.interrupted_at}; {sim.snapshots.shape[1]} snapshots kept "
                f"({sim.steps_done} of {steps} measured steps)")
    return "completed"


def reference_points(net: LinearNetwork, w_star: np.ndarray, snapshots: np.ndarray) -> np.ndarray:
    """Where the theory is evaluated, one row per replica (R, d).

    For two layers: each replica's point of the minimum's orbit with the balance of its
    window mean (:func:`~sgdnoise.theory.linear_networks.rebalanced_minimum`); otherwise ``w*``.
    """
    if net.depth != 2:
        return np.broadcast_to(w_star, (snapshots.shape[0], net.dim))
    W1, W2 = net.unflatten(w_star)
    points = []
    for mean in snapshots.mean(axis=1):
        M1, M2 = net.unflatten(mean)
        points.append(net.flatten(list(rebalanced_minimum(W1, W2, balance(M1, M2)))))
    return np.array(points)


def predictions(net: LinearNetwork, X: np.ndarray, Y: np.ndarray, w: np.ndarray, config: IvfrConfig
                ) -> LinearisedCovariance:
    """The linearised covariances (by method), Hessian, noise and zero modes at the minimum ``w``."""
    H = net.hessian(w, X, Y)
    return linearised_covariance(H, net.per_example_gradients(w, X, Y), config.lr, config.momentum,
                                 config.sampling, config.batch_size, net.symmetry_generators(w))


def orbit_overlap(tangents: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """``|P p_i|^2``: the share of each direction (columns) in the span of the layer's orbit tangents.

    The curvature of the orbit puts the second-order variance of the zero modes there
    (``(A W_1, W_2 A^-1)`` to second order in ``A - I``), which the linear theory leaves out.
    """
    if tangents.size == 0:
        return np.zeros(directions.shape[1])
    U, sv, _ = np.linalg.svd(tangents, full_matrices=False)
    U = U[:, sv > sv.max() * 1e-10]
    return np.sum((U.T @ directions) ** 2, axis=0)


def layer_theory(net: LinearNetwork, l: int, solved: list[LinearisedCovariance], points: np.ndarray,
                 snapshots: np.ndarray, L0: float, config: IvfrConfig) -> dict[str, Any]:
    """Predictions for layer ``l`` (replica means) and the z-scores of the measurement along them."""
    sl = net.layer_slice(l)
    per = [layer_prediction(s.covariance["discrete"], s.hessian, sl, L0, config.kappa, seed=config.seed)
           for s in solved]
    pred = {key: np.mean([p[key] for p in per], axis=0) for key in ("pca_variances", "curvature", "flatness")}
    fits = layer_fits(pred["pca_variances"], pred["curvature"], pred["flatness"], config.seed)
    cont = [layer_prediction(s.covariance["continuum"], s.hessian, sl, L0, config.kappa)["pca_variances"]
            for s in solved]
    diffs, overlaps = [], []
    for r, s in enumerate(solved):
        T = net.symmetry_generators(points[r])
        perp = snapshots[r] - snapshots[r] @ np.linalg.pinv(T).T @ T.T if T.size else snapshots[r]
        lam, V = np.linalg.eigh(s.covariance["discrete"][sl, sl])
        keep = (lam > lam.max() * 1e-10)[::-1]
        lam, V = lam[::-1][keep], V[:, ::-1][:, keep]
        diffs.append(projected_variances(perp[None, :, sl], V)[0] - lam)
        overlaps.append(orbit_overlap(T[sl], V))
    mean_diff, se = aggregate(np.array(diffs))
    return {**pred, **fits, "z_scores": mean_diff / se, "measured_along_predicted": pred["pca_variances"] + mean_diff,
            "orbit_overlap": np.mean(overlaps, axis=0), "continuum": {"pca_variances": np.mean(cont, axis=0)}}


def theory_block(net: LinearNetwork, X: np.ndarray, Y: np.ndarray, w_star: np.ndarray, config: IvfrConfig,
                 snapshots: np.ndarray) -> dict[str, Any]:
    """The linearised theory per layer, and z-scores of the measured variances along its directions.

    The theory is evaluated per replica (at :func:`reference_points`); the predictions shown are
    the replica means, and the z-scores those of the per-replica differences measured - predicted
    of the variances along the predicted principal directions, measured after projecting the
    snapshots off the symmetry orbit's tangents (which the theory leaves out); ``orbit_overlap``
    says how much of each direction lies where the orbit's curvature adds variance (compare
    only directions with a small overlap).  ``window``: the PCA estimator applied to synthetic
    windows of the linearised dynamics (same window, spacing and replicas) against the exact
    eigenvalues, its finite-window bias (:mod:`sgdnoise.theory.pca_window`).  For two layers,
    ``structure`` (:func:`~sgdnoise.theory.linear_networks.two_layer_structure`) says where
    layer 2's exponent comes from.
    """
    points = reference_points(net, w_star, snapshots)
    try:
        solved = [predictions(net, X, Y, w, config) for w in points]
    except UsageError as exc:
        return {"note": f"no linearised theory: {exc}"}
    first = solved[0]
    L0 = float(net.loss(points[:1], X, Y)[0])
    f = batch_noise_factor(config.sampling, X.shape[0], config.batch_size)
    block: dict[str, Any] = {
        "zero_modes_projected": first.zero_modes, "loss_at_minimum": L0,
        "state_dependence": f * config.lr * float(np.trace(first.hessian)) / (2 * (1 - config.momentum)),
        "note": NOTE}
    T = net.symmetry_generators(points[0])
    samples, exact = window_samples(first.hessian, first.noise, config.lr, config.momentum, T,
                                    config.snapshot_every, snapshots.shape[1], snapshots.shape[0], config.seed)
    for l, name in enumerate(net.layer_names if net.depth > 1 else ["all"]):
        block[name] = layer_theory(net, l, solved, points, snapshots, L0, config)
        block[name]["window"] = window_bias(samples, exact, net.layer_slice(l))
    if net.depth == 2:
        W1, W2 = net.unflatten(points[0])
        rank = int(np.linalg.matrix_rank(np.linalg.lstsq(X, Y, rcond=None)[0]))
        block["structure"] = two_layer_structure(W1, W2, first.hessian, first.noise, first.covariance["discrete"],
                                                 T, rank, config.seed)
    return block


def run_linear(config: IvfrConfig, progress: bool, checkpoints: Path | None = None) -> IvfrResult:
    """The linear models: simulate (checkpointed into ``checkpoints/simulation.pkl``), analyse, predict."""
    problem = config.problem()
    X, Y = problem.X, problem.Y
    net = LinearNetwork.build(X.shape[1], Y.shape[1], config.hidden, config.depth)
    w_star = balanced_minimum(net, X, Y)
    H = net.hessian(w_star, X, Y)
    check_stable(config.lr, float(np.linalg.eigvalsh(H)[-1]), config.momentum)
    sampler = Sampler(config.sampling, X.shape[0], config.batch_size, config.replicas, rng(config.seed, "sampler"))
    scale = INIT_SCALE * np.sqrt(np.mean(w_star**2))
    w0 = w_star + scale * rng(config.seed, "init").normal(size=(config.replicas, net.dim))
    announce_phase("sgd")
    checkpoint = None if checkpoints is None else Checkpoint(Path(checkpoints) / "simulation.pkl",
                                                             config.to_mapping())
    sim = simulate(net, X, Y, w0, config.lr, config.momentum, sampler, config.burn_in, config.steps,
                   config.snapshot_every, progress, checkpoint=checkpoint)
    info = {"model": config.model, "problem": problem.source, "shapes": [list(s) for s in net.shapes],
            "window": {"snapshots": int(sim.snapshots.shape[1]), "every": config.snapshot_every,
                       "steps": sim.steps_done, "burn_in": config.burn_in}}
    state = run_status(sim, config.steps)
    if sim.snapshots.shape[1] < 8:
        return IvfrResult(state, {}, {}, {}, info, config.to_mapping())
    announce_phase("analysis")
    loss = lambda pts: net.loss(pts, X, Y)  # noqa: E731
    hvp = lambda pts, vec: net.hvp(pts, vec, X, Y)  # noqa: E731
    layers, profiles = {}, {}
    for l, name in enumerate(net.layer_names if net.depth > 1 else ["all"]):
        sl = net.layer_slice(l)
        a = analyse_layer(name, sim.snapshots, sl, loss, hvp, config.kappa, H[sl, sl], seed=config.seed)
        layers[name] = a
        directions = np.linalg.svd(sim.snapshots[0][:, sl] - sim.snapshots[0][:, sl].mean(0),
                                   full_matrices=False)[2]
        profiles[name] = profiles_of(a, sim.snapshots, sl, directions, loss)
    theory = theory_block(net, X, Y, w_star, config, sim.snapshots)
    return IvfrResult(state, layers, theory, profiles, info, config.to_mapping())


def run(config: IvfrConfig, progress: bool = True, checkpoints: Path | None = None) -> IvfrResult:
    """``sgdnoise ivfr``: every check before any work, then the model's measurement.

    ``checkpoints``: a folder where the simulation saves its full state periodically
    (:mod:`sgdnoise.dynamics.checkpoint`); a run killed and restarted with the same settings
    resumes from it and gives bit-identical results.
    """
    if config.model == "mlp":
        return run_mlp(config, progress, checkpoints)
    return run_linear(config, progress, checkpoints)
