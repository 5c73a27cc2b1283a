"""A worker's claim of its next trial: a queued retry first, else a new trial while the claims (finished,
running and queued trials) fall short of ``n_trials``.

On a database (SQLite, PostgreSQL) a claim is one short transaction under the study's row lock
(``study.storage.claims``); the sampler then runs outside any lock. On Optuna's journal file a claim counts
and asks under a file lock (one host). Through the gRPC proxy there is no lock to take: the trial is created
and then ranked (``_surplus``), and one that would exceed the target is closed as FAIL with reason
``surplus`` without running, so the finished total stays exact.
"""

from __future__ import annotations

import logging
import warnings

import optuna
from optuna.trial import TrialState

from study.config import Config
from study.runtime.liveness import close_interrupted, mark_claimed, process_identity
from study.runtime.trials import CLAIMED, counts
from study.storage import claims
from study.storage import optuna_private as private
from study.storage.database import retrying
from study.storage.locks import claim_lock

logger = logging.getLogger(__name__)


def claim_trial(study: optuna.Study, config: Config, *, sampler_seed: int) -> optuna.trial.Trial | None:
    """The next trial to run (a queued retry first), or None while the claims already reach ``n_trials``."""
    if claims.on_database(study):
        return _claim_on_database(study, config, sampler_seed=sampler_seed)
    return _claim_elsewhere(study, config, sampler_seed=sampler_seed)


def _claim_on_database(study: optuna.Study, config: Config, *,
                       sampler_seed: int) -> optuna.trial.Trial | None:
    identity = {**process_identity(), "sampler_seed": sampler_seed}
    tid = retrying(lambda: claims.claim_slot(study, target=config.study.n_trials, identity=identity),
                   url=config.storage.url, what="claim a trial", attempts=config.storage.connect_attempts)
    if tid is None:
        return None
    try:  # the sampler's relative sampling (TPE reads the trials), after the commit, under no lock
        known = claims.just_created(tid)  # created here: not read back
        return retrying(lambda: private.trial_object(study, tid, known), url=config.storage.url,
                        what="sample the trial's parameters", attempts=config.storage.connect_attempts)
    except BaseException:  # Ctrl-C or an outage while sampling: the claimed trial is closed and queued again
        trial_number = private.frozen(study, tid).number
        logger.info("trial %d claimed but not started; closing it", trial_number)
        close_interrupted(study, _Claimed(study, tid))
        raise


class _Claimed:
    """What ``close_interrupted`` needs of a trial claimed here before its ``Trial`` object existed."""

    def __init__(self, study: optuna.Study, tid: int) -> None:
        self.study, self._trial_id = study, tid
        self.number = private.frozen(study, tid).number


def _claim_elsewhere(study: optuna.Study, config: Config, *, sampler_seed: int) -> optuna.trial.Trial | None:
    target = config.study.n_trials
    claimed: list[optuna.trial.Trial] = []  # survives a retried attempt: a trial is asked for once

    def claim() -> optuna.trial.Trial | None:
        if not claimed:
            with claim_lock(private.storage(study), config.storage.url, study.study_name):
                c = counts(study)
                if c["WAITING"] == 0 and c["FINISHED"] + c["RUNNING"] >= target:
                    return None
                # optuna expects heartbeats with optimize(); this loop sends them
                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", message="Heartbeat of storage")
                    claimed.append(study.ask())
        mark_claimed(study, claimed[0], sampler_seed)
        return claimed[0]

    try:
        trial = retrying(claim, url=config.storage.url, what="claim a trial",
                         attempts=config.storage.connect_attempts)
        if trial is None or not _surplus(study, trial, config):
            return trial
    except KeyboardInterrupt:
        if claimed:
            close_interrupted(study, claimed[0])
        raise
    return None


def _surplus(study: optuna.Study, trial: optuna.trial.Trial, config: Config) -> bool:
    """Where no lock exists (the gRPC proxy): another worker took the last slot at the same moment, so this
    trial, ranked after ``n_trials`` others, is closed as FAIL (``surplus``) without running."""
    target = config.study.n_trials
    trials = retrying(lambda: study.get_trials(deepcopy=False), url=config.storage.url,
                      what="read the trials", attempts=config.storage.connect_attempts)
    ahead = sum(t.number < trial.number and t.state in CLAIMED for t in trials)
    if ahead < target:
        return False
    trial.set_user_attr("fail_reason", "surplus")
    study.tell(trial, state=TrialState.FAIL)
    logger.info("trial %d not run: the study already has %d trials finished or under way", trial.number,
                ahead)
    return True
