"""``study dashboard``: optuna-dashboard on the study storage, bound to 127.0.0.1, with the artifact store.

Safe beside running SQLite workers (optuna-dashboard issue #545, "database is locked"): the dashboard opens
the storage through ``storage.database.build_storage``, exactly as the workers do. The database is in WAL
mode, every connection waits up to ``sqlite_timeout`` (60 s) for a lock instead of failing, and every
transaction begins with ``BEGIN IMMEDIATE``, so no transaction ever has to upgrade a read lock to a write lock
(the case in which SQLite answers "database is locked" at once, whatever the timeout): the dashboard's short
reads and note edits and the workers' writes simply take turns.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from study.dashboard.artifacts import artifact_store
from study.dashboard.note import refresh_study_notes
from study.errors import UserInputError
from study.storage.database import StorageConfig, open_storage
from study.storage.urls import redact

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_ARTIFACTS = "runs/artifacts"


class _ThreadedServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a browser's open connection must not keep Ctrl-C waiting


class _ThreadedServer6(_ThreadedServer):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # one line per request would drown the terminal
        logger.debug("%s %s", self.address_string(), format % args)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def make_app(storage_url: str, *, artifacts: str | Path = DEFAULT_ARTIFACTS,
             refresh_notes: bool = True) -> Any:
    """The optuna-dashboard WSGI app on ``storage_url`` (SQLite, PostgreSQL or journal file)."""
    # must_exist: a mistyped path would otherwise create an empty database and show no studies. The URL is
    # read as every other command reads it (journal:///abs/path.log is absolute, as in the README).
    storage = open_storage(StorageConfig(url=storage_url), must_exist=True, writes=False)
    if refresh_notes:
        try:
            refresh_study_notes(storage)
        except Exception as exc:  # noqa: BLE001 - a note is informational; the dashboard must still start
            logger.warning("could not refresh study notes: %s", redact(str(exc)))
    from optuna_dashboard import wsgi  # ~1.3 s to import: only the app itself needs it

    return wsgi(storage, artifact_store=artifact_store(artifacts))


def serve(
    storage_url: str,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    artifacts: str | Path = DEFAULT_ARTIFACTS,
    on_ready: Callable[[str], None] | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Serve until Ctrl-C (or ``stop`` is set); ``on_ready`` gets the URL once the socket listens."""
    app = make_app(storage_url, artifacts=artifacts)
    try:
        server_class = _ThreadedServer6 if ":" in host else _ThreadedServer
        server = make_server(host, port, app, server_class=server_class, handler_class=_QuietHandler)
    except OSError as exc:
        raise UserInputError(f"Cannot listen on {host}:{port} ({exc.strerror or exc}); pick another --port "
                             "(0 picks a free one) or stop what is using it.") from None
    bound_port = server.server_address[1]
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{bound_port}/"
    if on_ready is not None:
        on_ready(url)
    if stop is not None:
        threading.Thread(target=lambda: (stop.wait(), server.shutdown()), daemon=True).start()
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()


def free_port(host: str = DEFAULT_HOST) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])

