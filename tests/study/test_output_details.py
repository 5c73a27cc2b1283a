"""The small things a person reads: the ``trials`` table (distinct headers, the reason of every pruned and
failed trial, stored as it happened), ``compare`` (full names, ``-`` explained instead of ``nan``), ``best``
(counts as whole numbers), ``delete --yes`` (said once), and why two comparison rows can be identical."""

from __future__ import annotations

import optuna
import pytest

from study.cli import main
from study.evaluation.comparison import Comparison, ComparisonRow
from study.runtime.attrs import set_study_attr
from study.runtime.worker import run_trial
from study.storage.database import StorageConfig
from tests.messages import assert_not_says, assert_says, says


def _row(key: str, label: str, ndcg: float, delta: float | None = None) -> ComparisonRow:
    interval = () if delta is None else (delta, delta - 0.01, delta + 0.01)
    return ComparisonRow(key, label, ndcg, 0.9, *interval)


def _store(study: optuna.Study, rows: tuple[ComparisonRow, ...]) -> None:
    set_study_attr(study, "comparison", Comparison(metric="ndcg@10", n_queries=40, n_scored=40, best_trial=0,
                                                   rows=rows).to_dict())


def test_trials_stores_every_reason_and_its_headers_are_distinct(tmp_path, capsys) -> None:
    db = f"sqlite:///{tmp_path / 's.db'}"
    study = optuna.create_study(study_name="s", storage=db, direction="maximize")
    config = StorageConfig(url=db)

    def complete(trial):
        trial.suggest_int("train.epochs", 2, 4)
        trial.suggest_float("train.head_lr", 1e-3, 1e-2)
        trial.set_user_attr("epochs_run", 2)
        return 0.8

    def pruned(trial):
        complete(trial)
        raise optuna.TrialPruned("ndcg@10 0.7000 at epoch 1 below the median")

    def failed(trial):
        complete(trial)
        raise ValueError("the head diverged")

    for objective in (complete, pruned, failed):
        run_trial(study, study.ask(), objective, config=config, catch=(ValueError,))
    reasons = [t.user_attrs.get("prune_reason") or t.user_attrs.get("fail_reason") for t in study.trials]
    assert reasons == [None, "ndcg@10 0.7000 at epoch 1 below the median", "ValueError: the head diverged"]
    assert main(["trials", "s", "--storage", db]) == 0
    header, *lines = capsys.readouterr().out.splitlines()
    headers = header.split()
    assert len(headers) == len(set(headers)) and "epochs_run" in headers and "train.epochs" in headers
    assert "head_lr" in headers  # unambiguous parameters lose their section
    assert_says(lines[1], "pruned", "ndcg@10 0.7000 at epoch 1 below the median")
    assert_says(lines[2], "fail", "ValueError: the head diverged")


def test_compare_shows_full_names_and_explains_a_missing_row(tmp_path, capsys) -> None:
    db = f"sqlite:///{tmp_path / 's.db'}"
    long_a, long_b = "shoes-with-behaviour-v3", "titles-only-without-features"
    a = optuna.create_study(study_name=long_a, storage=db, direction="maximize")
    b = optuna.create_study(study_name=long_b, storage=db, direction="maximize")
    _store(a, (_row("tuned", "tuned (best trial 0)", 0.91),
               _row("zero_shot_encoder", "zero-shot encoder", 0.88, 0.03),
               _row("behaviour_only", "behaviour only", 0.8, 0.11)))
    _store(b, (_row("tuned", "tuned (best trial 0)", 0.89),
               _row("zero_shot_encoder", "zero-shot encoder", 0.88, 0.01)))
    assert main(["compare", long_a, long_b, "--storage", db]) == 0
    out = capsys.readouterr().out
    header = out.splitlines()[0]
    assert long_a in header and long_b in header
    assert_not_says(out, "nan")
    behaviour = next(line for line in out.splitlines() if line.startswith("behaviour only"))
    assert behaviour.split()[-1] == "-"
    assert_says(out, "-: not measured for that study (behaviour only needs behaviour features")


def test_best_prints_counts_as_whole_numbers(tmp_path, capsys) -> None:
    db = f"sqlite:///{tmp_path / 's.db'}"
    study = optuna.create_study(study_name="s", storage=db, direction="maximize")
    study.set_user_attr("config", {"study": {"n_trials": 1, "metric": "ndcg@10"}})

    def objective(trial):
        trial.suggest_float("x", 0, 1)
        trial.set_user_attr("val_metrics",
                            {"ndcg@10": 0.91234, "n_queries": 105.0, "n_queries_no_positive": 3.0})
        return 0.91234

    study.optimize(objective, n_trials=1)
    assert main(["best", "s", "--storage", db]) == 0
    out = capsys.readouterr().out
    assert_says(out, "ndcg@10 0.9123", "n_queries 105,", "n_queries_no_positive 3")
    assert_not_says(out, "105.0")


def test_delete_yes_says_it_once(tmp_path, capfd) -> None:
    db = f"sqlite:///{tmp_path / 's.db'}"
    optuna.create_study(study_name="s", storage=db).optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    capfd.readouterr()
    assert main(["delete", "s", "--yes", "--storage", db]) == 0
    out, err = capfd.readouterr()
    assert (out + err).count("deleted") == 1 and says(out, "deleted study 's'")


@pytest.mark.parametrize("render", ["to_text", "to_markdown"])
def test_identical_rows_are_explained(render) -> None:
    comparison = Comparison(metric="ndcg@10", n_queries=40, n_scored=40, best_trial=3, default_trial=0, rows=(
        _row("tuned", "tuned (best trial 3)", 0.91),
        _row("untuned_default", "untuned default (trial 0)", 0.88, 0.03),
        _row("zero_shot_encoder", "zero-shot encoder", 0.88, 0.03)))
    assert_says(getattr(comparison, render)(), "untuned default and zero-shot encoder rows are identical",
                "was best at epoch 0, before any update, ranks exactly as the zero-shot encoder")
    assert_says(getattr(comparison, render)(), "a prior or frozen model starts at the zero-shot cosine")


def test_compare_never_pairs_studies_run_on_different_data(tmp_path, capsys) -> None:
    """Issue 19, item 10: query ids "q0".."q3" of two data sets are not the same queries."""
    db = f"sqlite:///{tmp_path / 's.db'}"
    studies = {}
    for name, fingerprint in (("a", "f" * 16), ("b", "0" * 16), ("c", "f" * 16)):
        study = optuna.create_study(study_name=name, storage=db, direction="maximize")
        _store(study, (_row("tuned", "tuned (best trial 0)", 0.9),))
        set_study_attr(study, "dataset_fingerprint", fingerprint)
        scores = {f"q{i}": 0.5 + 0.1 * i + 0.01 * len(studies) for i in range(4)}
        set_study_attr(study, "test_per_query", scores)
        studies[name] = study
    assert main(["compare", "a", "b", "--storage", db]) == 0
    out = capsys.readouterr().out
    assert_says(out, "a - b: no paired interval: the studies were run on different data", "f" * 16, "0" * 16)
    assert_not_says(out, "shared test queries", "paired bootstrap")
    assert main(["compare", "a", "c", "--storage", db]) == 0  # the same data: paired as before
    assert_says(capsys.readouterr().out, "on 4 shared test queries (95% paired bootstrap)")
