"""``sgdnoise report``: the HTML page renders in headless Chromium with every figure decoded and every table.

Chromium (Debian's ``chromium``) is installed by the fixture when missing; the test is skipped,
saying why, only when that install fails.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from sgdnoise.sweeps import SweepSpec, run_sweep

from sweep_helpers import tiny_spec

#: Appended to a copy of the page: once loaded, writes what loaded into the DOM.
PROBE = """<script>window.addEventListener('load', () => { const im = [...document.images];
document.body.insertAdjacentHTML('beforeend', '<pre id="probe">' + JSON.stringify({images: im.length,
loaded: im.filter(i => i.complete && i.naturalWidth > 0).length,
tables: [...document.querySelectorAll('table')].map(t => t.dataset.table)}) + '</pre>'); });</script>"""


@pytest.fixture(scope="session")
def chromium():
    if shutil.which("chromium") is None:
        try:
            subprocess.run(["apt-get", "update"], check=True, capture_output=True, timeout=600)
            subprocess.run(["apt-get", "install", "-y", "chromium"], check=True, capture_output=True, timeout=900)
        except (OSError, subprocess.SubprocessError) as exc:
            pytest.skip(f"headless Chromium is not installed and `apt-get install chromium` failed: {exc}")
    path = shutil.which("chromium")
    if path is None:
        pytest.skip("apt-get install chromium ran but no `chromium` is on PATH")
    return path


def render(chromium, page, tmp_path):
    probe = tmp_path / f"probe-{page.name}"
    probe.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    dom = subprocess.run([chromium, "--headless", "--disable-gpu", "--no-sandbox", "--virtual-time-budget=10000",
                          "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120).stdout
    found = re.findall(r'<pre id="probe">(\{.*?\})</pre>', dom)
    assert found, f"the page did not load in Chromium: {dom[:500]}"
    return json.loads(found[0])


def test_linear_result_page(chromium, tmp_path, run_cli):
    out = tmp_path / "linear"
    status, _, err = run_cli("linear", "--N", 6, "--P", 24, "--steps", 300, "--burn-in", 100, "--replicas", 4,
                             "--out", out, "--no-progress")
    assert status == 0, err
    status, stdout, _ = run_cli("report", out)
    assert status == 0 and (tmp_path / "linear.html").is_file()
    seen = render(chromium, tmp_path / "linear.html", tmp_path)
    assert seen["images"] == len(list(out.glob("*.png"))) >= 2 and seen["loaded"] == seen["images"]
    assert set(seen["tables"]) == {"comparison:linear", "config:linear", "versions:linear"}
    text = (tmp_path / "linear.html").read_text()
    assert "kuehn-rosenow" in text and "http" not in text.replace("http://www.w3.org", "")


def test_sweep_page(chromium, tmp_path, run_cli):
    spec = SweepSpec.read(tiny_spec(tmp_path, seeds=2, batches="[2, 4]"))
    run_sweep(spec, tmp_path / "out", workers=2, progress=False)
    status, _, err = run_cli("report", tmp_path / "out")
    assert status == 0, err
    seen = render(chromium, tmp_path / "out" / "report.html", tmp_path)
    assert seen["images"] == 1 and seen["loaded"] == 1  # one swept key besides seed
    assert seen["tables"] == ["spec", "cells", "versions"]
