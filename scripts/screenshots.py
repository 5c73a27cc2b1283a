"""Render a study's report and its optuna-dashboard page in headless Chromium and save PNG screenshots.

    python scripts/screenshots.py --storage sqlite:////tmp/shots/studies.db --name demo --out-dir docs

writes docs/report.png (the report's ranking section), docs/dashboard.png (the study page of optuna-dashboard
served by ``study dashboard``) and docs/dashboard-note.png (the study's note: data, search space, the test
comparison); ``--full-page`` also writes docs/report-full.png, the whole report in one image. Each report
shot says whether the page is wider than the window (it must not be). Needs chromium and chromedriver
(Debian: chromium, chromium-driver) and selenium.
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHROME_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--hide-scrollbars")


def browser(width: int, height: int):  # -> selenium WebDriver
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--window-size={width},{height}")
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"),
                              options=options)
    # The window size includes the (invisible) browser frame: pin the page's viewport itself.
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
    return driver


def start_dashboard(storage: str, artifacts: str, port: int) -> tuple[subprocess.Popen, str]:
    """``study dashboard`` in a subprocess; returns it and its URL once it answers."""
    import urllib.request

    cmd = [sys.executable, "-m", "study", "dashboard", "--storage", storage, "--port", str(port),
           "--artifacts", artifacts]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"study dashboard exited with {proc.returncode}: {proc.stderr.read()}")
        try:
            with urllib.request.urlopen(url + "api/studies", timeout=2) as response:
                if response.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.3)
    proc.terminate()
    raise RuntimeError("study dashboard did not answer within 60 s")


def shoot_report(driver, report: Path, png: Path, section: str, *, full_png: Path | None = None) -> dict:
    """The report scrolled to ``section`` (and, with ``full_png``, the whole page); returns the page's
    widths."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(report.resolve().as_uri())
    n_figures = report.read_text(encoding="utf-8").count('class="plotly-graph-div"')
    WebDriverWait(driver, 60).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".main-svg")) >= n_figures)
    time.sleep(1.0)
    widths = driver.execute_script("return {page: document.documentElement.scrollWidth, "
                                   "window: document.documentElement.clientWidth}")
    if full_png is not None:
        height = driver.execute_script("return document.documentElement.scrollHeight")
        shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": widths["window"], "height": height, "scale": 1}})
        full_png.write_bytes(base64.b64decode(shot["data"]))
    driver.execute_script(f"document.getElementById({section!r}).scrollIntoView();")
    time.sleep(1.0)
    driver.save_screenshot(str(png))
    return widths


def shoot_dashboard(driver, url: str, study_id: int, name: str, png: Path, note_png: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(f"{url}dashboard/studies/{study_id}")
    WebDriverWait(driver, 60).until(lambda d: name in d.find_element(By.TAG_NAME, "body").text)
    WebDriverWait(driver, 60).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".main-svg")) > 1)
    time.sleep(2.0)  # let the charts finish their transitions
    driver.save_screenshot(str(png))
    driver.get(f"{url}dashboard/studies/{study_id}/note")
    WebDriverWait(driver, 60).until(lambda d: "Note" in d.find_element(By.TAG_NAME, "body").text)
    time.sleep(1.0)
    driver.save_screenshot(str(note_png))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--storage", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--out-dir", default=str(ROOT / "docs"))
    parser.add_argument("--artifacts", default="runs/artifacts", help="artifact folder of the study's runs")
    parser.add_argument("--report-section", default="ranking", help="report section to show (an anchor id)")
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=900)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--full-page", action="store_true",
                        help="also write report-full.png (the whole report)")
    args = parser.parse_args(argv)

    from study.dashboard.server import free_port
    from study.report.build import build_report
    from study.runtime.studies import load_existing

    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    study = load_existing(args.name, args.storage)
    with tempfile.TemporaryDirectory() as tmp:
        report = build_report(study, out=Path(tmp) / "report.html", storage_url=args.storage, device="cpu")
        proc, url = start_dashboard(args.storage, str(Path(args.artifacts).resolve()),
                                    args.port or free_port())
        driver = browser(args.width, args.height)
        written = [out_dir / "report.png", out_dir / "dashboard.png", out_dir / "dashboard-note.png"]
        full = out_dir / "report-full.png" if args.full_page else None
        try:
            widths = shoot_report(driver, report, written[0], args.report_section, full_png=full)
            shoot_dashboard(driver, url, study._study_id, args.name, written[1], written[2])
        finally:
            driver.quit()
            proc.terminate()
            proc.wait(timeout=30)
    print("wrote " + ", ".join(str(p) for p in written + ([full] if full else [])))
    if widths["page"] > widths["window"]:
        print(f"warning: the report is {widths['page']} px wide in a {widths['window']} px window",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
