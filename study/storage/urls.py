"""Storage URLs, in one place: which kind a URL is, the file behind a SQLite or journal URL, the engine URL
SQLAlchemy gets, and every password replaced by ``***`` wherever a URL is shown or stored."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

DEFAULT_STORAGE = "sqlite:///studies.db"
_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)(?P<pw>[^@\s]+)(?P<tail>@)")
_KEY_PASSWORD = re.compile(r"(?P<head>\bpassword['\"]?\s*[=:]\s*['\"]?)(?P<pw>[^\s'\",;&]+)", re.IGNORECASE)


def redact(text: object) -> str:
    """Replace every password in ``text`` (``scheme://user:pw@host`` URLs, ``password=...``) by ``***``."""
    out = _URL_PASSWORD.sub(lambda m: f"{m['head']}***{m['tail']}", str(text))
    return _KEY_PASSWORD.sub(lambda m: f"{m['head']}***", out)


def is_journal(url: str) -> bool:
    """``journal://...``, or a bare path ending in ``.log`` / ``.journal``. A URL with any other scheme is
    never a journal file, whatever it ends with (``postgresql://...?application_name=x.log``)."""
    if url.startswith("journal://"):
        return True
    return not re.match(r"[a-zA-Z][a-zA-Z0-9+.-]*://", url) and url.endswith((".log", ".journal"))


def journal_path(url: str) -> Path:
    """``journal:///abs/path.log`` (like ``file:///``), ``journal://relative.log``, or a bare path."""
    if url.startswith("journal:///"):
        return Path("/" + url.removeprefix("journal:///").lstrip("/"))
    return Path(url.removeprefix("journal://"))


def sqlite_path(url: str) -> str | None:
    path = url.split("?", 1)[0].removeprefix("sqlite:///")
    if not url.startswith("sqlite:///") or path in ("", ":memory:") or path.startswith("file:"):
        return None
    return path


def engine_url(url: str) -> str:
    """``postgresql://`` means psycopg 3 (the ``postgres`` extra) when psycopg2 is not installed."""
    scheme, sep, rest = url.partition("://")
    if sep and scheme in ("postgresql", "postgres"):
        if importlib.util.find_spec("psycopg2") is None and importlib.util.find_spec("psycopg") is not None:
            return f"postgresql+psycopg://{rest}"
        return f"postgresql://{rest}"
    return url


def file_of(url: str) -> str | None:
    """The database file of a SQLite or journal URL (None for a server or an in-memory database)."""
    path = (str(journal_path(url)) if is_journal(url)
            else (sqlite_path(url) if url.startswith("sqlite") else None))
    return None if path in (None, ":memory:", "") else path


def is_grpc(url: str) -> bool:
    """``grpc://host:port``: Optuna's gRPC storage proxy (``study proxy`` starts one)."""
    return url.startswith("grpc://")


def grpc_address(url: str) -> tuple[str, int]:
    """``grpc://host:port`` -> (host, port); port 13000 (Optuna's default) when left out."""
    rest = url.removeprefix("grpc://").split("/", 1)[0]
    host, sep, port = rest.rpartition(":")
    if not sep:
        host, port = rest, "13000"
    if not host or not port.isdigit():
        raise ValueError(f"a gRPC storage URL is grpc://host:port, got {url!r}")
    return host.strip("[]"), int(port)
