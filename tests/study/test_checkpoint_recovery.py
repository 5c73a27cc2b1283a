"""Damaged checkpoints in real studies: a retry whose ``last.ckpt`` is garbage or truncated warns and
continues from the chain's previous intact checkpoint or from epoch 1 (never FAIL); a damaged ``best.ckpt``
is one paragraph naming it for ``study export``, ``study run``'s test evaluation and (as a note) ``study
report``; a full disk during a checkpoint write stops the run and queues the trial."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

import study.objective as objective_module
from study.cli import main
from study.runtime.attrs import set_study_attr, trial_attr
from tests.messages import assert_not_says, assert_says

ONE_TRIAL = ["--n-trials", "1", "--set", "study.baselines=false", "--set", "train.epochs=1", "--quiet"]


def _interrupt_after(monkeypatch: pytest.MonkeyPatch, epoch: int) -> None:
    """Ctrl-C right after ``epoch`` of the next trial: it is closed and queued again, its checkpoint kept."""
    real_fit = objective_module.fit

    def fit(model, train, val, cfg, **kw):
        report = kw["on_epoch_end"]

        def on_epoch_end(e: int, metrics: dict) -> None:
            report(e, metrics)
            if e == epoch:
                raise KeyboardInterrupt

        return real_fit(model, train, val, cfg, **{**kw, "on_epoch_end": on_epoch_end})

    monkeypatch.setattr(objective_module, "fit", fit)


def _error(stderr: str) -> str:
    """The CLI's error paragraph (warnings may come before it), checked to come without a traceback."""
    assert_says(stderr, "error: ")
    assert_not_says(stderr, "Traceback")
    return stderr[stderr.index("error: "):]


def _damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    path.write_bytes(b"\x00garbage, not a checkpoint" * 50 if how == "garbage" else data[: len(data) // 3])


def test_a_garbage_resume_file_restarts_the_retry_from_epoch_1(tmp_path, write_study_config, trials_of,
                                                               capsys, fixed_generation) -> None:
    path = write_study_config(n_trials=1, epochs=3)
    with pytest.MonkeyPatch.context() as mp:
        _interrupt_after(mp, 2)
        assert main(["run", "--config", str(path), "--quiet"]) == 130
    last = tmp_path / "runs" / "t" / fixed_generation / "trial_00000" / "last.ckpt"
    _damage(last, "garbage")
    capsys.readouterr()
    assert main(["run", "--config", str(path), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert_says(err, str(last), "damaged", "starts again from epoch 1")
    assert_not_says(err, "Traceback")
    first, retry = trials_of(path)
    assert first.state == TrialState.FAIL and first.user_attrs["fail_reason"] == "interrupted"
    assert retry.state == TrialState.COMPLETE and retry.params == first.params  # the chain's parameters kept
    assert trial_attr(retry, "damaged_checkpoints") == [str(last)]
    assert trial_attr(retry, "resumed_from") is None
    assert [c["epoch"] for c in trial_attr(retry, "curve")] == [0, 1, 2, 3]  # trained again from the start
    assert not (tmp_path / "runs" / "t" / fixed_generation / "trial_00000").exists()


def test_a_retry_continues_a_checkpoint_in_the_folder_of_the_layout_before_generations(
        tmp_path, write_study_config, trials_of, fixed_generation) -> None:
    """A study interrupted under a version that wrote ``runs/<study>/trial_<n>``, resumed by this one."""
    path = write_study_config(n_trials=1, epochs=3)
    with pytest.MonkeyPatch.context() as mp:
        _interrupt_after(mp, 2)
        assert main(["run", "--config", str(path), "--quiet"]) == 130
    runs = tmp_path / "runs" / "t"
    (runs / fixed_generation / "trial_00000").rename(runs / "trial_00000")  # where that version wrote it
    assert main(["run", "--config", str(path), "--quiet"]) == 0
    retry = trials_of(path)[1]
    assert retry.state == TrialState.COMPLETE
    assert trial_attr(retry, "resumed_from") == {"trial": 0, "epoch": 2}
    assert not (runs / "trial_00000").exists()  # dropped once the retry's own checkpoint was on disk


def test_a_truncated_resume_file_falls_back_to_the_previous_link_of_the_chain(tmp_path, write_study_config,
                                                                             trials_of, capsys,
                                                                             fixed_generation) -> None:
    path = write_study_config(n_trials=1, epochs=3)
    runs = tmp_path / "runs" / "t" / fixed_generation
    with pytest.MonkeyPatch.context() as mp:
        _interrupt_after(mp, 1)
        assert main(["run", "--config", str(path), "--quiet"]) == 130
    kept = tmp_path / "trial_0_epoch_1.ckpt"
    shutil.copy2(runs / "trial_00000" / "last.ckpt", kept)
    with pytest.MonkeyPatch.context() as mp:
        _interrupt_after(mp, 2)
        assert main(["run", "--config", str(path), "--quiet"]) == 130
    # the retry continued trial 0 and, once its own epoch checkpoint was on disk, dropped trial 0's folder
    assert sorted(p.name for p in runs.iterdir()) == ["trial_00001"]
    assert trial_attr(trials_of(path)[1], "resumed_from") == {"trial": 0, "epoch": 1}
    # a second link whose file is damaged, and the first link's file back (say, from a backup)
    (runs / "trial_00000").mkdir()
    shutil.copy2(kept, runs / "trial_00000" / "last.ckpt")
    damaged = runs / "trial_00001" / "last.ckpt"
    _damage(damaged, "truncated")
    capsys.readouterr()
    assert main(["run", "--config", str(path), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert_says(err, str(damaged), "truncated")
    assert_not_says(err, "Traceback")
    trials = trials_of(path)
    retry = trials[2]
    assert retry.state == TrialState.COMPLETE and retry.system_attrs["retry_history"] == [0, 1]
    assert trial_attr(retry, "resumed_from") == {"trial": 0, "epoch": 1}
    assert trial_attr(retry, "damaged_checkpoints") == [str(damaged)]
    assert retry.user_attrs["epochs_run"] == 3 and retry.params == trials[0].params


def test_a_full_disk_during_the_background_write_stops_the_run_and_queues_the_trial(
        tmp_path, write_study_config, trials_of, capsys, fixed_generation) -> None:
    """The kernel's own ENOSPC: the trial's checkpoint writer finds its temporary file linked to /dev/full."""
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full on this system")
    path = write_study_config(n_trials=1, epochs=3)
    folder = tmp_path / "runs" / "t" / fixed_generation / "trial_00000"
    folder.mkdir(parents=True)
    (folder / f".last.ckpt.{os.getpid()}.tmp").symlink_to("/dev/full")
    capsys.readouterr()
    assert main(["run", "--config", str(path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert_says(err, "error: The disk is full", "queued again")
    assert_not_says(err, "Traceback")
    first, queued = trials_of(path)
    assert first.state == TrialState.FAIL and first.user_attrs["fail_reason"] == "disk_full"
    assert queued.state == TrialState.WAITING and list(folder.iterdir()) == []  # nothing half-written is left
    assert main(["run", "--config", str(path), "--quiet"]) == 0  # space again: the queued trial runs
    assert trials_of(path)[1].state == TrialState.COMPLETE


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory, study_toml_in) -> dict:
    tmp = tmp_path_factory.mktemp("damaged-best")
    path = study_toml_in(tmp)
    assert main(["run", "--config", str(path), *ONE_TRIAL]) == 0
    storage = f"sqlite:///{tmp / 'studies.db'}"
    best = Path(trial_attr(optuna.load_study(study_name="t", storage=storage).best_trial, "checkpoint"))
    return {"tmp": tmp, "config": path, "storage": storage, "best": best, "intact": best.read_bytes()}


@pytest.mark.parametrize("how", ["empty", "garbage", "truncated"])
def test_a_damaged_best_checkpoint_is_one_paragraph_for_export_run_and_report(finished, capsys, how) -> None:
    best, storage = finished["best"], finished["storage"]
    best.write_bytes(b"") if how == "empty" else _damage(best, how)
    try:
        capsys.readouterr()
        out = finished["tmp"] / f"export-{how}"
        assert main(["export", "--name", "t", "--storage", storage, "--out", str(out)]) == 2
        err = _error(capsys.readouterr().err)
        assert_says(err, str(best), "--retrain")
        assert not out.exists()
        # the end-of-run evaluation on the test split (as after a run stopped before it)
        set_study_attr(optuna.load_study(study_name="t", storage=storage), "comparison", None)
        assert main(["run", "--config", str(finished["config"]), *ONE_TRIAL]) == 2
        assert_says(_error(capsys.readouterr().err), str(best))
        report = finished["tmp"] / f"report-{how}.html"
        assert main(["report", "--name", "t", "--storage", storage, "--out", str(report), "--quiet"]) == 0
        assert_says(report.read_text(), str(best), "cannot be used")
    finally:
        best.write_bytes(finished["intact"])


def test_export_retrain_does_not_need_the_damaged_checkpoint(finished, capsys) -> None:
    best, storage = finished["best"], finished["storage"]
    _damage(best, "truncated")
    try:
        out = finished["tmp"] / "export-retrained"
        assert main(["export", "--name", "t", "--storage", storage, "--out", str(out), "--retrain"]) == 0
        assert (out / "model.safetensors").is_file() and (out / "ranker.json").is_file()
        assert_says(capsys.readouterr().err, str(best))  # said, not hidden
    finally:
        best.write_bytes(finished["intact"])
