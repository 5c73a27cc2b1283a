"""``study dashboard`` reads its --storage URL as every other command does: ``journal:///abs/path.log`` (the
form the README and --help show) is an absolute path; a missing database or journal file is refused, not
created."""

from __future__ import annotations

import threading
import time
import urllib.request

import optuna
import pytest

from study.cli import main
from study.dashboard.server import serve
from study.storage.database import StorageConfig, build_storage
from tests.messages import assert_not_says, assert_says


def _serve_once(url: str, artifacts) -> bytes:
    ready: list[str] = []
    stop = threading.Event()
    server = threading.Thread(target=serve, kwargs={"storage_url": url, "port": 0, "artifacts": artifacts,
                                                    "on_ready": ready.append, "stop": stop}, daemon=True)
    server.start()
    try:
        deadline = time.monotonic() + 30
        while not ready and time.monotonic() < deadline and server.is_alive():
            time.sleep(0.05)
        assert ready, "the dashboard did not start"
        with urllib.request.urlopen(ready[0] + "api/studies", timeout=30) as response:
            assert response.status == 200
            return response.read()
    finally:
        stop.set()
        server.join(timeout=10)


def test_the_dashboard_serves_a_journal_file_given_as_in_the_readme(tmp_path) -> None:
    path = tmp_path / "shared" / "study.log"
    path.parent.mkdir()
    url = f"journal://{path}"  # journal:///tmp/.../study.log: three slashes, an absolute path
    assert url.startswith("journal:///") and not url.startswith("journal:////")
    study = optuna.create_study(study_name="j", storage=build_storage(StorageConfig(url=url)))
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    body = _serve_once(url, tmp_path / "artifacts")
    assert b'"study_name": "j"' in body.replace(b'":"', b'": "')


@pytest.mark.parametrize("url", ["journal://{tmp}/nope.log", "sqlite:///{tmp}/nope.db"])
def test_the_dashboard_refuses_a_missing_storage_file_and_creates_none(tmp_path, capsys, url) -> None:
    url = url.format(tmp=tmp_path)
    assert main(["dashboard", "--storage", url, "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert_says(err, f"{tmp_path}/nope")
    assert_not_says(err, "Traceback")
    assert list(tmp_path.iterdir()) == []
