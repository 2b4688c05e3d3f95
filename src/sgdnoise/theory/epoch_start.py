"""The epoch-start covariance of epoch SGD with heavy-ball momentum, at leading order in lr (docs/theory.md §3h).

Extends :mod:`sgdnoise.theory.epoch_kick` (beta = 0) to momentum beta.  With
``u = delta + beta v / (1 - beta)`` (the point the weights would reach if the gradients stopped)
one step is exactly ``u' = u - eta/(1 - beta) (H_B delta + g_B)``.  Every example is used once
per epoch, so ``sum_k H_{B_k} = M H`` and ``sum_k g_{B_k} = 0``; attributing every kick to the
epoch whose gradients caused it, the epoch's kick on ``u`` is, at order eta^2,

    B = eta^2/(1 - beta)^2 [ (1/S) Lambda sum_nu c_nu w_nu + (1/S^2) sum_{mu != nu} omega_{mu nu} h_mu w_nu ]
        - eta^2/(1 - beta)^2 sum_{m >= 0} beta^m h_{B'_m} G',

``c_nu = M - 1 - t_nu`` (the constant -beta/(1 - beta) that the velocity in flight adds drops out
because ``sum w = 0``), ``omega_{mu nu} = (1 - beta^(t_mu - t_nu)) 1{t_mu > t_nu}`` (the share of
the displacement caused by batch t_nu that has arrived when batch t_mu is used), and the last
term the Hessian fluctuations of the following epochs (batches B'_m, independent order) acting on
the displacement still in flight at the epoch end, ``G' = sum_k beta^(M - k) g_{B_k}``.  For
beta = 0: omega = theta, G' = 0, and B is §3h's ``eta^2 b~``.

Here the Lambda part is not expanded: the epoch's linear response to its gradients is kept with
the exact full-batch propagator (2 x 2 per eigendirection, state ``(delta_k, delta_{k-1})``),
``b_lin = (1/S) sum_nu kappa(t_nu) w_nu``, ``kappa(t) = -eta A^(M-1-t) e_1``, which contains
the Lambda part of B and the velocity in flight at the epoch end.  The h parts are u kicks,
added along (1, 1).  The covariance of the kick over the orders follows from the joint laws of
the batch indices of 2-4 distinct examples by Moebius inversion on the partition lattice (as
§3h; only patterns without a lone index survive), and the epoch-start covariance solves the
2 x 2 Stein equation ``Sigma_0 = F Sigma_0 F^T + K`` per direction, ``F = A^M``.  Dropped: the
fluctuations of the epoch map acting on the state and terms of second order in h (both relative
order lr; the weight-dependent noise), which is what limits it on the demo (docs/theory.md §3h,
"With momentum": measured, and the options ``propagated``, ``weight_dependent`` and
``fluctuations`` that go beyond leading order, each in part).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from sgdnoise.errors import UsageError
from sgdnoise.interrupts import raise_if_stop_requested
from sgdnoise.theory.kuehn_rosenow import kuehn_rosenow
from sgdnoise.theory.epoch_pairs import (_beta_weights, _lag_weights, _pair_law, _propagators, _source_sums,
                                         _triple_marginal, _var_h_diag,
                                         pattern_coefficients)


class _Kick:
    """The per-epoch kick covariance K (n, 2, 2) of one kind of source, pieces shared (docs/theory.md §3h).

    ``post[a, i]`` (M, n, 2): where a kick of u of direction i made at batch a stands at the epoch
    end, in ``(delta_k, delta_{k-1})``: ``(1, 1)`` (deposited whole, ``target=False``) or
    ``(1 - beta) A_i^(M-1-a) e_1`` (followed by the full-batch map for the rest of the epoch,
    in flight included; ``target=True``).
    """

    def __init__(self, Z: np.ndarray, lam: np.ndarray, lr: float, S: int, momentum: float,
                 propagated: bool, target: bool = False) -> None:
        P, n = Z.shape
        M, beta = P // S, float(momentum)
        self.Z, self.lam, self.S, self.P, self.M, self.propagated = Z, lam, S, P, M, propagated
        self.pw = _propagators(lam, lr, beta, M)
        self.post = ((1 - beta) * self.pw[M - 1 - np.arange(M), :, :, 0] if target else np.ones((M, n, 2)))
        if propagated:
            self.omega = _lag_weights(self.pw, beta, M)
        else:
            self.omega = self.post.transpose(1, 2, 0)[..., None] * _beta_weights(M, beta)[0]  # (n, 2, M, M)
        self.co = pattern_coefficients(self.omega, P, S, blocks=not propagated)
        p2 = _pair_law(P, S)
        # Hessian fluctuations of the following epochs on the displacement in flight at the epoch end
        fl = beta ** (M - np.arange(M))
        geo = np.einsum("m,mic->ic", beta ** np.arange(M), self.post)
        geo2 = np.einsum("m,mic,mid->icd", beta ** (2 * np.arange(M)), self.post, self.post)
        self.out = ((np.mean(fl ** 2) - fl @ p2 @ fl) / S ** 2 / P / (1 - beta ** (2 * M))
                    * (P / (S * (P - 1)) * geo2 - geo[:, :, None] * geo[:, None, :] / (P - 1)))  # (n, 2, 2)
        # the linear response with the exact full-batch propagator, kappa(t) = -eta A^(M-1-t) e_1
        self.kappa = -lr * self.pw[M - 1 - np.arange(M), :, :, 0]  # (M, n, 2)
        self.e12 = (np.einsum("tia,tib->iab", self.kappa, self.kappa) / M
                    - np.einsum("st,sia,tib->iab", p2, self.kappa, self.kappa)) / S ** 2
        # Cov(kappa(t_nu'), omega(t_mu, t_nu)) summed over the patterns with the Moebius weights (all-equal survives)
        q = self.co["q"][..., None] / M
        m3 = _triple_marginal(self.omega, P, S) - q
        m_mu = np.einsum("ab,...ab->...a", p2, self.omega) - q  # nu' = mu = a
        m_nu = np.einsum("ba,...ba->...a", p2, self.omega) - q  # nu' = nu = a
        weights = 2 * m3 - m_mu - m_nu
        if propagated:  # (K, n, 2): source direction k, target i, component of the linear response
            self.cross_w = np.einsum("ka,aic->kic", weights, self.kappa) / S ** 3
        else:  # (n, 2, 2): target i, component of the linear response, component of the h kick
            self.cross_w = np.einsum("ida,aic->icd", weights, self.kappa) / S ** 3
        self.scale = lr ** 2 / (1 - beta) ** 2

    def of(self, W: np.ndarray, r: np.ndarray | None = None) -> np.ndarray:
        """K for sources ``W`` (P, n); ``r`` given: ``W = Z r`` and the propagated weights may be used."""
        Z, lam, S = self.Z, self.lam, self.S
        sums = _source_sums(W, Z, lam)
        one = np.ones((2, 2))
        if self.propagated:
            var_h = _var_h_diag(Z, r, lam, self.co)[:, None, None] / S ** 4 * one
            Z2, r2 = Z * Z, r * r
            X = (Z2 * r2[:, None]).T @ Z2 - np.diag(lam * (r2 @ Z2))
            cross = np.einsum("ik,kic->ic", X, self.cross_w)[:, :, None] * np.ones(2)
        else:
            var_h = sum(self.co[k] * sums[k][:, None, None] for k in ("1", "A", "B", "C")) / S ** 4
            cross = sums["wa"][:, None, None] * self.cross_w
        return (self.e12 * sums["cw"][:, None, None] + self.scale ** 2 * (var_h + self.out * sums["B"][:, None, None])
                + self.scale * (cross + cross.swapaxes(1, 2)))

    def stein(self, K: np.ndarray) -> np.ndarray:
        """``Sigma = F Sigma F^T + K`` per direction, ``F = A^M`` (2 x 2 blocks)."""
        F, n = self.pw[self.M], K.shape[0]
        lhs = np.eye(4) - np.einsum("iab,icd->iacbd", F, F).reshape(n, 4, 4)
        return np.linalg.solve(lhs, K.reshape(n, 4, 1)).reshape(n, 2, 2)


def _fluctuation_kick(kick: _Kick, var_delta: np.ndarray) -> np.ndarray:
    """Cov (n, 2, 2) of the kick ``-eta/(1 - beta) sum_j post_j (h_{B_j} delta_j)_i`` of one epoch, first order in h.

    ``delta_k`` a stationary process with variance ``var_delta[k]`` and the full-batch
    autocorrelation ``R_k(l) = (A_k^l Sigma_k)_00 / Sigma_k,00`` (``Sigma_k = A_k Sigma_k A_k^T +
    e_1 e_1^T``), taken independent of the order (the usage correlation left out) and uncorrelated
    across directions; ``E[(h_B)_ik (h_B')_ik] = c(j, j') (1/P) sum_mu h_mu,ik^2`` with
    ``c = (P - S)/(S (P - 1))`` for the same batch and ``-1/(P - 1)`` for two batches of one
    epoch; ``post_j`` where the kick stands at the epoch end (:class:`_Kick`).  With post = 1,
    ``sum_{j j'} c R_k = M (P - S)/(S (P - 1)) - 2/(P - 1) sum_l (M - l) R_k(l)``: zero for a
    direction that does not move within the epoch (the sum rule), order one for one that
    decorrelates within it.
    """
    Z, lam, P, S, M = kick.Z, kick.lam, kick.P, kick.S, kick.M
    A = kick.pw[1]
    n = lam.size
    lhs = np.eye(4) - np.einsum("iab,icd->iacbd", A, A).reshape(n, 4, 4)
    e = np.zeros((n, 4, 1))
    e[:, 0] = 1.0
    sig = np.linalg.solve(lhs, e).reshape(n, 2, 2)
    R = np.einsum("lkab,kb->lk", kick.pw[:M, :, :1, :], sig[:, :, 0]) / sig[:, 0, 0]  # (M, n)
    Rm = R[np.abs(np.arange(M)[:, None] - np.arange(M)[None, :])]  # (M, M, n)
    post = kick.post
    same = np.einsum("jic,jid->icd", post, post)
    Z2 = Z * Z
    hsq = (Z2.T @ Z2 / P - np.diag(lam ** 2)) * var_delta  # (n, n): (1/P) sum_mu h_mu,ik^2 var_k
    W = (hsq @ Rm.reshape(M * M, n).T).reshape(n, M, M)  # sum_k hsq_ik R_k(|j - j'|): one GEMM
    pair = np.einsum("jic,ijJ,Jid->icd", post, W, post, optimize=True)
    g = (P / (S * (P - 1))) * hsq.sum(axis=1)[:, None, None] * same - pair / (P - 1)
    return kick.scale * g


def start_covariance_momentum(Z: np.ndarray, r: np.ndarray, lam: np.ndarray, lr: float, S: int,
                              momentum: float, propagated: bool = False,
                              weight_dependent: bool = False,
                              fluctuations: np.ndarray | None = None, target: bool = False) -> dict[str, np.ndarray]:
    """Epoch-start variance per eigendirection at leading order, with momentum (docs/theory.md §3h).

    ``Z`` (P, n) inputs in the eigenbasis of H (ascending ``lam``), ``r`` residuals at w*.
    Returns ``var_theta_start`` (n,), ``sigma0`` (n, 2, 2) the start covariance of
    ``(delta_k, delta_{k-1})`` per direction, ``kick`` (n, 2, 2) its per-epoch source ``K``,
    and ``carry`` (n,): ``(1/M) sum_j ((A^j (1, 1))_0)^2``, the time-averaged variance that a
    unit epoch-start variance along (1, 1) leaves.

    ``propagated``: the displacement between the two examples of a pair follows the full-batch
    propagator of its own direction (:func:`_lag_weights`) instead of arriving undamped
    (``1 - beta^lag``); cost N^2 M^3 + P^2 N^2 instead of P^2 N + P N^2 + M^3.
    ``weight_dependent``: the per-example gradient at the current weights, ``w_nu + h_nu delta``,
    is the source instead of ``w_nu`` alone, for the slow directions k (``eta lam_k M / (1 - beta)
    < 1``: delta_k changes by less than its own size over an epoch, so ``h_nu delta`` sums to zero
    over the epoch like w); their start variances s_k enter K linearly, ``K = K_w + sum_k s_k K_k``
    with ``K_k`` the kick of the sources ``h_nu e_k``, solved self-consistently (cost N x one kick).
    ``fluctuations`` (n,): variances of delta for :func:`_fluctuation_kick`.  ``target``: the kicks
    of u made within the epoch follow the full-batch map to the epoch end (:class:`_Kick`; not
    with ``propagated``, whose pair weights are per source direction).
    """
    P, n = Z.shape
    if P % S:
        raise UsageError(f"the epoch kick needs batch_size dividing P; got P = {P}, batch_size = {S}",
                         name="batch_size")
    kick = _Kick(Z, lam, lr, S, momentum, propagated, target and not propagated)
    K = kick.of(Z * r[:, None], r)
    M, one = P // S, np.ones(2)
    if weight_dependent:
        slow = np.flatnonzero(lr * lam * M / (1 - momentum) < 1)
        plain = _Kick(Z, lam, lr, S, momentum, False, target) if propagated else kick
        Ks = []
        for k in slow:
            W = Z * Z[:, [k]]
            W[:, k] -= lam[k]
            Ks.append(plain.of(W))
        Ks = np.array(Ks)  # (n_slow, n, 2, 2)
        t = kick.stein(K)[:, 0, 0]
        L = np.array([kick.stein(Kk)[:, 0, 0] for Kk in Ks]).T  # (n, n_slow)
        s = np.linalg.solve(np.eye(slow.size) - L[slow], t[slow])
        K = K + np.einsum("k,kiab->iab", s, Ks)
    if fluctuations is not None:
        K = K + _fluctuation_kick(kick, fluctuations)
    sigma0 = kick.stein(K)
    carry = np.mean((kick.pw[:M] @ one)[:, :, 0] ** 2, axis=0)
    return {"var_theta_start": sigma0[:, 0, 0], "sigma0": sigma0, "kick": K, "carry": carry,
            "var_out": kick.scale ** 2 * kick.out * _source_sums(Z * r[:, None], Z, lam)["B"][:, None, None]}


def start_corrected_var_theta_momentum(var_theta: np.ndarray, var_theta_start: np.ndarray, Z: np.ndarray,
                                       r: np.ndarray, lam: np.ndarray, lr: float, S: int,
                                       momentum: float, propagated: bool = False,
                                       weight_dependent: bool = False, fluctuation_var: np.ndarray | None = None,
                                       slow_only: bool = False, target: bool = False) -> np.ndarray:
    """A closure's time-averaged Var theta with its epoch-start variance replaced (docs/theory.md §3h).

    ``d_i = Sigma_0,ii - var_theta_start_i`` (:func:`start_covariance_momentum`) is taken to lie
    along the slow mode (1, 1) of ``(delta_k, delta_{k-1})`` and carried through the epoch by the
    full-batch map: ``var_theta_i + d_i carry_i``.  For beta = 0 this is
    :func:`sgdnoise.theory.epoch_kick.start_corrected_var_theta` with the linear part of the kick
    not expanded in lr.  ``propagated``, ``weight_dependent``: as in
    :func:`start_covariance_momentum`; ``fluctuation_var`` (n,): add the first-order
    weight-dependent noise ``h_nu delta`` of the directions that move within an epoch, with these
    variances of delta, taken uncorrelated with the order (:func:`_fluctuation_kick`).  The part
    of delta driven by the noise at w* is already in the pair term, so the consistent choice is
    the part that is not: ``var_theta`` minus the additive-noise epoch theory (Kuehn-Rosenow,
    exact for additive noise); all of ``var_theta`` double-counts (§3h).  ``slow_only``: correct
    only the directions with ``eta lam_i M / (1 - beta) < 1``, where the kick of u is deposited
    at the epoch end without relaxing within the epoch (the premise of the leading-order
    target side); the others keep the closure's value.
    Accuracy against the exact reference and simulation: docs/theory.md §3h, "With momentum".
    """
    res = start_covariance_momentum(Z, r, lam, lr, S, momentum, propagated, weight_dependent, fluctuation_var,
                                    target)
    shift = (res["var_theta_start"] - var_theta_start) * res["carry"]
    if slow_only:
        shift = np.where(lr * lam * (Z.shape[0] // S) / (1 - momentum) < 1, shift, 0.0)
    return var_theta + shift


def start_corrected_moments(Z: np.ndarray, r: np.ndarray, lam: np.ndarray, V: np.ndarray, moments, lr: float,
                            S: int, momentum: float, target: bool = True):
    """A closure's :class:`~sgdnoise.theory.epoch_exact.EpochMoments` with the §3h start correction.

    ``Z``, ``r``, ``lam``, ``V``: the rotated inputs, residuals at w*, ascending eigenvalues and
    eigenvectors of the range of H that the closure was solved in.
    :func:`start_corrected_var_theta_momentum` with ``slow_only``, ``target`` and
    ``fluctuation_var = max(var_theta - var_KR, 0)``, ``var_KR`` the Kuehn-Rosenow variances of
    the noise at w* (eqs. 14-17, docs/theory.md §3d; exact for additive noise): the part of
    delta driven by the weight-dependent noise.  ``var_theta`` and ``covariance`` (by
    ``V diag(shift) V^T``) change; the other fields are the closure's.  Measured in
    docs/theory.md §3h, "With momentum".
    """
    raise_if_stop_requested()  # seconds at N = 500: a Ctrl-C during the closure's last pass ends here
    P = Z.shape[0]
    noise = (P - S) / (S * (P - 1)) * np.mean((Z * r[:, None]) ** 2, axis=0)
    kr = kuehn_rosenow(lam, noise, lr, momentum, P // S).var_theta
    n = lam.size  # the range of H: the last n of the N ascending directions (the null ones, lam = 0, come first)
    var = moments.var_theta[-n:] if n else moments.var_theta[:0]
    corrected = start_corrected_var_theta_momentum(var, moments.var_theta_start[-n:] if n else var, Z, r, lam, lr, S,
                                                   momentum, fluctuation_var=np.clip(var - kr, 0, None),
                                                   slow_only=True, target=target)
    shift = corrected - var
    var_theta = moments.var_theta.copy()
    var_theta[var_theta.size - n:] = corrected
    return dataclasses.replace(moments, var_theta=var_theta, covariance=moments.covariance + (V * shift) @ V.T)
