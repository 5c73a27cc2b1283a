"""The report and the dashboard in a real browser (headless Chromium), on a real tiny study; the dashboard
serving while a worker writes to the same SQLite file; the report of a 3,000-trial study."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import optuna
import pytest

from study.cli import main
from tests.messages import assert_not_says, assert_says

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
browser_needed = pytest.mark.skipif(CHROMIUM is None or CHROMEDRIVER is None,
                                    reason="needs chromium and chromedriver (Debian: chromium "
                                           "chromium-driver)")


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory: pytest.TempPathFactory, study_toml_in) -> dict:
    tmp = tmp_path_factory.mktemp("report-study")
    path = study_toml_in(tmp)
    # no pruning: three complete trials, so that every search figure (importances included) can be drawn
    assert main(["run", "--config", str(path), "--quiet", "--set", "pruner.name=none"]) == 0
    return {"config": path, "storage": f"sqlite:///{tmp / 'studies.db'}", "runs": tmp / "runs", "tmp": tmp}


@pytest.fixture
def chrome():
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("needs chromium and chromedriver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1400,900"):
        options.add_argument(flag)
    options.binary_location = CHROMIUM
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def _wait(predicate, timeout: float = 60.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _severe(driver) -> list[dict]:
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def test_study_note_and_trial_artifacts(tiny_study) -> None:
    from optuna_dashboard import get_note

    study = optuna.load_study(study_name="t", storage=tiny_study["storage"])
    note = get_note(study)
    assert "Search space" in note and "train.head_lr" in note and "| test |" in note
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    metas = optuna.artifacts.get_all_artifact_meta(complete[0], storage=study._storage)
    assert len(metas) == 1 and metas[0].mimetype == "image/svg+xml"
    svg = (tiny_study["runs"] / "artifacts" / metas[0].artifact_id).read_text()
    assert svg.startswith("<svg") and "per-query" in svg
    # a resumed run rewrites the note with the baselines, unless the user edited it
    assert main(["run", "--config", str(tiny_study["config"]), "--quiet"]) == 0
    assert "behaviour only" in get_note(study)


@browser_needed
def test_report_renders_its_charts_without_javascript_errors(tiny_study, chrome) -> None:
    from selenium.webdriver.common.by import By

    out = tiny_study["tmp"] / "report.html"
    storage = tiny_study["storage"]
    assert main(["report", "--name", "t", "--storage", storage, "--out", str(out), "--device", "cpu"]) == 0
    page = out.read_text()
    assert "<script src=" not in page and "Per-query NDCG" in page and "Example test queries" in page
    n_figures = page.count('class="plotly-graph-div"')
    assert n_figures >= 8  # 6 search figures + test comparison + per-query distribution
    assert "Not drawn" not in page.split('id="importances"')[0]  # the history at least
    chrome.get(out.as_uri())
    _wait(lambda: len(chrome.find_elements(By.CSS_SELECTOR, ".js-plotly-plot .main-svg")) >= n_figures,
          what="plotly charts")
    assert len(chrome.find_elements(By.CSS_SELECTOR, ".js-plotly-plot")) == n_figures
    assert _severe(chrome) == []


def test_report_redacts_storage_passwords(tiny_study) -> None:
    from study.report.build import build_report

    study = optuna.load_study(study_name="t", storage=tiny_study["storage"])
    out = build_report(study, out=tiny_study["tmp"] / "r.html", storage_url="postgresql://ann:s3cret@db/studies")
    page = out.read_text()
    assert "s3cret" not in page and "postgresql://ann:***@db/studies" in page


def test_report_of_a_3000_trial_study_stays_small() -> None:
    from optuna.distributions import CategoricalDistribution, FloatDistribution
    from optuna.trial import TrialState, create_trial

    from study.report.build import build_report

    rng = np.random.default_rng(0)
    dists = {"train.head_lr": FloatDistribution(1e-4, 1e-2, log=True),
             "train.loss": CategoricalDistribution(["listnet", "ranknet"]),
             "model.dropout": FloatDistribution(0, 0.3)}
    study = optuna.create_study(direction="maximize", study_name="big")
    start = dt.datetime(2026, 1, 1)
    trials = []
    for i in range(3000):
        pruned = bool(rng.random() < 0.3)
        curve = {e: float(0.8 + 0.02 * e + rng.normal(0, 0.01)) for e in range(1, 2 if pruned else 5)}
        t = create_trial(state=TrialState.PRUNED if pruned else TrialState.COMPLETE,
                         value=None if pruned else max(curve.values()), distributions=dists,
                         params={"train.head_lr": float(10 ** rng.uniform(-4, -2)),
                                 "train.loss": str(rng.choice(["listnet", "ranknet"])),
                                 "model.dropout": float(rng.uniform(0, 0.3))}, intermediate_values=curve)
        t.datetime_start, t.datetime_complete = (start + dt.timedelta(minutes=i),
                                                 start + dt.timedelta(minutes=i + 1))
        trials.append(t)
    study.add_trials(trials)
    # its time: bench/timings.py
    out = build_report(study, out=Path(os.environ["STUDY_CACHE_DIR"]) / "big.html")
    page = out.read_text()
    assert out.stat().st_size < 10e6
    assert "Not drawn" not in page.split('id="ranking"')[0]
    assert "the best 100 complete trials" in page and "the 500 most recent trials" in page


def _get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.status, response.read()


@browser_needed
def test_dashboard_shows_the_trials_while_a_worker_writes(tiny_study, chrome) -> None:
    from selenium.webdriver.common.by import By

    from study.dashboard.server import free_port

    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    dashboard = subprocess.Popen(
        [sys.executable, "-m", "study", "dashboard", "--storage", tiny_study["storage"], "--port", str(port),
         "--artifacts", str(tiny_study["runs"] / "artifacts")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tiny_study["tmp"])
    base = f"http://127.0.0.1:{port}/"
    worker = None
    try:
        def answers() -> bool:
            assert dashboard.poll() is None, dashboard.stderr.read()
            try:
                return _get(base + "api/studies")[0] == 200
            except OSError:
                return False

        _wait(answers, what="the dashboard to answer")
        # A worker runs one more trial in the same SQLite file while the dashboard is read and written hard.
        worker = subprocess.Popen(
            [sys.executable, "-m", "study", "run", "--config", str(tiny_study["config"]), "--n-trials", "4",
             "--quiet"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tiny_study["tmp"])
        errors: list[str] = []
        stop = threading.Event()
        study = optuna.load_study(study_name="t", storage=tiny_study["storage"])
        first = study.trials[0]

        def poll() -> None:  # reads as fast as it can, and writes a trial note through the dashboard
            version = 0
            while not stop.is_set():
                try:
                    for path in ("api/studies", f"api/studies/{study._study_id}?after=0"):
                        status, _ = _get(base + path)
                        if status != 200:
                            errors.append(f"{path}: {status}")
                    version += 1
                    request = urllib.request.Request(
                        base + f"api/studies/{study._study_id}/{first._trial_id}/note", method="PUT",
                        data=json.dumps({"version": version, "body": f"checked {version} times"}).encode(),
                        headers={"Content-Type": "application/json"})
                    with urllib.request.urlopen(request, timeout=30) as response:
                        if response.status not in (200, 204):
                            errors.append(f"note: {response.status}")
                except Exception as exc:  # noqa: BLE001 - any failure is what this test looks for
                    errors.append(repr(exc))
                time.sleep(0.02)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        chrome.get(base + f"dashboard/studies/{study._study_id}/trials")
        body = lambda: chrome.find_element(By.TAG_NAME, "body").text
        _wait(lambda: "t (id=" in body() and "Trial 0" in body() and "Trial 2" in body(),
              what="the trial list")
        assert "Artifacts" in body()
        assert _severe(chrome) == []
        trial = next(t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE)
        meta = optuna.artifacts.get_all_artifact_meta(trial, storage=study._storage)[0]
        status, svg = _get(base + f"artifacts/{study._study_id}/{trial._trial_id}/{meta.artifact_id}")
        assert status == 200 and svg.startswith(b"<svg")
        _, err = worker.communicate(timeout=240)
        stop.set()
        poller.join(timeout=30)
        assert worker.returncode == 0, err
        assert errors == []
        assert_not_says(err.lower(), "locked")
        notes = study._storage.get_study_system_attrs(study._study_id)
        assert any(str(v).startswith("checked")
                   for k, v in notes.items() if f":{first._trial_id}:note_str" in k)
        assert sum(t.state.is_finished()
                   for t in optuna.load_study(study_name="t", storage=tiny_study["storage"])
                   .trials) >= 4
        chrome.refresh()
        _wait(lambda: "Trial 3" in body(), what="the new trials in the dashboard")
    finally:
        if worker is not None and worker.poll() is None:
            worker.kill()
        dashboard.send_signal(signal.SIGTERM)
        stdout, stderr = dashboard.communicate(timeout=30)
    assert dashboard.returncode == 0, stderr
    assert_says(stdout, f"at http://127.0.0.1:{port}/")
    assert_not_says(stderr.lower(), "locked")
