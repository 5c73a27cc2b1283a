"""Liveness: which process runs a trial and whether it still exists, heartbeats, and the recovery of trials
whose process died (FAIL, then queued again by Optuna's retry callback). Also the signals: SIGTERM is
delivered like Ctrl-C, and a trial being closed is never left RUNNING by a second press."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

from study.runtime.attrs import set_trial_attr_by_id, trial_attr
from study.storage import optuna_private as private
from study.storage.database import HEARTBEAT_ATTR, RetryStaleTrial, StorageConfig, retrying
from study.storage.locks import claim_lock

logger = logging.getLogger(__name__)


class Terminated(KeyboardInterrupt):
    """SIGTERM, delivered like Ctrl-C so that the running trial is closed and queued again."""


def install_sigterm() -> None:
    def handler(signum: int, frame: object) -> None:
        raise Terminated()

    signal.signal(signal.SIGTERM, handler)


def _pid_namespace() -> str | None:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


def _process_start(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (tells a live process from a later one with the same id)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def process_identity() -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid(), "pid_namespace": _pid_namespace(),
            "process_start": _process_start(os.getpid())}


def is_local(trial: FrozenTrial) -> bool:
    return (trial_attr(trial, "host") == socket.gethostname() and trial_attr(trial, "pid") is not None
            and trial_attr(trial, "pid_namespace", _pid_namespace()) == _pid_namespace())


def _process_alive(pid: int, start: str | None) -> bool:
    if Path("/proc/self/stat").exists():
        now = _process_start(pid)
        return now is not None and (start is None or now == start)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fail_and_retry(study: optuna.Study, trial_id: int, reason: str, max_retry: int | None) -> bool:
    """RUNNING -> FAIL with ``reason``, then queued again; False where another worker closed it first."""
    try:
        private.set_trial_attr(study, trial_id, "fail_reason", reason)
    except UpdateFinishedTrialError:
        return False
    if not private.fail_if_running(study, trial_id):
        return False
    RetryStaleTrial(max_retry=max_retry)(study, private.frozen(study, trial_id))
    return True


def process_gone(trial: FrozenTrial) -> bool:
    """A RUNNING trial started on this host whose process no longer exists (pid and start time checked)."""
    pid = trial_attr(trial, "pid")
    return (is_local(trial) and pid != os.getpid()
            and not _process_alive(int(pid), trial_attr(trial, "process_start")))


def fail_dead_trials(study: optuna.Study, *, max_retry: int = 3) -> list[int]:
    """RUNNING trials started on this host by a process that no longer exists: FAIL and retry them now,
    without waiting out the heartbeat grace period."""
    failed = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if not process_gone(t):
            continue
        if _fail_and_retry(study, private.trial_id(t), "process_died", max_retry):
            failed.append(t.number)
    if failed:
        logger.warning("trials %s were RUNNING in processes of this host that no longer exist: marked FAIL "
                       "and queued again", failed)
    return failed


def fail_stale_trials(study: optuna.Study, *, max_retry: int = 3, grace: float = 120) -> list[int]:
    """RUNNING trials whose heartbeat stopped for longer than the grace period (any host): FAIL and retry."""
    if private.heartbeat_enabled(study):
        stale = private.stale_trial_ids(study)
    else:  # the journal file: the heartbeat is a user attribute, compared with this host's clock
        now = time.time()
        stale = [private.trial_id(t) for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
                 if isinstance(trial_attr(t, HEARTBEAT_ATTR), (int, float))
                 and now - trial_attr(t, HEARTBEAT_ATTR) > grace]
    failed = []
    for trial_id in stale:
        if _fail_and_retry(study, trial_id, "heartbeat_stale", max_retry):
            failed.append(private.frozen(study, trial_id).number)
    if failed:
        logger.warning("trials %s stopped sending heartbeats: marked FAIL and queued again", failed)
    return failed


def recover_trials(study: optuna.Study, config: StorageConfig) -> list[int]:
    """Fail and queue again the trials whose process died; under the claim lock, so that two workers never
    queue the same trial twice."""
    def recover() -> list[int]:
        with claim_lock(private.storage(study), config.url, study.study_name):
            return (fail_dead_trials(study, max_retry=config.max_retry)
                    + fail_stale_trials(study, max_retry=config.max_retry, grace=config.grace))

    return retrying(recover, url=config.url, what="check for dead trials", attempts=config.connect_attempts)


class _AttrHeartbeat:
    """Heartbeats where the storage has none (the journal file): the time as a user attribute, every
    ``interval`` seconds, from a thread."""

    def __init__(self, study: optuna.Study, trial_id: int, interval: float) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, args=(study, trial_id, interval), daemon=True)

    def _beat(self, study: optuna.Study, trial_id: int, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                set_trial_attr_by_id(study, trial_id, HEARTBEAT_ATTR, time.time())
            except UpdateFinishedTrialError:
                return

    def __enter__(self) -> None:
        self._thread.start()

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def heartbeat(study: optuna.Study, trial_id: int, config: StorageConfig) -> Any:
    if private.heartbeat_enabled(study):
        return private.heartbeat_thread(study, trial_id)
    return _AttrHeartbeat(study, trial_id, config.heartbeat_interval)


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


def close_interrupted(study: optuna.Study, trial: optuna.trial.Trial, reason: str = "interrupted") -> None:
    """The trial Ctrl-C or SIGTERM stopped (or a full disk): FAIL with ``reason`` and queued again, so the
    next run continues from its checkpoint."""
    with signals_deferred():
        frozen = private.frozen(study, private.trial_id(trial))
        if frozen.state != TrialState.RUNNING:
            return
        # no fault of the trial: it does not use up the retries (``max_retry=None``)
        if _fail_and_retry(study, private.trial_id(trial), reason, None):
            logger.warning("trial %d stopped (%s): marked FAIL and queued again", trial.number, reason)
