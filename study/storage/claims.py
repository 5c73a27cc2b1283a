"""Claiming a trial on a database without queueing the fleet: one short transaction per claim.

A claim takes the study's row lock (the lock Optuna's own trial creation takes to number a trial; SQLite's
``BEGIN IMMEDIATE`` on a file) and, in the same transaction on the worker's one connection, pops the oldest
queued trial or counts the claims and creates the next trial RUNNING, writes who runs it (host, process,
sampler seed) and its first heartbeat, and commits. The lock is held for those few statements only: no trial
is read, nothing is sampled (the sampler runs after the commit, outside any lock). A worker that finds the
study full by a plain count (no lock) stops without waiting for anyone.

The retry of a dead trial is one such transaction too (``requeue``): its RUNNING -> FAIL and its queued copy
commit together, so a claim never sees the slot free in between, and two workers that find the same dead
trial queue it once.

Storages without a database here (Optuna's journal file, the gRPC proxy) keep the older path in
``study.runtime.claim``. ``TIMINGS`` collects (wait, hold) seconds per locked claim for ``bench/scale.py``.
"""

from __future__ import annotations

import contextlib
import datetime
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from study.storage import optuna_private as private
from study.storage.identity import check_held

FINISHED_STATES = ("COMPLETE", "PRUNED")


@dataclass
class ClaimTimings:
    """Seconds per locked claim in this process: waiting for the lock, and holding it to the commit."""

    waits: list[float] = field(default_factory=list)
    holds: list[float] = field(default_factory=list)

    def add(self, wait: float, hold: float) -> None:
        if len(self.waits) < 100_000:
            self.waits.append(wait)
            self.holds.append(hold)


TIMINGS = ClaimTimings()
_FRESH: dict[int, FrozenTrial] = {}  # trials this process just created, as stored (see ``just_created``)


def just_created(tid: int) -> FrozenTrial | None:
    """The trial ``claim_slot`` returned, as stored, where it created it (it need not be read back)."""
    return _FRESH.pop(tid, None)


def on_database(study: optuna.Study) -> bool:
    """Whether claims of this study go through the one-transaction path (SQLite, PostgreSQL, MySQL)."""
    return private.rdb_backend(private.storage(study)) is not None


def state_counts(study: optuna.Study) -> dict[str, int]:
    """Trials by state name (every state present, ``FINISHED`` = complete + pruned), counted by the
    database: no trial is read."""
    from sqlalchemy import orm

    backend = private.rdb_backend(private.storage(study))
    assert backend is not None
    with orm.Session(bind=backend.engine) as session:
        found = private.state_counts(session, private.study_id(study))
    out = {s.name: found.get(s.name, 0) for s in TrialState}
    out["FINISHED"] = out["COMPLETE"] + out["PRUNED"]
    return out


def is_full(c: dict[str, int], target: int) -> bool:
    """No queued trial, and the finished and running ones reach the target."""
    return c.get("WAITING", 0) == 0 and c["FINISHED"] + c.get("RUNNING", 0) >= target


def claim_slot(study: optuna.Study, *, target: int, identity: dict[str, Any]) -> int | None:
    """The id of a trial now RUNNING here (the oldest queued one first, else a new one while the claims fall
    short of ``target``), with ``identity`` and a first heartbeat written in the same transaction; None when
    the study has no slot left."""
    if is_full(state_counts(study), target):  # no lock: a late worker does not queue behind the others
        return None
    start = time.perf_counter()
    if private.claims_in_one_round_trip(study):
        try:
            got = private.claim_on_postgres(study, target=target, attrs=identity)
        except KeyError:  # deleted under this process: one paragraph where it holds the study
            check_held(study)
            raise
        TIMINGS.add(float("nan"), time.perf_counter() - start)  # wait and hold both inside the server
        if got is None:
            return None
        if got[1] is not None:
            _FRESH[got[0]] = got[1]
        return got[0]
    with _row_locked(study) as session:
        locked = time.perf_counter()
        sid = private.study_id(study)
        found = private.state_counts(session, sid)
        popped = private.first_waiting(session, sid) if found.get("WAITING") else None
        tid = popped
        if tid is None:
            claims = sum(found.get(s, 0) for s in (*FINISHED_STATES, "RUNNING", "WAITING"))
            if claims >= target:  # the transaction commits nothing
                return None
            tid = private.running_trial(session, sid, sum(found.values()))
            _FRESH[tid] = private.running_frozen(tid, sum(found.values()), datetime.datetime.now(), identity)
        private.claimed_by(session, tid, identity, fresh=popped is None)
    TIMINGS.add(locked - start, time.perf_counter() - locked)
    return tid


@contextlib.contextmanager
def _row_locked(study: optuna.Study) -> Iterator[Any]:
    """``private.study_row_locked``, where a study deleted under this process is one paragraph
    (``StudyReplacedError``), not a KeyError, when it holds the study."""
    try:
        with private.study_row_locked(study) as session:
            yield session
    except KeyError:
        check_held(study)
        raise


def requeue(study: optuna.Study, tid: int, *, reason: str, retry: FrozenTrial | None) -> bool:
    """RUNNING -> FAIL with ``reason`` and, where ``retry`` is given, that trial queued, in one transaction;
    False (nothing written) where the trial was no longer RUNNING: another worker closed it first."""
    with _row_locked(study) as session:
        if not private.fail_running_in(session, tid, {"fail_reason": reason}):
            return False
        if retry is not None:
            private.new_trial(study, session, retry)
    return True
