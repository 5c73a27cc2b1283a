"""Where a study lives says what it is: a URL with a scheme is never taken for a journal file (and no password
reaches a path, a message or a file name)."""

from __future__ import annotations

import socket

from study.cli import main
from study.storage.urls import is_journal
from tests.messages import assert_not_says, assert_says


def test_a_url_with_a_scheme_is_never_a_journal_file(tmp_path, write_study_config, monkeypatch,
                                                      capsys) -> None:
    assert is_journal("studies.log") and is_journal("runs/a.journal") and is_journal("journal:///abs/a.log")
    assert not is_journal("postgresql://u:pw@h/db?application_name=x.log")
    assert not is_journal("sqlite:///studies.log")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket is closed
    url = f"postgresql://study:Zq7UrlSecret@127.0.0.1:{port}/studies?application_name=x.log"
    path = write_study_config(url=url, storage="connect_attempts = 1")
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--config", str(path), "--quiet"]) == 2  # PostgreSQL was asked, and is not there
    captured = capsys.readouterr()
    assert_says(captured.err, "postgresql://study:***@127.0.0.1")
    assert_not_says(captured.out + captured.err, "Zq7UrlSecret")
    assert not [p for p in tmp_path.rglob("*") if "Zq7UrlSecret" in str(p) or p.suffix == ".log"]
