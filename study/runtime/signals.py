"""Signals: SIGTERM is delivered like Ctrl-C (the running trial is closed and queued again), and a trial being
closed is never left RUNNING by a second press."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator


class Terminated(KeyboardInterrupt):
    """SIGTERM, delivered like Ctrl-C so that the running trial is closed and queued again."""


def install_sigterm() -> None:
    def handler(signum: int, frame: object) -> None:
        raise Terminated()

    signal.signal(signal.SIGTERM, handler)


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Ctrl-C / SIGTERM ignored while a trial is being closed, so a second press cannot leave it RUNNING."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
