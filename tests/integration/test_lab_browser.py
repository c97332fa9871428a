"""Stepping through the notebooks in JupyterLab, as a person would: the test starts a JupyterLab
(127.0.0.1, a temporary port, a token), and Debian's Chromium, driven by Playwright, opens a
notebook there and runs Run ▸ Run All Cells."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

import pytest
from helpers.browser import ARTIFACTS, CHROMIUM_FLAGS, chromium, free_port

from mlkd_lib.paths import NOTEBOOKS

pytestmark = pytest.mark.slow  # notebooks, Ray or a browser: make test, not make test-fast


@pytest.fixture(scope="module")
def lab(micro_study, tmp_path_factory):
    """A JupyterLab over a project root of its own (``MLKD_ROOT``): copies of the notebooks and, under
    ``results/``, the micro study, so nothing the test does touches the checkout."""
    study, _, _ = micro_study
    root = tmp_path_factory.mktemp("project")
    shutil.copytree(NOTEBOOKS, root / "notebooks")
    (root / "results").mkdir()
    (root / "results" / "micro").symlink_to(study)
    port, token = free_port(), secrets.token_hex(16)
    log = (root / "jupyterlab.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
         f"--ServerApp.root_dir={root}", f"--IdentityProvider.token={token}",
         "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
         *(["--allow-root"] if os.geteuid() == 0 else [])],
        env=dict(os.environ, MLKD_ROOT=str(root)), cwd=root, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{url}api/status?token={token}", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail(f"JupyterLab did not start within 60 s: {(root / 'jupyterlab.log').read_text()[-2000:]}")
        yield url, token, chromium(), root
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def _run_all_cells(lab, notebook: str, screenshot: str):
    """Open ``notebook`` in JupyterLab, Run ▸ Run All Cells, wait until every cell has run; return
    the page (still open) and the seconds it took."""
    from playwright.sync_api import expect
    url, token, chromium, _ = lab
    page = _browser(lab).new_page(viewport={"width": 1400, "height": 1600})
    t0 = time.time()
    # ?reset: a fresh workspace, so no tab of an earlier test is restored beside this one
    page.goto(f"{url}lab/tree/notebooks/{notebook}?reset&token={token}", timeout=120_000)
    # the kernel has started and connected (the status bar says so), or Run All would find no kernel
    expect(page.locator(".jp-StatusBar-TextItem", has_text="(ipykernel) | Idle")).to_be_visible(timeout=120_000)
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
    # every code cell's prompt shows its execution count: "[3]:", none "[ ]:" or "[*]:"
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        page.wait_for_function("""() => {
            const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')];
            return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
        }""", timeout=240_000)
    finally:
        page.screenshot(path=str(ARTIFACTS / screenshot), full_page=True)  # also what a failure looked like
    took = time.time() - t0
    return page, took


_browsers = {}


def _browser(lab):
    from playwright.sync_api import sync_playwright
    if "browser" not in _browsers:
        _browsers["pw"] = sync_playwright().start()
        _browsers["browser"] = _browsers["pw"].chromium.launch(executable_path=lab[2], args=CHROMIUM_FLAGS,
                                                               headless=True)
    return _browsers["browser"]


@pytest.fixture(scope="module", autouse=True)
def _close_browser():
    yield
    if "browser" in _browsers:
        _browsers.pop("browser").close()
        _browsers.pop("pw").stop()


def _errors(page) -> list[str]:
    """Texts of outputs that report an exception (IPython's traceback) or a study that failed to open."""
    outputs = page.locator(".jp-OutputArea-output").all_inner_texts()
    return [o for o in outputs if "Traceback" in o or "Error" in o.split("\n")[0] or "Cannot open the study" in o]


def test_05_in_jupyterlab_shows_the_newest_study_with_players_and_every_model(lab):
    from playwright.sync_api import expect
    page, took = _run_all_cells(lab, "05_listen.ipynb", "lab_05_listen.png")
    rows = page.locator(".mlkd-predictions .mlkd-row")
    expect(rows).to_have_count(5, timeout=60_000)  # teacher, the three students, baseline
    assert {rows.nth(i).get_attribute("data-model") for i in range(5)} == {
        "teacher", "student_sup", "student_unsup", "student_unsup_from_teacher", "baseline"}
    audio = page.locator("audio")  # the Listen tab's clean, noisy and enhanced (then those of "Your recording")
    assert audio.count() >= 3 and all(audio.nth(i).get_attribute("src") for i in range(3))
    expect(page.locator(".jp-OutputArea-output", has_text="the newest under")).to_contain_text("results/micro")
    assert _errors(page) == []
    print(f"\n05 in JupyterLab: {took:.0f} s; screenshot {ARTIFACTS / 'lab_05_listen.png'}")


def test_01_in_jupyterlab_shows_its_player_and_spectrograms(lab):
    root = lab[3]
    nb = root / "notebooks" / "01_data_prep.ipynb"
    # as a person would for a quick look: the micro preset (seconds) instead of the demo's
    nb.write_text(nb.read_text().replace('preset = \\"demo\\"', 'preset = \\"micro\\"', 1))
    page, took = _run_all_cells(lab, "01_data_prep.ipynb", "lab_01_data_prep.png")
    assert page.locator(".jp-RenderedImage img").count() >= 2  # durations, noise spectrograms
    assert page.locator("audio").count() >= 2  # the mix player: clean and noisy
    assert _errors(page) == []
    # run by hand, 01 leaves its study where 02 → 05 will look for it
    assert (root / "results" / "micro-notebooks" / "data" / "done.json").is_file()
    assert (root / "data" / "micro" / "synthetic" / "manifest.csv").is_file()
    print(f"\n01 in JupyterLab: {took:.0f} s; screenshot {ARTIFACTS / 'lab_01_data_prep.png'}")
