"""``sgdnoise linear`` and ``sgdnoise demo``: outputs, schema, bad input."""
import json

import numpy as np
import pytest

from sgdnoise.dynamics import simulator


def test_linear_writes_summary_and_figures(run_cli, tmp_path):
    out = tmp_path / "run"
    status, stdout, _ = run_cli("linear", "--N", 8, "--P", 40, "--lr", 0.2, "--batch", 4,
                                "--momentum", 0.5, "--sampling", "epoch", "--steps", 3000,
                                "--burn-in", 300, "--replicas", 8, "--max-lag", 5, "--outputs", 2,
                                "--snapshot-every", 100,
                                "--out", out, "--no-progress")
    assert status == 0, stdout
    summary = json.loads((out / "summary.json").read_text())
    d = 16
    assert summary["status"] == "completed"
    assert summary["config"]["simulation"]["sampling"] == "epoch"
    assert summary["provenance"]["sgdnoise_version"]
    lam = np.array(summary["hessian_eigenvalues"])
    assert lam.shape == (d,) and np.all(np.diff(lam) >= 0)
    for key in ("var_theta", "var_v", "tau", "var_theta_stderr"):
        assert len(summary["measured"][key]) == d
    assert np.isfinite(summary["measured"]["loss_excess"])
    assert len(summary["noise_covariance_eigenvalues"]) == d
    assert "theory" in summary
    arrays = np.load(out / "arrays.npz")
    assert arrays["weight_covariance"].shape == (d, d)
    assert arrays["snapshots"].shape == (30, 8, d)
    assert arrays["v_autocovariance"].shape == (6, d)
    for name in ("fluctuations.png", "noise_autocorrelation.png", "fluctuations.pdf"):
        assert (out / name).stat().st_size > 1000


def _write_npz(path, **arrays):
    np.savez(path, **arrays)
    return path


@pytest.fixture
def data_files(tmp_path):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(30, 4)), rng.normal(size=30)
    bad = X.copy()
    bad[3, 2] = np.nan
    (tmp_path / "text.npz").write_text("not an archive")
    return {
        "good": _write_npz(tmp_path / "good.npz", X=X, y=y),
        "nan": _write_npz(tmp_path / "nan.npz", X=bad, y=y),
        "shape": _write_npz(tmp_path / "shape.npz", X=X, y=y[:20]),
        "noy": _write_npz(tmp_path / "noy.npz", X=X),
        "X3d": _write_npz(tmp_path / "x3d.npz", X=X[None], y=y),
        "text": tmp_path / "text.npz",
        "missing": tmp_path / "missing.npz",
    }


@pytest.mark.parametrize("args,needle", [
    (["--lr", "0"], "--lr"),
    (["--lr", "-1"], "--lr"),
    (["--lr", "nan"], "--lr"),
    (["--batch", "31", "--data", "good"], "--batch"),
    (["--batch", "0"], "--batch"),
    (["--momentum", "1"], "--momentum"),
    (["--momentum", "-0.1"], "--momentum"),
    (["--sampling", "shuffled"], "--sampling"),
    (["--steps", "0"], "--steps"),
    (["--replicas", "0"], "--replicas"),
    (["--N", "0"], "--N"),
    (["--lr", "abc"], "--lr"),
    (["--backend", "jax"], "--backend"),
    (["--backend", "torch", "--device", "cuda:7"], "--device"),
    (["--device", "cuda"], "--device"),
    (["--N", "5", "--data", "good"], "--N=5 contradicts"),
    (["--P", "31", "--data", "good"], "--P=31 contradicts"),
    (["--data", "missing"], "does not exist"),
    (["--data", "text"], "cannot read"),
    (["--data", "nan"], "NaN"),
    (["--data", "shape"], "same number of rows"),
    (["--data", "noy"], "missing 'y'"),
    (["--data", "X3d"], "x must have 2 dimensions"),
    (["--lr", "300"], "stability limit"),
])
def test_bad_input_is_one_line_exit_2_before_any_work(run_cli, tmp_path, data_files, args, needle):
    args = [str(data_files.get(a, a)) for a in args]
    out = tmp_path / "never"
    status, stdout, stderr = run_cli("linear", *args, "--out", out, "--no-progress")
    assert status == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], stderr
    assert "Traceback" not in stderr
    assert not out.exists()


def test_stability_limit_message_prints_the_limit(run_cli, tmp_path):
    status, _, stderr = run_cli("linear", "--N", 10, "--P", 40, "--lr", 100, "--momentum", 0.5,
                                "--out", tmp_path / "x")
    assert status == 2 and "lr must be <" in stderr and "2(1 + momentum)" in stderr


def test_diverging_run_keeps_its_measurements(run_cli, tmp_path, monkeypatch):
    monkeypatch.setattr(simulator, "CHUNK_BYTES", 4000)  # several chunks before the blow-up
    rng = np.random.default_rng(0)
    X = rng.normal(size=(10, 3)) * 0.3
    X[0] = [6.0, 0.0, 0.0]
    data = _write_npz(tmp_path / "spiky.npz", X=X, y=rng.normal(size=10))
    lam_max = np.linalg.eigvalsh(X.T @ X / 10).max()
    out = tmp_path / "run"
    status, _, stderr = run_cli("linear", "--data", data, "--batch", 1, "--lr", 1.8 / lam_max,
                                "--steps", 400_000, "--burn-in", 0, "--replicas", 2, "--max-lag", 2,
                                "--out", out, "--no-progress")
    summary = json.loads((out / "summary.json").read_text())
    assert status == 1 and "diverged at step" in stderr
    assert summary["status"].startswith("diverged at step")
    assert summary["measured"]["steps_measured"] > 0


def test_fewer_examples_than_weights_is_reported_not_compared(run_cli, tmp_path):
    """P < N: interpolation, no noise at w*; the run completes and says why there is nothing to compare."""
    out = tmp_path / "run"
    status, stdout, _ = run_cli("linear", "--N", 20, "--P", 10, "--steps", 2000, "--burn-in", 10,
                                "--replicas", 4, "--out", out, "--no-progress")
    summary = json.loads((out / "summary.json").read_text())
    assert status == 0 and "interpolated" in summary["theory"]["note"] and "interpolated" in stdout
    assert np.max(summary["measured"]["var_theta"]) < 1e-20


def test_demo_writes_both_samplers_and_comparison_figures(run_cli, tmp_path):
    out = tmp_path / "demo"
    status, stdout, _ = run_cli("demo", "--N", 10, "--P", 20, "--lr", 0.5, "--steps", 2000,
                                "--burn-in", 200, "--replicas", 4, "--out", out, "--no-progress")
    assert status == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["runs"] == {"epoch": "epoch/summary.json", "with-replacement": "with-replacement/summary.json"}
    for sub in ("epoch", "with-replacement"):
        run = json.loads((out / sub / "summary.json").read_text())
        assert run["config"]["simulation"]["sampling"] == sub
        assert "kuehn-rosenow" in run["theory"]
    assert (out / "fluctuations.png").exists() and (out / "noise_autocorrelation.png").exists()
    assert "theory vs measurement" in stdout


def test_reproduce_lists_and_refuses_unknown_names(run_cli):
    status, stdout, _ = run_cli("reproduce", "--list")
    assert status == 0 and "gross-fig3" in stdout and "kuehn-rosenow-quadratic" in stdout
    status, _, stderr = run_cli("reproduce", "gross-fig99")
    assert status == 2 and "NAME must be one of" in stderr and len(stderr.strip().splitlines()) == 1


def test_epoch_sampling_reports_the_epoch_closure(run_cli, tmp_path, monkeypatch):
    """Epoch sampling on linear regression (K = 1): theory.epoch with var_theta, var_v, tau, compared;
    a problem whose estimated closure cost is above the limit gets a skipped message instead."""
    from sgdnoise.experiments.linear import comparison

    args = ("linear", "--N", 4, "--P", 16, "--lr", 0.3, "--batch", 4, "--momentum", 0.3, "--sampling", "epoch",
            "--steps", 4000, "--burn-in", 400, "--replicas", 4, "--max-lag", 5, "--no-progress")
    status, stdout, _ = run_cli(*args, "--out", tmp_path / "a")
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    epoch = summary["theory"]["epoch"]
    assert status == 0 and epoch["exact_here"] is False
    for key in ("var_theta", "var_v", "tau"):
        assert len(epoch[key]) == 4 and np.all(np.isfinite(epoch[key]))
    assert np.isclose(epoch["trace"], np.sum(epoch["var_theta"]))
    assert "trace_relative_error" in summary["theory"]["comparison"]["epoch"]
    assert "§3k" in summary["theory"]["note"] and "epoch" in stdout
    monkeypatch.setattr(comparison, "EPOCH_MAX_SECONDS", 1e-9)
    status, stdout, _ = run_cli(*args, "--out", tmp_path / "b")
    summary = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert status == 0 and summary["theory"]["epoch"]["error"].startswith("skipped: the compact epoch closure would take")


def test_epoch_theory_when_the_batch_size_does_not_divide_p(run_cli, tmp_path):
    # P = 18, S = 4: two examples dropped per epoch. Method epoch is the closure without §3h's start
    # correction (it refused the run before) and the output says why.
    args = ("linear", "--N", 4, "--P", 18, "--lr", 0.3, "--batch", 4, "--sampling", "epoch",
            "--steps", 2000, "--burn-in", 200, "--replicas", 2, "--max-lag", 5, "--no-progress")
    status, stdout, _ = run_cli(*args, "--out", tmp_path / "a")
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    epoch = summary["theory"]["epoch"]
    assert status == 0 and "error" not in epoch and np.all(np.isfinite(epoch["var_theta"]))
    assert "start correction is not applied" in epoch["note"] and "2 examples are dropped" in stdout
    assert epoch["start_correction"] is False
