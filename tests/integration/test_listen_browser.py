"""`mlkd listen` in a real browser: headless Chromium (Debian's) driven by Playwright."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from helpers.browser import ARTIFACTS, CHROMIUM_FLAGS, chromium, free_port

pytestmark = pytest.mark.slow  # notebooks, Ray or a browser: make test, not make test-fast


@pytest.fixture(scope="module")
def listen_page(micro_study):
    """One `mlkd listen` server for the module's tests."""
    study, _, _ = micro_study
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "mlkd_lib", "listen", "--study", str(study), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(url + "api", timeout=1)
                break
            except urllib.error.HTTPError:  # the server answers (voila forbids its /api): it is up
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(f"`mlkd listen` exited ({proc.returncode}): {proc.stdout.read().decode()[-3000:]}")
                time.sleep(0.5)
        else:
            pytest.fail(f"`mlkd listen` did not answer at {url} within a minute")
        yield url, chromium()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)


def _rows(page) -> dict[str, str]:
    rows = page.locator(".mlkd-predictions .mlkd-row")
    return {rows.nth(i).get_attribute("data-model"): rows.nth(i).get_attribute("data-probs")
            for i in range(rows.count())}


def test_listen_page_plays_audio_and_updates_predictions(listen_page):
    from playwright.sync_api import expect, sync_playwright
    url, chromium = listen_page
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS, headless=True)
        page = browser.new_page(viewport={"width": 1300, "height": 1400})
        page.goto(url, timeout=120_000)
        rows = page.locator(".mlkd-predictions .mlkd-row")
        expect(rows).to_have_count(5, timeout=120_000)  # teacher, the three students, baseline
        assert all(page.locator("audio").nth(i).get_attribute("src") for i in range(3))  # clean, noisy, enhanced
        status = page.locator(".mlkd-status")
        expect(status).to_contain_text("0 dB")
        first = _rows(page)
        assert set(first) == {"teacher", "student_unsup", "student_sup", "student_unsup_from_teacher", "baseline"}

        # another utterance, of another emotion: the true label and the predictions change
        utterance = page.locator("select").nth(3)
        options = utterance.locator("option").all_inner_texts()
        other = next(o for o in options if "_sad_" in o)
        utterance.select_option(label=other)
        expect(status).to_contain_text("updated in")
        expect(page.locator(".mlkd-predictions")).to_contain_text("true label: sad", timeout=30_000)
        second = _rows(page)
        assert second != first

        # the SNR slider, moved by keyboard as a person would: 0 dB → 20 dB
        handle = page.locator(".noUi-handle").first
        handle.focus()
        page.keyboard.press("ArrowRight")
        expect(status).to_contain_text("20 dB", timeout=30_000)
        expect(page.locator("text=noisy: babble 20 dB")).to_be_visible()
        third = _rows(page)
        assert third != second and all(third.values())
        took = status.inner_text()
        page.screenshot(path=str(ARTIFACTS / "listen.png"), full_page=True)
        browser.close()
    print(f"\nexplorer page: {took}; screenshot {ARTIFACTS / 'listen.png'}")


def test_explorer_shows_what_the_study_evaluated(micro_study):
    """The explorer's noisy audio and teacher probabilities are the study's own (batching aside), scaled by the
    teacher's temperature."""
    import numpy as np
    import pandas as pd
    import torch

    from mlkd_lib.data.conditions.families import Condition
    from mlkd_lib.data.dataset import NoisyPairDataset
    from mlkd_lib.explore.explorer import Explorer
    study, _, _ = micro_study
    ex = Explorer(study)
    pred = pd.read_csv(study / "folds" / "Ses01F" / "teacher" / "predictions.csv")
    t = torch.load(study / "folds" / "Ses01F" / "teacher" / "best.pt", weights_only=True)["temperature_scaling"]

    def scaled(row):  # softmax(ln p / T): the study's probabilities as the page shows them
        e = np.exp(np.log(row[["p_neu", "p_hap", "p_ang", "p_sad"]].to_numpy(float)) / t["temperature"])
        return e / e.sum()

    row = pred[(pred.noise == "factory") & (pred.snr_db == 0.0)].iloc[1]
    _, noisy, _, probs, notes = ex.compute("Ses01F", row.utt_id, "factory", 0.0)
    test = ex.fold_data("Ses01F").test.query("utt_id == @row.utt_id")
    ds = NoisyPairDataset(test, ex.bank, Condition("factory", 0.0), seed=ex.cfg.seed, level=ex.cfg.level)
    assert np.array_equal(noisy, ds[0]["noisy"])
    np.testing.assert_allclose(probs["teacher"], scaled(row), atol=1e-4)
    assert notes == [] and all(p is not None for p in probs.values())
    # a test-only condition heard on the page is the one the study scored
    chosen = [c for c in ex.signal_conditions if (c.family, c.severity) in {("reverb", 0.6), ("codec", 16.0)}]
    assert len(chosen) == 2
    for c in chosen:
        row = pred[(pred.condition == c.family) & (pred.severity == c.severity)].iloc[1]
        _, _, _, probs, _ = ex.compute("Ses01F", row.utt_id, "clean", None, c)
        np.testing.assert_allclose(probs["teacher"], scaled(row), atol=1e-4, err_msg=c.label)


def test_your_own_recording_through_the_page(listen_page, micro_study, tmp_path):
    """Upload a stereo 22.05 kHz FLAC, choose factory noise at 0 dB, read the five models' probabilities off
    the page and check them against the library's own computation; an unreadable file gives a message and
    the page keeps working."""
    import numpy as np
    import soundfile as sf
    from playwright.sync_api import expect, sync_playwright

    from mlkd_lib.config import load_config
    from mlkd_lib.data.manifest import read_manifest
    from mlkd_lib.explore.explorer import Explorer
    from mlkd_lib.explore.recording import analyse, decode

    url, chromium = listen_page
    study, _, _ = micro_study
    cfg = load_config(study / "config.json")
    speech = read_manifest(cfg.manifest_path).path.iloc[:2]
    x = np.concatenate([sf.read(p, dtype="float32")[0] for p in speech])
    recording = tmp_path / "my_voice.flac"
    from scipy.signal import resample_poly
    y = resample_poly(x, 441, 320).astype(np.float32)
    sf.write(recording, np.stack([y, 0.5 * y], 1), 22_050)
    (tmp_path / "broken.wav").write_bytes(b"RIFF....WAVEfmt not really")
    explorer = Explorer(study)
    view = analyse(explorer.models, "Ses01F", decode(recording.read_bytes(), recording.name), "factory", 0.0,
                   explorer.bank, cfg)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS, headless=True)
        page = browser.new_page(viewport={"width": 1300, "height": 1200})
        page.goto(url, timeout=120_000)
        expect(page.locator(".mlkd-predictions .mlkd-row")).to_have_count(5, timeout=120_000)
        page.get_by_text("Your recording").click()
        status = page.locator(".mlkd-upload-status")

        def upload(path):  # as a person does: the upload button, then the file dialog
            with page.expect_file_chooser() as chooser:
                page.locator(".widget-upload").click()
            chooser.value.set_files(str(path))

        upload(tmp_path / "broken.wav")
        expect(status).to_contain_text("Cannot use this file", timeout=60_000)
        upload(recording)
        page.locator(".mlkd-upload select").nth(1).select_option("factory")  # fold, then noise
        rows = page.locator(".mlkd-upload-predictions .mlkd-row")
        expect(rows).to_have_count(5, timeout=60_000)
        expect(status).to_contain_text("factory 0 dB")
        shown = {rows.nth(i).get_attribute("data-model"): np.array(rows.nth(i).get_attribute("data-probs").split(","),
                                                                   dtype=float) for i in range(5)}
        for model, probs in view.probabilities.items():
            np.testing.assert_allclose(shown[model], probs, atol=2e-6)
        page.screenshot(path=str(ARTIFACTS / "upload.png"), full_page=True)
        browser.close()
