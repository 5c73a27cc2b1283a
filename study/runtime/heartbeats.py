"""A running trial's heartbeat thread (``heartbeat``): Optuna's heartbeat table where the storage has one,
else the time as a trial attribute (the journal file, the gRPC proxy). Stale detection is in ``liveness``."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError

from study.errors import UserInputError
from study.runtime.attrs import HEARTBEAT_ATTR, set_trial_attr_by_id
from study.storage import optuna_private as private
from study.storage.database import StorageConfig
from study.storage.urls import redact

logger = logging.getLogger(__name__)


class _Heartbeat:
    """A running trial's heartbeats, every ``interval`` seconds from a thread: Optuna's heartbeat table where
    the storage has one, else the time as a user attribute (the journal file).

    Unlike Optuna's own heartbeat thread, which dies with the first failed write, this one survives a
    database outage: a failed beat is logged once and tried again every second until the database answers,
    so a short outage never makes a live trial look stale. It ends quietly where the trial was closed
    elsewhere or its study replaced: the trial's own next write says so, in one paragraph."""

    def __init__(self, study: optuna.Study, trial_id: int, interval: float) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(study, trial_id, interval), daemon=True,
                                        name=f"heartbeat-{trial_id}")

    @staticmethod
    def _beat(study: optuna.Study, trial_id: int) -> None:
        if private.heartbeat_enabled(study):
            private.record_heartbeat(study, trial_id)
        else:
            set_trial_attr_by_id(study, trial_id, HEARTBEAT_ATTR, time.time())

    def _run(self, study: optuna.Study, trial_id: int, interval: float) -> None:
        wait, failing = interval, False
        while not self._stop.wait(wait):
            try:
                self._beat(study, trial_id)
            except (UpdateFinishedTrialError, UserInputError, KeyError):  # closed elsewhere, study replaced
                return
            except Exception as exc:  # noqa: BLE001 - an outage: this thread must outlive it
                if not failing:
                    logger.warning("heartbeat of trial id %d not recorded (%s); trying again every second "
                                   "until the database answers", trial_id, redact(exc).splitlines()[0][:200])
                wait, failing = min(1.0, interval), True
                continue
            if failing:
                logger.info("heartbeat of trial id %d recorded again", trial_id)
            wait, failing = interval, False

    def __enter__(self) -> None:
        self._thread.start()

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def heartbeat(study: optuna.Study, trial_id: int, config: StorageConfig) -> Any:
    return _Heartbeat(study, trial_id, config.heartbeat_interval)
