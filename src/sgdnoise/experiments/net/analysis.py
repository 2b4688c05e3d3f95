r"""What the measured and predicted fluctuations of a ``net`` run say together (summary key ``analysis``).

Kühn & Rosenow's claims and the gap of issue 10, from the per-direction numbers:

- **slopes**: the exponent ``a`` of :math:`\mathrm{Var}\,\theta_i \sim \lambda_i^a` over the
  directions below and above :math:`\lambda_{\rm cross}` (the seed, for epochs with the noise
  covariance proportional to H: :math:`\Sigma_< \sim H`, ``a = 1`` below, and
  :math:`\Sigma_> \sim 1`, ``a = 0`` above), least squares in log-log over the equilibrated
  directions with a 95 % bootstrap interval over directions
  (:func:`sgdnoise.stats.fits.loglog_fit`), measured and for each theory on the same directions;
- **excess loss** :math:`\frac12\sum_i \lambda_i \mathrm{Var}\,\theta_i` over the top-k
  directions (the mean loss above the minimum from the fluctuations, to second order), per
  sampler, and its epoch / with-replacement ratio (the seed reports a 62 % reduction of the
  loss fluctuations on CIFAR-10); standard errors combine the directions' in quadrature;
- **gap** below :math:`\lambda_{\rm cross}`: the median over directions of measured / theory
  for Kühn-Rosenow and for the weight-dependent-noise prediction
  (:mod:`sgdnoise.theory.net_noise`), and the share of the Kühn-Rosenow log-gap the latter
  closes, :math:`1 - |\log r_{\rm new}| / |\log r_{\rm KR}|` (negative: it widens it).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from sgdnoise.stats.fits import loglog_fit

#: Bootstrap resamples of the slope intervals.
BOOTSTRAP = 2000


def _theories(result: Any, sampling: str) -> dict[str, np.ndarray]:
    r = result.samplers[sampling]
    out = {"kuehn_rosenow": r.theory["var_theta"]}
    for kernel, curves in r.weight_dependent.items():
        out["weight_dependent" if kernel == "lagged" else f"weight_dependent_{kernel}_kernel"] = curves["var_theta"]
    return out


def _slopes(lam: np.ndarray, values: np.ndarray, use: np.ndarray, below: np.ndarray) -> dict[str, Any]:
    out = {}
    for side, mask in (("below", below), ("above", ~below)):
        fit = loglog_fit(lam[None], values[None], (use & mask)[None], n_boot=BOOTSTRAP)
        out[side] = {"exponent": fit["exponent"], "ci95": fit["ci"], "directions": fit["n"]}
    return out


def _excess(lam: np.ndarray, var: np.ndarray, stderr: np.ndarray | None = None) -> tuple[float, float | None]:
    value = float(0.5 * np.nansum(lam * var))
    return value, None if stderr is None else float(0.5 * np.sqrt(np.nansum((lam * stderr) ** 2)))


def _median_ratio(measured: np.ndarray, theory: np.ndarray, mask: np.ndarray) -> float | None:
    r = measured[mask] / theory[mask]
    r = r[np.isfinite(r) & (r > 0)]
    return float(np.median(r)) if r.size else None


def _gap(lam: np.ndarray, measured: np.ndarray, theories: dict[str, np.ndarray], mask: np.ndarray) -> dict[str, Any]:
    out: dict[str, Any] = {"directions": int(mask.sum())}
    for name, values in theories.items():
        out[f"median_measured_over_{name}"] = _median_ratio(measured, values, mask)
    kr, new = out.get("median_measured_over_kuehn_rosenow"), out.get("median_measured_over_weight_dependent")
    out["log_gap_closed"] = None if not kr or not new or kr == 1 else 1 - abs(np.log(new)) / abs(np.log(kr))
    return out


def analyse(result: Any) -> dict[str, Any]:
    """The ``analysis`` block of the summary (module docstring); empty without measured fluctuations."""
    measured = result.fluctuations()
    if result.curvature is None or not measured:
        return {}
    lam = result.curvature.eigenvalues
    below = lam < result.lambda_cross
    out: dict[str, Any] = {"slopes": {}, "excess_loss": {}, "gap_below_lambda_cross": {}, "not_equilibrated": {},
                           "trending": {}}
    for sampling, fluct in measured.items():
        var, theories = fluct.var_theta.value, _theories(result, sampling)
        use = fluct.equilibrated
        out["slopes"][sampling] = {"measured": _slopes(lam, var, use, below),
                                   **{name: _slopes(lam, t, use, below) for name, t in theories.items()}}
        value, stderr = _excess(lam, var, fluct.var_theta.stderr)
        out["excess_loss"][sampling] = {"measured": value, "measured_stderr": stderr,
                                        **{name: _excess(lam, t)[0] for name, t in theories.items()}}
        out["gap_below_lambda_cross"][sampling] = {"equilibrated": _gap(lam, var, theories, below & use),
                                                   "all": _gap(lam, var, theories, below)}
        out["not_equilibrated"][sampling] = np.flatnonzero(~fluct.equilibrated).tolist()
        out["trending"][sampling] = np.flatnonzero(fluct.trending).tolist()
    out["mechanism"] = {sampling: _mechanism(r.late_phase.mechanism, below, r.weight_dependent.get("lagged"))
                        for sampling, r in result.samplers.items() if r.late_phase.mechanism is not None}
    if {"epoch", "with-replacement"} <= set(measured):
        out["excess_loss"]["ratio"] = _ratio(out["excess_loss"]["epoch"], out["excess_loss"]["with-replacement"])
    if "epoch" in measured:
        out["verdict"] = _verdict(out["gap_below_lambda_cross"]["epoch"])
    return out


def _verdict(gap: dict[str, Any]) -> str | None:
    """One sentence: how far epoch Var theta below lambda_cross is from each theory, and how much the new one closes."""
    which = "equilibrated" if gap["equilibrated"]["directions"] else "all"
    g = gap[which]
    kr, new = g.get("median_measured_over_kuehn_rosenow"), g.get("median_measured_over_weight_dependent")
    if kr is None or new is None:
        return None
    closed = g["log_gap_closed"]
    white, epoch = (g.get(f"median_measured_over_weight_dependent_{k}_kernel") for k in ("white", "epoch"))
    bounds = f" (bounds: white kernel {white:.3g}, epoch kernel {epoch:.3g})" if white and epoch else ""
    return (f"epoch sampling, {g['directions']} {which} directions below lambda_cross: median measured / theory "
            f"{kr:.3g} for Kuehn-Rosenow, {new:.3g} for the weight-dependent-noise theory{bounds}; it closes "
            + ("no part" if closed is None else f"{100 * closed:.0f} %") + " of the log-gap")


def _ratio(numerator: dict[str, Any], denominator: dict[str, Any]) -> dict[str, Any]:
    """Epoch / with-replacement excess loss; the measured one with a delta-method standard error."""
    out: dict[str, Any] = {}
    a, b = numerator["measured"], denominator["measured"]
    out["measured"] = a / b
    out["measured_stderr"] = a / b * float(np.hypot(numerator["measured_stderr"] / a,
                                                    denominator["measured_stderr"] / b))
    for name in ("kuehn_rosenow", "weight_dependent", "weight_dependent_white_kernel"):
        out[name] = numerator[name] / denominator[name] if name in numerator and name in denominator else None
    return out


def _mechanism(found: dict[str, Any], below: np.ndarray, lagged: dict[str, np.ndarray] | None) -> dict[str, Any]:
    """Per part of the trajectory noise: its variance summed over the directions below and above
    lambda_cross, the low-frequency ratio below; for the ``fluctuation`` part the same predicted by the
    lagged theory; the first-order check's medians."""
    from sgdnoise.experiments.net.mechanism import PARTS

    out: dict[str, Any] = {"steps": found["steps"], "segments": found["segments"],
                           "displacement_in_subspace": found.get("displacement_in_subspace")}
    for part in PARTS:
        variance, ratio = found[part]["variance"], found[part]["low_frequency_ratio"]
        out[part] = {"variance_below": float(variance.value[below].sum()),
                     "variance_above": float(variance.value[~below].sum()),
                     "low_frequency_ratio_below": None if ratio is None else float(ratio.value),
                     "low_frequency_ratio_below_stderr": None if ratio is None else float(ratio.stderr)}
    if lagged is not None and "noise_variance" in lagged:
        out["fluctuation"]["predicted_variance_below"] = float(lagged["noise_variance"][below].sum())
        out["fluctuation"]["predicted_variance_above"] = float(lagged["noise_variance"][~below].sum())
        out["fluctuation"]["predicted_low_frequency_ratio_below"] = float(
            lagged["noise_low_frequency"][below].sum() / lagged["noise_variance"][below].sum()) if below.any() else None
    check = found.get("linear_check")
    if check is not None:
        for name, values in check.items():
            for side, mask in (("below", below), ("above", ~below)):
                out[f"{name}_median_{side}"] = float(np.nanmedian(values[mask])) if mask.any() else None
    return out
