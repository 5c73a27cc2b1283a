"""What a resume may change (the target) and what it may not (settings that shape a trial), and the metric
that is optimised also picking each trial's best epoch."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from study.cli import main
from study.runtime.attrs import study_attr, trial_attr
from study.runtime.request import load_config
from tests.messages import assert_not_says, assert_says

FAST = ["--set", "train.epochs=1", "--quiet"]


def test_raising_n_trials_on_resume_is_stored_and_a_late_worker_says_why_it_does_nothing(
        study_toml, capsys) -> None:
    path = study_toml()
    url = load_config(path).storage.url
    assert main(["run", "--config", str(path), "--n-trials", "1", *FAST]) == 0
    assert main(["run", "--config", str(path), "--n-trials", "2", *FAST]) == 0
    study = optuna.load_study(study_name="t", storage=url)
    assert study_attr(study, "config")["study"]["n_trials"] == 2
    capsys.readouterr()
    assert main(["status", "--name", "t", "--storage", url]) == 0
    assert_says(capsys.readouterr().out, "finished 2/2")
    assert main(["worker", "--name", "t", "--storage", url, "--quiet"]) == 0
    assert_says(capsys.readouterr().err, "already has 2/2 finished trials: nothing to do")
    assert len(optuna.load_study(study_name="t", storage=url).trials) == 2


def test_the_resume_refusal_names_each_changed_setting(study_toml, capsys) -> None:
    path = study_toml()
    assert main(["run", "--config", str(path), "--n-trials", "1", *FAST]) == 0
    capsys.readouterr()
    code = main(["run", "--config", str(path), "--n-trials", "1", "--set", "train.epochs=2",
                 "--set", "model.dropout=0.2", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert_says(err, "train.epochs 1 -> 2", "model.dropout 0.1 -> 0.2", "nothing was changed")


def test_a_study_made_before_a_setting_existed_resumes_while_it_holds_its_default(study_toml, capsys) -> None:
    from study.runtime.attrs import set_study_attr

    path = study_toml()
    url = load_config(path).storage.url
    assert main(["run", "--config", str(path), "--n-trials", "1", *FAST]) == 0
    study = optuna.load_study(study_name="t", storage=url)
    old = study_attr(study, "config")  # as an older version stored it: without the settings added since
    del old["model"]["trainable_layers"], old["data"]["duplicates"]
    set_study_attr(study, "config", old)
    set_study_attr(study, "training_hash", "an-older-hash")
    assert main(["run", "--config", str(path), "--n-trials", "2", *FAST]) == 0
    assert len(optuna.load_study(study_name="t", storage=url).trials) == 2
    capsys.readouterr()
    code = main(["run", "--config", str(path), "--n-trials", "3", "--set", "model.trainable_layers=1",
                 "--quiet"])
    assert code == 2
    assert_says(capsys.readouterr().err, "model.trainable_layers (unset) -> 1")


def test_the_optimised_metric_also_selects_the_best_epoch(study_toml) -> None:
    path = study_toml()
    assert main(["run", "--config", str(path), "--n-trials", "2", "--set", 'study.metric="mrr"',
                 "--set", "train.epochs=2", "--set", "train.patience=0", "--quiet"]) == 0
    study = optuna.load_study(study_name="t", storage=load_config(path).storage.url)
    assert study.metric_names == ["mrr"]
    for t in study.get_trials(states=(TrialState.COMPLETE,)):
        curve = [c["mrr"] for c in trial_attr(t, "curve")]
        assert t.value == pytest.approx(max(curve))  # the epoch kept is the best by MRR, not by NDCG
        assert t.user_attrs["val_metrics"]["mrr"] == pytest.approx(t.value)
    assert study.user_attrs["test"]["metrics"]["mrr"] > 0


@pytest.mark.parametrize(("setting", "message"), [
    ('study.metric="precision"', "study.metric must be one of ndcg@10, mrr, map, recall@10, roc_auc"),
    ('study.metric="ndcg@5"', "set train.ndcg_k = 5"),
    ('study.n_trials="ten"', "study.n_trials must be a whole number, got 'ten'"),
    ("study.n_trials=2.5", "study.n_trials must be a whole number, got 2.5"),
    ("study.n_trials=0", "n_trials must be >= 1, got 0"),
])
def test_config_problems_are_refused_before_a_study_exists(tmp_path, study_toml, capsys, setting,
                                                           message) -> None:
    path = study_toml()
    assert main(["run", "--config", str(path), "--set", setting, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert_says(err, message)
    assert_not_says(err, "self.")
    assert not (tmp_path / "studies.db").exists() or not optuna.get_all_study_summaries(
        load_config(study_toml()).storage.url)


def test_a_prior_study_made_before_prior_residual_resumes_only_as_it_ran(study_toml, capsys) -> None:
    """The stored study's prior models scored ``s * cos0 + r``: resuming with the new default would change
    what new trials compute, so it is refused naming the setting and the flag that resumes it as it ran."""
    from study.config import config_from_dict
    from study.runtime.attrs import set_study_attr

    path = study_toml()
    url = load_config(path).storage.url
    assert main(["run", "--config", str(path), "--n-trials", "1", *FAST]) == 0
    study = optuna.load_study(study_name="t", storage=url)
    old = study_attr(study, "config")
    assert old["model"]["architecture"] == "prior" and old["model"]["prior_residual"] == "cosine"
    del old["model"]["prior_residual"]  # as an older version stored it
    set_study_attr(study, "config", old)
    set_study_attr(study, "training_hash", "an-older-hash")
    assert config_from_dict(old).model.prior_residual == "score"  # checkpoints and exports score as they did
    capsys.readouterr()
    assert main(["run", "--config", str(path), "--n-trials", "2", *FAST]) == 2
    assert_says(capsys.readouterr().err, "model.prior_residual 'score' -> 'cosine'",
                "--set model.prior_residual=score resumes it as it ran")
    assert main(["run", "--config", str(path), "--n-trials", "2", "--set", "model.prior_residual=score",
                 *FAST]) == 0
    assert len(optuna.load_study(study_name="t", storage=url).trials) == 2


def test_a_frozen_study_made_before_prior_residual_resumes_as_it_is(study_toml) -> None:
    from study.runtime.attrs import set_study_attr

    path = study_toml()
    url = load_config(path).storage.url
    frozen = ["--set", "model.architecture=frozen"]
    assert main(["run", "--config", str(path), "--n-trials", "1", *frozen, *FAST]) == 0
    study = optuna.load_study(study_name="t", storage=url)
    old = study_attr(study, "config")
    del old["model"]["prior_residual"]
    set_study_attr(study, "config", old)
    set_study_attr(study, "training_hash", "an-older-hash")
    assert main(["run", "--config", str(path), "--n-trials", "2", *frozen, *FAST]) == 0
    assert len(optuna.load_study(study_name="t", storage=url).trials) == 2
