"""``make lab`` as a student meets it: JupyterLab in a real browser, a slider that redraws.

JupyterLab runs headless on a free local port; Debian's Chromium, driven by Playwright,
opens a notebook whose cell offers a slider (``engine.widgets.explore``), runs it, moves the
slider with the keyboard and checks that the figure below it changed. The screenshots are
kept in ``data/test-artifacts/``. Without a browser the test is skipped with one line that
says what to install.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from sae_failures.engine.paths import data_dir

CELL = """from sae_failures.engine.widgets import explore, slider
from sae_failures.studies.gated.plots import shrinkage_1d_explorer

box = explore(shrinkage_1d_explorer, lam=slider("penalty λ", 1.0, 0.0, 2.0, 0.5))"""


def browser() -> str | None:
    return next((found for name in ("chromium", "chromium-browser") if (found := shutil.which(name))), None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_server(url: str, timeout: float = 90) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"JupyterLab did not answer at {url} within {timeout:.0f} s")


@pytest.fixture
def lab(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(CELL)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "slider.ipynb")
    port, token = free_port(), "sae-failures-test"
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={tmp_path}", "--allow-root",
         "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "cfg")})
    try:
        wait_for_server(f"http://127.0.0.1:{port}/api/status?token={token}")
        yield f"http://127.0.0.1:{port}/lab/tree/slider.ipynb?token={token}"
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_slider_in_jupyterlab_redraws_its_figure(lab):
    if browser() is None:
        pytest.skip("no Chromium: `apt-get install chromium` (Debian), or run `make test`, which installs it")
    sync_api = pytest.importorskip("playwright.sync_api", reason="no Playwright: `pip install playwright`")
    artifacts = data_dir() / "test-artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as play:
        chromium = play.chromium.launch(executable_path=browser(), args=["--no-sandbox"])
        page = chromium.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(lab)
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
        page.get_by_text("| Idle").wait_for(timeout=120_000)  # the status bar: the kernel is up
        page.click(".jp-Cell .jp-InputArea-editor")
        page.keyboard.press("Shift+Enter")
        handle = page.wait_for_selector(".widget-slider .noUi-handle", state="attached", timeout=120_000)
        figures = page.locator(".jp-OutputArea-output img")
        figures.first.wait_for(timeout=120_000)
        page.screenshot(path=str(artifacts / "lab-slider-before.png"))
        before = [figures.nth(i).get_attribute("src") for i in range(figures.count())]
        handle.focus()
        page.keyboard.press("ArrowRight")
        page.wait_for_function(
            "before => [...document.querySelectorAll('.jp-OutputArea-output img')].some(i => !before.includes(i.src))",
            arg=before, timeout=60_000)
        page.screenshot(path=str(artifacts / "lab-slider-after.png"))
        value = page.locator(".widget-slider .widget-readout").first.inner_text()
        chromium.close()
    assert value.strip() == "1.50"  # one step of 0.5 from 1.0
    (artifacts / "lab-slider.json").write_text(json.dumps({"readout": value.strip()}) + "\n")
    assert Path(artifacts / "lab-slider-after.png").stat().st_size > 0
