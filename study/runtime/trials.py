"""Light questions about a study's trials (no torch): counts by state, the best and the untuned default
trial. ``status``, ``best``, ``list`` and the report read them; so does the worker loop."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
CLAIMED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)
DEFAULT_CONFIG_ATTR = "default_config"  # user attribute of the trial that runs the untuned config
DEFAULT_SAMPLED_ATTR = "default_config_sampled"  # its searched fields whose default lay outside the space
# fail reasons that queue a retry
RETRIED_REASONS = ("interrupted", "process_died", "heartbeat_stale", "disk_full", "storage_unavailable",
                   "place_unwritable")


def counts(study: optuna.Study) -> dict[str, int]:
    """Trials by state name, and ``FINISHED``; on a database counted there (no trial is read)."""
    from study.storage import claims

    if claims.on_database(study):
        return claims.state_counts(study)
    out = {s.name: 0 for s in TrialState}
    for t in study.get_trials(deepcopy=False):
        out[t.state.name] += 1
    out["FINISHED"] = out["COMPLETE"] + out["PRUNED"]
    return out


def best_trial(study: optuna.Study) -> FrozenTrial | None:
    """The complete trial with the highest main metric (``values[0]``). With a second objective this is the
    Pareto-front trial that ranks best; ``study.best_trial`` would raise there."""
    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.values]
    if not complete:
        return None
    return max(complete, key=lambda t: t.values[0])


def default_trial(study: optuna.Study) -> FrozenTrial | None:
    """The complete trial that ran the config's own values (enqueued first at creation, or its retry)."""
    return next((t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                 if t.user_attrs.get(DEFAULT_CONFIG_ATTR) and t.values), None)


def study_folder(runs_dir: str | Path, name: str) -> Path:
    """``runs_dir/<name>`` for a plain study name. A name that is not a safe folder name (a path separator,
    ``..``, an empty or very long name, other characters) becomes a slug plus a hash of the name, so that no
    study name can put checkpoints, or a later cleanup, outside ``runs_dir``."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip(".-")[:80]
    if slug != name or not slug or slug == "artifacts":  # runs/artifacts is the artifact store
        slug = f"{slug or 'study'}-{hashlib.sha256(name.encode()).hexdigest()[:10]}"
    return Path(runs_dir) / slug


def inside(path: Path, folder: str | Path) -> bool:
    """Whether ``path`` lies strictly inside ``folder`` once both are resolved (a guard before any delete)."""
    path, folder = Path(path).resolve(), Path(folder).resolve()
    return path != folder and folder in path.parents
