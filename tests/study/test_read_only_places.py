"""Issue 19, items 6 and 7: read-only places. A healthy SQLite database on a read-only mount works for the
reading commands and the writing ones say "read-only" with its path; a read-only ``runs/``, a ``runs/`` that
is a file and a ``STUDY_CACHE_DIR`` that is a file are one paragraph each, with the trial queued again.

Tests run as root, which ignores file modes, so the read-only place is a real read-only bind mount in a
private mount namespace (``unshare -m``), the way a shared results disk is mounted; where the namespace or
the mount is not allowed the tests skip, saying why.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from study.cli import main
from tests.messages import assert_not_says, assert_one_paragraph, assert_says, flatten

ONE_TRIAL = ["--n-trials", "1", "--set", "study.baselines=false", "--set", "train.epochs=1", "--quiet"]


def _read_only_mount_works(folder: Path) -> str | None:
    """None when ``unshare -m`` + ``mount --bind -o ro`` make ``folder`` read-only here, else why not."""
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        return "no unshare or mount here"
    probe = subprocess.run(["unshare", "-m", "sh", "-c",
                            f"mount --bind -o ro '{folder}' '{folder}' && ! touch '{folder}/.probe'"],
                           check=False, capture_output=True, text=True)
    if probe.returncode != 0 or (folder / ".probe").exists():
        return f"no read-only bind mount allowed here ({probe.stderr.strip()[:120]})"
    return None


def _in_read_only(folder: Path, repo_root: Path, *args: str) -> subprocess.CompletedProcess:
    """``python -m study ARGS`` with ``folder`` mounted read-only for that process alone."""
    command = " ".join(f"'{a}'" for a in (sys.executable, "-m", "study", *args))
    env = {**os.environ, "PYTHONPATH": str(repo_root), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return subprocess.run(["unshare", "-m", "sh", "-c",
                           f"mount --bind -o ro '{folder}' '{folder}' && exec {command}"],
                          check=False, capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory, study_toml_in) -> dict:
    tmp = tmp_path_factory.mktemp("read-only")
    config = study_toml_in(tmp)
    assert main(["run", "--config", str(config), *ONE_TRIAL]) == 0
    return {"tmp": tmp, "config": config, "storage": f"sqlite:///{tmp / 'studies.db'}"}


def test_a_database_on_a_read_only_mount_is_read_and_never_called_unusable(finished, repo_root) -> None:
    folder = finished["tmp"]
    why = _read_only_mount_works(folder)
    if why:
        pytest.skip(why)
    before = (folder / "studies.db").read_bytes()
    names = sorted(p.name for p in folder.iterdir())
    storage = finished["storage"]
    reading = ((["status", "--name", "t"], "finished 1/1"), (["best", "--name", "t"], "best trial 0"),
               (["list"], "t"), (["trials", "--name", "t"], "complete"))
    for args, phrase in reading:
        result = _in_read_only(folder, repo_root, *args, "--storage", storage)
        assert result.returncode == 0, result.stderr
        assert_says(result.stdout, phrase)
        assert_not_says(result.stderr, "not a usable study database", "move this file away", "Traceback")
    for args in (["run", "--config", str(finished["config"]), "--n-trials", "2", "--quiet"],
                 ["delete", "t", "--yes", "--storage", storage],
                 ["worker", "--name", "t", "--storage", storage]):
        result = _in_read_only(folder, repo_root, *args)
        assert result.returncode == 2, result.stderr
        assert_says(result.stderr, "is in a read-only place", str(folder / "studies.db"))
        assert_not_says(result.stderr, "not a usable study database", "Traceback")
        assert_one_paragraph(result.stderr)
    assert (folder / "studies.db").read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == names
    assert optuna.load_study(study_name="t", storage=storage).trials[0].state.is_finished()


def test_a_checkpointed_database_without_its_wal_is_read_on_a_read_only_mount(finished, repo_root,
                                                                             tmp_path) -> None:
    """The copy a user puts on a shared disk: one file, no -wal or -shm beside it to open it by."""
    import sqlite3

    copy = tmp_path / "shared"
    copy.mkdir()
    with sqlite3.connect(finished["tmp"] / "studies.db") as source, \
            sqlite3.connect(copy / "studies.db") as dest:
        source.backup(dest)
    why = _read_only_mount_works(copy)
    if why:
        pytest.skip(why)
    result = _in_read_only(copy, repo_root, "status", "--name", "t", "--storage",
                           f"sqlite:///{copy / 'studies.db'}")
    assert result.returncode == 0, result.stderr
    assert_says(result.stdout, "finished 1/1")
    assert sorted(p.name for p in copy.iterdir()) == ["studies.db"]


def _queued_again(storage: str) -> list[tuple[str, str | None]]:
    return [(t.state.name, t.user_attrs.get("fail_reason"))
            for t in optuna.load_study(study_name="t", storage=storage).trials]


def test_a_runs_folder_that_is_a_file_is_one_paragraph_and_the_trial_is_queued(study_toml, tmp_path,
                                                                              capsys) -> None:
    config = study_toml()
    (tmp_path / "runs").write_text("not a folder\n")
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    assert main(["run", "--config", str(config), *ONE_TRIAL]) == 2
    err = capsys.readouterr().err
    assert_says(err, f"{tmp_path / 'runs'} is a file, not a folder", "the trial is queued again")
    assert_not_says(err, "Traceback")
    assert_one_paragraph(err[err.index("error:"):])  # after the data's and the closed trial's warnings
    assert _queued_again(storage) == [("FAIL", "place_unwritable"), ("WAITING", None)]
    (tmp_path / "runs").unlink()  # 0 lost: the queued trial is the one the next run finishes
    assert main(["run", "--config", str(config), *ONE_TRIAL]) == 0
    assert [s for s, _ in _queued_again(storage)] == ["FAIL", "COMPLETE"]


def test_a_read_only_runs_folder_says_read_only_and_the_trial_is_queued(study_toml, tmp_path,
                                                                         repo_root) -> None:
    config = study_toml()
    runs = tmp_path / "runs"
    runs.mkdir()
    why = _read_only_mount_works(runs)
    if why:
        pytest.skip(why)
    result = _in_read_only(runs, repo_root, "run", "--config", str(config), *ONE_TRIAL)
    assert result.returncode == 2, result.stderr
    assert_says(result.stderr, "is in a read-only place", str(runs), "the trial is queued again")
    assert_not_says(result.stderr, "Traceback")
    assert_one_paragraph(result.stderr[result.stderr.index("error:"):])
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    assert _queued_again(storage) == [("FAIL", "place_unwritable"), ("WAITING", None)]


def test_a_checkpoint_write_refused_mid_trial_queues_the_trial(tmp_path) -> None:
    """The epoch checkpoint writer meets a place turned read-only after the trial began."""
    import errno

    from study.runtime.checkpoints import UnwritablePlaceError
    from study.runtime.worker import run_trial
    from study.storage.database import StorageConfig

    db = f"sqlite:///{tmp_path / 'w.db'}"
    study = optuna.create_study(study_name="w", storage=db, direction="maximize")
    target = tmp_path / "runs" / "w" / "trial_00000" / ".last.ckpt.1.tmp"

    def objective(trial):
        trial.suggest_float("train.head_lr", 1e-3, 1e-2)
        raise OSError(errno.EROFS, "Read-only file system", str(target))

    with pytest.raises(UnwritablePlaceError) as info:
        run_trial(study, study.ask(), objective, config=StorageConfig(url=db))
    assert_says(info.value, f"{target} is in a read-only place", "the trial is queued again")
    assert [(t.state.name, t.user_attrs.get("fail_reason")) for t in study.trials] == [
        ("FAIL", "place_unwritable"), ("WAITING", None)]


def test_a_cache_that_is_a_file_costs_time_not_the_run(study_toml, tmp_path, monkeypatch, capsys) -> None:
    """A cache only saves time, so ``$STUDY_CACHE_DIR`` naming a file is one warning and the run goes on:
    stopping would lose a run for a speed-up, and the file is never touched."""
    from study.data import tokenize

    cache = tmp_path / "cache-file"
    cache.write_text("mine\n")
    monkeypatch.setenv("STUDY_CACHE_DIR", str(cache))
    monkeypatch.setattr(tokenize, "_MEMORY", {})
    monkeypatch.setattr(tokenize, "_WARNED_CACHES", set(), raising=False)
    assert main(["run", "--config", str(study_toml()), *ONE_TRIAL]) == 0
    err = capsys.readouterr().err
    assert_says(err, f"The cache {cache} cannot be written (it is a file, not a folder)", "$STUDY_CACHE_DIR")
    assert flatten(err).count("cannot be written") == 1
    assert_not_says(err, "Traceback")
    assert cache.read_text() == "mine\n"


def test_a_read_only_cache_is_one_warning_and_the_run_goes_on(study_toml, tmp_path, repo_root,
                                                               monkeypatch) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    why = _read_only_mount_works(cache)
    if why:
        pytest.skip(why)
    monkeypatch.setenv("STUDY_CACHE_DIR", str(cache))  # the subprocess's environment is a copy of ours
    result = _in_read_only(cache, repo_root, "run", "--config", str(study_toml()), *ONE_TRIAL)
    assert result.returncode == 0, result.stderr
    assert_says(result.stderr, f"The cache {cache} cannot be written (it is read-only")
    assert flatten(result.stderr).count("cannot be written") == 1
    assert_not_says(result.stderr, "Traceback")
    assert list(cache.iterdir()) == []
