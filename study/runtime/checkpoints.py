"""A trial's checkpoints on disk, from the first epoch to their deletion.

Each trial has a folder ``<runs_dir>/<study>/<generation>/trial_NNNNN`` (see ``trial_dir``) with ``last.ckpt``
(written by the training loop after every epoch: what a retry continues) and ``best.ckpt`` (the best epoch's
weights, written when the trial completes: what the test evaluation, the report and ``study export`` read).
Both are in the one file format of ``study.models.checkpoint``, which the training loop uses without knowing
of trials; everything about trial folders is here: where they are, which checkpoint a retry continues (back
along its chain of retried trials, past damaged files), loading a trial's best weights, and deleting what
nobody will read again.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from study.config import Config, config_from_dict
from study.errors import UserInputError
from study.models.checkpoint import (
    BEST_KEYS,
    LAST_KEYS,
    DamagedCheckpointError,
    load_checkpoint,
    pack_weights,
    pretrained_reference,
    require,
    save_checkpoint,
    unpack_state,
    verify_reference,
)
from study.models.ranker import RankingNet
from study.models.train import FitResult
from study.runtime.attrs import set_trial_attr, trial_attr
from study.runtime.liveness import retry_chain
from study.runtime.trials import FINISHED, RETRIED_REASONS, default_trial, study_folder
from study.storage.identity import generation as study_generation
from study.workspace import Workspace

logger = logging.getLogger(__name__)

LAST = "last.ckpt"
BEST = "best.ckpt"


class MissingCheckpointError(UserInputError, FileNotFoundError):
    """A trial's ``best.ckpt`` is not where the trial recorded it (deleted, or on another machine)."""


def trial_dir(config: Config, number: int, generation: str | None = None) -> Path:
    """Always inside ``runs_dir``, whatever the study's name (``study_folder`` maps unsafe names).

    ``generation``: the study's token (``storage.identity``). Each generation of a study name has its own
    folder, ``runs/<study>/<token[:8]>/trial_<n>``: a process still training a trial of a study that was
    deleted or re-created under it writes its epoch checkpoint (before its next database write stops it)
    where the new study never reads, so no retry of the new study continues another study's weights.
    Without a token (a study from before tokens), ``runs/<study>/trial_<n>``."""
    folder = study_folder(config.study.runs_dir, config.study.name)
    return (folder / generation[:8] if generation else folder) / f"trial_{number:05d}"


def trial_dirs(config: Config, number: int, generation: str | None) -> list[Path]:
    """Where trial ``number``'s files may be: its generation's folder, then the folder a version before
    per-generation folders wrote (a study created then and resumed now)."""
    return list(dict.fromkeys([trial_dir(config, number, generation), trial_dir(config, number)]))


UNWRITABLE_REASON = "place_unwritable"  # fail_reason: the trial's folder could not be written (queued again)
_UNWRITABLE = (errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR, errno.EEXIST)


class UnwritablePlaceError(UserInputError):
    """The trial's folder (under ``study.runs_dir``) cannot be written: a read-only place, or a file where a
    folder must be. The trial is queued again (reason ``place_unwritable``) and the run stops, exit 2."""


def _blocking_file(path: Path) -> Path | None:
    """The nearest existing part of ``path`` (itself or a parent) when it is a file, not a folder."""
    for part in (path, *path.parents):
        if part.exists() or part.is_symlink():
            return None if part.is_dir() else part
    return None


def _place_error(path: Path, *, read_only: bool, detail: str = "") -> UnwritablePlaceError:
    blocking = _blocking_file(path)
    if blocking is not None:
        what = f"{blocking} is a file, not a folder"
    elif read_only:
        what = f"{path} is in a read-only place"
    else:
        what = f"{path} cannot be written ({detail or 'permission denied'})"
    return UnwritablePlaceError(
        f"The trial's folder cannot be written: {what}. Nothing was lost: the trial is queued again and "
        "runs when the same command is run with a writable study.runs_dir (move the file away, or set "
        "study.runs_dir to a writable folder).")


def check_trial_dir(folder: Path) -> None:
    """Before a trial trains: its folder can be created and written (no epoch is spent to find out), else
    :class:`UnwritablePlaceError` naming the place."""
    existing = next((p for p in (folder, *folder.parents) if p.exists() or p.is_symlink()), None)
    if existing is None:
        return
    if not existing.is_dir():
        raise _place_error(folder, read_only=False)
    if not os.access(existing, os.W_OK | os.X_OK):
        try:
            read_only = os.statvfs(existing).f_flag & os.ST_RDONLY
        except OSError:
            read_only = False
        raise _place_error(existing if existing != folder else folder, read_only=bool(read_only))


def unwritable_place(exc: BaseException) -> UnwritablePlaceError | None:
    """``exc`` (or what caused it) as :class:`UnwritablePlaceError` when it is a place that cannot be
    written (read-only, permission, a file where a folder must be); None for anything else."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, UnwritablePlaceError):
            return seen
        if isinstance(seen, OSError) and seen.errno in _UNWRITABLE and seen.filename:
            return _place_error(Path(os.fsdecode(seen.filename)), read_only=seen.errno == errno.EROFS,
                                detail=seen.strerror or "")
        seen = seen.__cause__ or seen.__context__
    return None


@dataclass(frozen=True)
class Resume:
    """The epoch checkpoint a retry continues: of chain link ``trial``, loaded and checked."""

    trial: int
    path: Path
    state: dict[str, Any]

    @property
    def epoch(self) -> int:
        return int(self.state["epoch"])


def find_resume(trial: optuna.trial.Trial, config: Config, model: RankingNet) -> Resume | None:
    """The newest intact ``last.ckpt`` of the chain this trial retries (the latest link may have died before
    its first epoch, or left a damaged file: earlier links are tried too); None to start from epoch 1.

    A damaged file is a warning, never the end of the chain: its trial's parameters are still trained."""
    reference = pretrained_reference(model)
    damaged: list[str] = []
    found = None
    token = study_generation(trial.study)
    for number in reversed(retry_chain(trial)):
        path = next((d / LAST for d in trial_dirs(config, number, token) if (d / LAST).is_file()), None)
        if path is None:
            continue
        try:
            state = load_checkpoint(path)
            require(state, LAST_KEYS, path)
            verify_reference(state["model"], reference, path=path)
        except DamagedCheckpointError as exc:
            damaged.append(str(path))
            logger.warning("trial %d: the epoch checkpoint %s of the trial it retries is damaged (%s); "
                           "looking for an earlier checkpoint of the chain", trial.number, path, exc.reason)
            continue
        found = Resume(number, path, state)
        break
    if damaged:
        set_trial_attr(trial, "damaged_checkpoints", damaged)
        logger.warning("trial %d %s", trial.number,
                       f"continues from {found.path} (epoch {found.epoch})" if found
                       else "starts again from epoch 1: no intact checkpoint is left in its chain")
    return found


def drop_links(config: Config, numbers: list[int], generation: str | None) -> Callable[[Path], None]:
    """A callback for after a retry's own epoch checkpoint is on disk: the chain links it continued are no
    longer needed (their folders hold only resume files), so they are deleted at once, not when it ends."""

    def drop(_: Path) -> None:
        for number in numbers:
            for folder in trial_dirs(config, number, generation):
                shutil.rmtree(folder, ignore_errors=True)

    return drop


def save_best(path: Path, *, model: RankingNet, result: FitResult, config: Config, ws: Workspace) -> None:
    """``best.ckpt``: the best epoch's weights and everything needed to rebuild and feed the network."""
    state = {"kind": "best", "model": result.best_state, "config": config.to_dict(),
             "scaler": ws.scaler.to_dict(), "n_features": ws.scaler.n_outputs_, "epoch": result.best_epoch,
             "metrics": result.best_metrics,
             "match": ws.match_featurizer.to_dict() if config.model.uses_match else None}
    save_checkpoint(pack_weights(state, pretrained_reference(model)), path)


def load_trial_model(trial: FrozenTrial) -> tuple[RankingNet, Config, dict[str, Any]]:
    """The trial's best network (on the CPU), its config and the checkpoint's other contents.

    :class:`MissingCheckpointError` (also a ``FileNotFoundError``) when the file is gone; a damaged file is a
    ``UserInputError`` naming it and saying what to do."""
    path = Path(trial_attr(trial, "checkpoint", ""))
    if not path.is_file():
        raise MissingCheckpointError(f"trial {trial.number} has no checkpoint at {path}")
    try:
        ckpt = load_checkpoint(path)
        require(ckpt, BEST_KEYS, path)
        config = config_from_dict(ckpt["config"])
        model = RankingNet(config.model, n_features=int(ckpt["n_features"]))
        model.load_state_dict(unpack_state(ckpt["model"], pretrained_reference(model), path=path))
    except DamagedCheckpointError as exc:
        raise DamagedCheckpointError(path, exc.reason, advice=(
            f"These are the weights of trial {trial.number}: the study's trials and validation results are "
            "intact, but these weights are lost unless you restore the file from a backup. `study export "
            "--retrain` fits the trial's configuration again without this file.")) from exc
    return model, config, ckpt


def prune_checkpoints(study: optuna.Study, config: Config) -> None:
    """Keep the weights of the ``keep_checkpoints`` best finished trials and of the untuned default trial;
    drop the rest and finished trials' resume files."""
    trials = study.get_trials(deepcopy=False)
    ranked = sorted((t for t in trials if t.state == TrialState.COMPLETE and t.values),
                    key=lambda t: t.values[0], reverse=True)
    keep = {t.number for t in ranked[: config.study.keep_checkpoints]}
    default = default_trial(study)
    if default is not None:  # the untuned default is evaluated on test at the end, whatever its rank
        keep.add(default.number)
    token = study_generation(study)
    for t in trials:
        if t.state in (TrialState.RUNNING, TrialState.WAITING, TrialState.FAIL):
            continue
        for folder in trial_dirs(config, t.number, token):
            if not folder.exists():
                continue
            if t.number in keep:
                (folder / LAST).unlink(missing_ok=True)
            elif (folder / BEST).exists() or (folder / LAST).exists():
                shutil.rmtree(folder, ignore_errors=True)


def trial_closed(config: Config, trial: FrozenTrial, generation: str | None) -> None:
    """After a trial closes: drop its resume file once it finished, and the folders of failed trials that no
    retry will continue (a finished retry's predecessors, and failures that are not retried)."""
    if trial.state in FINISHED:
        for folder in trial_dirs(config, trial.number, generation):
            (folder / LAST).unlink(missing_ok=True)
            with contextlib.suppress(OSError):  # a pruned trial keeps no best weights: no empty folder left
                folder.rmdir()
        dead = retry_chain(trial)
    else:
        dead = [trial.number] if trial.user_attrs.get("fail_reason") not in RETRIED_REASONS else []
    for number in dead:
        for folder in trial_dirs(config, number, generation):
            shutil.rmtree(folder, ignore_errors=True)
