"""Four worker processes on one SQLite file: the exact total, no "database is locked", a seed per worker."""

from __future__ import annotations

from optuna.trial import TrialState

from study.runtime.attrs import trial_attr
from tests.messages import assert_not_says, assert_says


def test_four_workers_on_one_sqlite_file_reach_exactly_n_trials(write_study_config, start_study,
                                                                trials_of) -> None:
    # short heartbeats: more concurrent writes to the one file than a real study makes
    path = write_study_config(n_trials=6, storage="heartbeat_interval = 1")
    proc, out, err = start_study(["run", "--config", str(path), "--workers", "4"], "workers")
    assert proc.wait(timeout=240) == 0, err.read_text()[-3000:]
    output = out.read_text() + err.read_text()
    assert_not_says(output.lower(), "database is locked")
    assert_not_says(output, "Traceback")
    trials = trials_of(path)
    states = [t.state for t in trials]
    assert states.count(TrialState.COMPLETE) + states.count(TrialState.PRUNED) == 6
    assert states.count(TrialState.FAIL) == 0, [t.user_attrs.get("fail_reason") for t in trials]
    assert len(trials) == 6  # no trial was asked for beyond the target
    seeds = {trial_attr(t, "pid"): trial_attr(t, "sampler_seed") for t in trials}
    assert len(seeds) >= 2 and len(set(seeds.values())) == len(seeds)  # one seed per worker process
    assert len({t.params["train.head_lr"] for t in trials}) == 6  # the workers did not repeat each other
    assert_says(err.read_text(), "4 worker(s)")
    assert_says(out.read_text(), "6 complete")
