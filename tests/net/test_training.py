"""Training loop, streaming recorder, checkpoints and noise injection on tiny models.

The streaming statistics are held against the same statistics of the stored trajectory
(float64 round-off); resumed runs against uninterrupted ones (bitwise).
"""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from sgdnoise.dynamics.injection import AntiPGD, PerturbedGD, widening_valley
from sgdnoise.sampling import Sampler
from sgdnoise.dynamics.training import train
from sgdnoise.measure.recorder import ProjectedFluctuations
from sgdnoise.problems.networks import flat_parameters
from sgdnoise.errors import UsageError


def setup(sampling: str = "epoch", seed: int = 0, lr: float = 0.1):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3)).double()
    g = torch.Generator().manual_seed(7)
    data = (torch.randn(40, 4, generator=g, dtype=torch.float64), torch.randint(0, 3, (40,), generator=g))
    sampler = Sampler(sampling, 40, 6, rng=np.random.default_rng(seed))
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.8)
    return model, data, sampler, optimizer


class Tape:
    """A recorder that forwards to another and stores every weight vector."""

    def __init__(self, inner: ProjectedFluctuations) -> None:
        self.inner, self.thetas = inner, []

    def update(self, theta: torch.Tensor) -> None:
        self.inner.update(theta)
        self.thetas.append(theta.clone())


def test_streaming_statistics_equal_those_of_the_stored_trajectory():
    model, data, sampler, optimizer = setup()
    d, k, steps, blocks = sum(p.numel() for p in model.parameters()), 4, 203, 7
    V = torch.linalg.qr(torch.randn(d, k, dtype=torch.float64, generator=torch.Generator().manual_seed(1)))[0]
    start = flat_parameters(model)
    tape = Tape(ProjectedFluctuations(V, start, steps, n_blocks=blocks))
    train(model, nn.CrossEntropyLoss(), data, sampler, steps, optimizer, recorder=tape, progress=False)
    result = tape.inner.result()
    p = ((torch.stack(tape.thetas) - start) @ V).numpy()
    u = np.diff(np.vstack([np.zeros(k), p]), axis=0)
    assert np.allclose(result["var_theta"].value, p.var(axis=0), rtol=1e-10, atol=0)
    assert np.allclose(result["var_v"].value, u.var(axis=0), rtol=1e-10, atol=0)
    assert np.allclose(result["tau"].value, 2 * p.var(axis=0) / u.var(axis=0), rtol=1e-10, atol=0)
    assert np.allclose(result["mean_theta"].value, p.mean(axis=0), rtol=1e-10, atol=0)
    # batch means: blocks of ceil(203 / 7) = 29 steps, variance about the grand mean in each
    block_var = np.stack([((b - p.mean(axis=0)) ** 2).mean(axis=0) for b in np.array_split(p, blocks)])
    assert np.allclose(result["var_theta"].stderr, block_var.std(axis=0, ddof=1) / np.sqrt(blocks), rtol=1e-10)
    assert result["steps"] == steps


@pytest.mark.parametrize("sampling", ["epoch", "with-replacement", "random-batch"])
def test_resumed_training_equals_an_uninterrupted_run(tmp_path, sampling):
    steps, every = 50, 20
    model, data, sampler, optimizer = setup(sampling)
    V = torch.eye(sum(p.numel() for p in model.parameters()), 3, dtype=torch.float64)
    full = ProjectedFluctuations(V, flat_parameters(model), steps, 5)
    train(model, nn.CrossEntropyLoss(), data, sampler, steps, optimizer, recorder=full,
          checkpoint=tmp_path / "a.pt", checkpoint_every=every, progress=False)
    expected = flat_parameters(model)

    class Interrupt(Exception):
        pass

    class Stopper(ProjectedFluctuations):
        def update(self, theta: torch.Tensor) -> None:
            if self.steps == 31:
                raise Interrupt
            super().update(theta)

    model, data, sampler, optimizer = setup(sampling)
    with pytest.raises(Interrupt):
        train(model, nn.CrossEntropyLoss(), data, sampler, steps, optimizer,
              recorder=Stopper(V, flat_parameters(model), steps, 5), checkpoint=tmp_path / "b.pt",
              checkpoint_every=every, progress=False)
    model, data, sampler, optimizer = setup(sampling)  # a fresh process: everything from the file
    resumed = ProjectedFluctuations(V, flat_parameters(model), steps, 5)
    log = train(model, nn.CrossEntropyLoss(), data, sampler, steps, optimizer, recorder=resumed,
                checkpoint=tmp_path / "b.pt", checkpoint_every=every, progress=False)
    assert log.steps == steps
    assert torch.equal(flat_parameters(model), expected)
    assert np.array_equal(resumed.result()["var_theta"].value, full.result()["var_theta"].value)


def test_divergence_stops_and_keeps_the_log(tmp_path):
    model, data, sampler, optimizer = setup(lr=1e6)

    def square_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (output**2).mean()

    log = train(model, square_loss, data, sampler, 200, optimizer, checkpoint=tmp_path / "c.pt", progress=False)
    assert log.diverged and log.steps < 200
    assert (tmp_path / "c.pt").is_file()


def test_schedule_sets_the_learning_rate_of_every_step():
    model, data, sampler, optimizer = setup()
    seen = []

    def schedule(t: int) -> float:
        seen.append(t)
        return 0.1 / (1 + t)

    train(model, nn.CrossEntropyLoss(), data, sampler, 13, optimizer, schedule=schedule, progress=False)
    assert seen == list(range(13))
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1 / 13)


def test_bad_input_is_refused():
    model, data, _, optimizer = setup()
    with pytest.raises(UsageError, match="the sampler draws from 39 examples but the data hold 40"):
        train(model, nn.CrossEntropyLoss(), data, Sampler("epoch", 39, 5), 3, optimizer, progress=False)
    with pytest.raises(UsageError, match="basis must have shape"):
        ProjectedFluctuations(torch.eye(5, 2), torch.zeros(6), 10)


def test_anti_pgd_telescopes_and_pgd_accumulates():
    """With zero gradient, Anti-PGD moves theta by xi_N - xi_0 and PGD by xi_1 + ... + xi_N
    (same noise stream: xi_0, xi_1, ... drawn in this order from the seeded generator)."""
    sigma, steps = 0.3, 7
    for wrapper, expected in ((AntiPGD, lambda xi: xi[-1] - xi[0]), (PerturbedGD, lambda xi: xi[1:].sum(0))):
        theta = nn.Parameter(torch.zeros(5, dtype=torch.float64))
        opt = wrapper(torch.optim.SGD([theta], lr=0.0), sigma, seed=3)
        for _ in range(steps):
            opt.zero_grad()
            (theta.sum() * 0).backward()
            opt.step()
        g = torch.Generator().manual_seed(3)
        n = steps + 1 if wrapper is AntiPGD else steps
        xi = torch.stack([sigma * torch.randn(5, dtype=torch.float64, generator=g) for _ in range(n)])
        xi = xi if wrapper is AntiPGD else torch.cat([torch.zeros(1, 5, dtype=torch.float64), xi])
        assert torch.allclose(theta.detach(), expected(xi), atol=1e-15)


def test_injection_state_dict_round_trip():
    def make():
        theta = nn.Parameter(torch.ones(4, dtype=torch.float64))
        return theta, AntiPGD(torch.optim.SGD([theta], lr=0.1, momentum=0.5), 0.2, seed=1)

    def run(theta, opt, n):
        for _ in range(n):
            opt.zero_grad()
            (theta**2).sum().backward()
            opt.step()

    theta, opt = make()
    run(theta, opt, 3)
    state, saved = copy.deepcopy(opt.state_dict()), theta.detach().clone()  # as torch.save would
    run(theta, opt, 4)
    theta2, opt2 = make()
    with torch.no_grad():
        theta2.copy_(saved)
    opt2.load_state_dict(state)
    run(theta2, opt2, 4)
    assert torch.equal(theta.detach(), theta2.detach())


def test_widening_valley_anti_pgd_finds_the_flat_end():
    runs = {m: widening_valley(m, steps=3000, lr=0.05, sigma=0.1, seed=0) for m in ("gd", "pgd", "anti-pgd")}
    trace = {m: r["hessian_trace"][-1] for m, r in runs.items()}
    assert trace["anti-pgd"] < 0.1 * trace["gd"] < 0.1 * trace["pgd"]
    assert runs["gd"]["loss"][-1] < 1e-6
