"""The report of a real run (five searched parameters, baselines, per-query NDCG, examples) as a reader sees
it: headless Chromium at a laptop and a desktop width, a screenshot taken, and the page checked: nothing wider
than the window (no sideways scrolling), every figure drawn inside its section, no JavaScript error."""

from __future__ import annotations

import shutil
import struct
import time
from pathlib import Path

import pytest

from study.cli import main

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(CHROMIUM is None or CHROMEDRIVER is None,
                                 reason="needs chromium and chromedriver (Debian: chromium chromium-driver)")]

FIVE = ('"model.dropout" = { low = 0.0, high = 0.3 }\n"train.weight_decay" = { low = 0.0, high = 0.1 }\n'
        '"train.epochs" = { low = 1, high = 3 }\n')


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory, study_toml_in) -> Path:
    tmp = tmp_path_factory.mktemp("browser-report")
    config = study_toml_in(tmp, tail=FIVE)
    assert main(["run", "--config", str(config), "--quiet", "--n-trials", "4",
                 "--set", "pruner.name=none"]) == 0
    out = tmp / "out"
    out.mkdir()
    assert main(["report", "--name", "t", "--storage", f"sqlite:///{tmp / 'studies.db'}", "--out", str(out),
                 "--device", "cpu"]) == 0
    return out / "t.html"


def _chrome(width: int, height: int):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update"):
        options.add_argument(flag)
    options.binary_location = CHROMIUM
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",  # the page's own viewport, not the window's
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
    return driver


def _png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", header[16:24])


GEOMETRY = """
const sections = {};
for (const s of document.querySelectorAll('section')) sections[s.id] = s.getBoundingClientRect().right;
return {
  doc: document.documentElement.scrollWidth, window: window.innerWidth,
  viewport: document.documentElement.clientWidth,  // the window less its vertical scrollbar
  figures: Array.from(document.querySelectorAll('.js-plotly-plot')).map(p => ({
    section: p.closest('section').id, right: p.getBoundingClientRect().right,
    width: p.getBoundingClientRect().width, \
drawn: p.querySelectorAll('.main-svg .plot, .main-svg .trace').length,
    svg: p.querySelector('.main-svg') ? p.querySelector('.main-svg').getBoundingClientRect().width : 0})),
  sections: sections,
};
"""


@pytest.mark.parametrize("width", [1400, 1024, 820])
def test_the_report_fits_the_window_and_draws_every_figure(report, tmp_path, width) -> None:
    page = report.read_text()
    n_figures = page.count('class="plotly-graph-div"')
    # history, importances, parallel, 2 x slices, curves, timeline, comparison, per-query
    assert n_figures >= 9
    driver = _chrome(width, 900)
    try:
        driver.get(report.as_uri())
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and driver.execute_script(
                "return document.querySelectorAll('.js-plotly-plot .main-svg').length") < n_figures:
            time.sleep(0.2)
        time.sleep(0.5)  # responsive figures settle on their box's width
        geometry = driver.execute_script(GEOMETRY)
        shot = tmp_path / f"report-{width}.png"
        assert driver.save_screenshot(str(shot))
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    finally:
        driver.quit()
    assert _png_size(shot) == (width, 900)
    assert errors == []
    assert geometry["window"] == width and geometry["viewport"] > width - 30, geometry
    assert geometry["doc"] == geometry["viewport"], geometry  # no sideways scrolling
    assert len(geometry["figures"]) == n_figures
    for figure in geometry["figures"]:
        assert figure["drawn"] > 0, figure  # plotly drew its plot area
        assert 200 < figure["svg"] <= figure["width"] + 1, figure
        assert figure["right"] <= geometry["sections"][figure["section"]] + 1, figure  # inside its section
