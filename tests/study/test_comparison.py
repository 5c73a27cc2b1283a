"""The test comparison: tuned against the untuned default and the baselines, with paired bootstrap intervals;
the untuned default enqueued as trial 0, claimed once and never pruned away; the table a real run prints."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial
from study.models.metrics import evaluate_ranking, paired_bootstrap_interval, per_query_ndcg

from study.cli import main
from study.evaluation.comparison import (
    Comparison,
    ComparisonRow,
    Scored,
    build_comparison,
)
from study.evaluation.comparison_table import verdict
from study.objective import BEST, trial_dir
from study.runtime.attrs import study_attr, trial_attr
from study.runtime.checkpoints import prune_checkpoints
from study.runtime.request import load_config
from study.runtime.studies import create_or_resume, default_params
from study.runtime.trials import counts, default_trial
from study.runtime.worker import claim_trial
from study.space import suggest
from tests.messages import assert_says


def judged(seed: int, n_queries: int = 30) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    sizes = rng.integers(3, 12, size=n_queries)
    query_ids = np.repeat([f"q{i:03d}" for i in range(n_queries)], sizes)
    labels = rng.integers(0, 4, size=query_ids.size).astype(float)
    labels[query_ids == "q007"] = 0.0  # no positive gain: left out of NDCG and of the intervals
    return labels, query_ids


def scored(key: str, scores: np.ndarray, labels: np.ndarray, query_ids: np.ndarray) -> Scored:
    return Scored(key=key, label=key.replace("_", " "), scores=scores, labels=labels, query_ids=query_ids)


def test_build_comparison_matches_direct_computations() -> None:
    labels, query_ids = judged(0)
    rng = np.random.default_rng(1)
    tuned = labels + rng.normal(0, 0.8, size=labels.size)
    zero_shot = labels + rng.normal(0, 2.0, size=labels.size)
    random = rng.random(labels.size)
    perm = rng.permutation(labels.size)  # another row order for one model: still compared query by query
    rows = [scored("tuned", tuned, labels, query_ids),
            scored("zero_shot_encoder", zero_shot[perm], labels[perm], query_ids[perm]),
            scored("random", random, labels, query_ids)]
    comparison = build_comparison(rows, k=10, n_resamples=300, seed=5, best_trial=3)
    assert [r.key for r in comparison.rows] == ["tuned", "zero_shot_encoder", "random"]
    assert comparison.n_queries == 30 and comparison.n_scored == 29 and comparison.best_trial == 3
    _, reference = per_query_ndcg(tuned, labels, query_ids, k=10)
    for row, scores in zip(comparison.rows, (tuned, zero_shot, random)):
        direct = evaluate_ranking(scores, labels, query_ids, k=10)
        assert row.ndcg == pytest.approx(direct["ndcg@10"], abs=1e-6)
        assert row.mrr == pytest.approx(direct["mrr"], abs=1e-6)
        if row.key == "tuned":
            assert row.delta is None and row.excludes_zero is None
            continue
        _, other = per_query_ndcg(scores, labels, query_ids, k=10)
        mean, low, high = paired_bootstrap_interval(reference, other, n_resamples=300, seed=5)
        assert (row.delta, row.low, row.high) == pytest.approx((mean, low, high), abs=1e-6)
        assert row.delta == pytest.approx(comparison.rows[0].ndcg - row.ndcg, abs=1e-5)
        assert row.excludes_zero == (low > 0 or high < 0)
    assert comparison.row("random").excludes_zero  # a good model against random order on 29 queries
    stored = json.loads(json.dumps(comparison.to_dict()))  # as a study user attribute
    assert stored["rows"][2]["excludes_zero"] is True and Comparison.from_dict(stored) == comparison


def test_a_model_against_itself_gives_an_interval_collapsed_to_zero() -> None:
    labels, query_ids = judged(2)
    scores = np.random.default_rng(0).random(labels.size)
    comparison = build_comparison([scored("tuned", scores, labels, query_ids),
                                   scored("untuned_default", scores.copy(), labels, query_ids)])
    row = comparison.rows[1]
    assert (row.delta, row.low, row.high) == (0.0, 0.0, 0.0) and row.excludes_zero is False


def fixed_comparison(delta: float, low: float, high: float) -> Comparison:
    return Comparison(metric="ndcg@10", n_queries=70, n_scored=70, best_trial=7, default_trial=0, rows=(
        ComparisonRow("tuned", "tuned (best trial 7)", 0.9357, 1.0),
        ComparisonRow("untuned_default", "untuned default (trial 0)", 0.93, 1.0, 0.0057, 0.001, 0.0102),
        ComparisonRow("zero_shot_encoder", "zero-shot encoder", 0.9357 - delta, 1.0, delta, low, high),
        ComparisonRow("random", "random order", 0.7284, 0.8988, 0.2073, 0.18, 0.23),
    ))


@pytest.mark.parametrize(("delta", "low", "high", "says"), [
    (0.0051, 0.001, 0.0102, ("The tuned model beats the zero-shot encoder on these 70 test queries: "
                             "+0.0051 NDCG@10, 95% interval [+0.0010, +0.0102], above 0.")),
    (0.0051, -0.0021, 0.012, "does not clearly beat the zero-shot encoder"),
    (-0.01, -0.02, -0.001, "is worse than the zero-shot encoder"),
])
def test_renderers_show_every_row_and_say_plainly_whether_tuning_beat_the_zero_shot_encoder(delta, low, high,
                                                                                          says) -> None:
    comparison = fixed_comparison(delta, low, high)
    assert_says(verdict(comparison), says)
    text = comparison.to_text()
    lines = text.splitlines()
    assert lines[0].split() == ["model", "(test,", "70", "queries)", "ndcg@10", "mrr", "tuned", "-", "model",
                                "95%", "interval"]
    assert lines[1].split() == ["tuned", "(best", "trial", "7)", "0.9357", "1.0000"]
    assert lines[2].split() == ["untuned", "default", "(trial", "0)", "0.9300", "1.0000", "+0.0057",
                                "[+0.0010,", "+0.0102]"]
    assert len({line.index("0.9") for line in lines[1:3]}) == 1  # columns line up
    assert_says(text, says, "random order")
    markdown = comparison.to_markdown()
    assert "| untuned default (trial 0) | 0.9300 | 1.0000 | **+0.0057** | [+0.0010, +0.0102] |" in markdown
    assert says in markdown
    page = comparison.to_html()
    assert "<td>zero-shot encoder</td>" in page and "<b>+0.2073</b>" in page


def test_default_params_are_the_config_values_and_out_of_range_defaults_are_left_to_the_sampler(
        study_toml) -> None:
    path = study_toml(tail=(
        '"model.dropout" = { low = 0.0, high = 0.3 }\n'
        '"train.weight_decay" = { low = 0.05, high = 0.1 }\n'
        '"model.n_layers" = { choices = [3, 6] }\n'))
    config = load_config(path)
    params, outside = default_params(config)
    assert params == {"train.head_lr": config.train.head_lr, "train.loss": config.train.loss,
                      "model.dropout": config.model.dropout}
    assert sorted(outside) == ["model.n_layers", "train.weight_decay"]


def test_the_untuned_default_is_trial_0_claimed_once_and_counted_toward_n_trials(study_toml) -> None:
    config = load_config(study_toml(), overrides=["study.n_trials=2"])
    study = create_or_resume(config, fingerprint="f", summary={})
    create_or_resume(config, fingerprint="f", summary={})  # resuming enqueues nothing more
    (waiting,) = study.get_trials()
    assert waiting.number == 0 and waiting.state == TrialState.WAITING
    assert waiting.user_attrs["default_config"]
    claimed = [claim_trial(study, config, sampler_seed=i) for i in range(3)]
    assert claimed[2] is None  # two claims (one queued, one new) already reach n_trials = 2
    first, second = claimed[0], claimed[1]
    assert (first.number, second.number) == (0, 1)
    defaults = {"train.head_lr": config.train.head_lr, "train.loss": config.train.loss}
    assert suggest(first, config.search) == defaults
    study.tell(first, 0.5)
    study.tell(second, 0.6)
    assert counts(study)["FINISHED"] == 2 and len(study.get_trials()) == 2
    assert default_trial(study).number == 0


def test_checkpoint_pruning_never_deletes_the_untuned_default(study_toml) -> None:
    config = load_config(study_toml(), overrides=["study.keep_checkpoints=1"])
    study = optuna.create_study(direction="maximize", study_name=config.study.name)
    dist = {"train.head_lr": FloatDistribution(1e-3, 1e-2, log=True)}
    for number, value in enumerate([0.70, 0.90, 0.80, 0.85]):  # the default (trial 0) is the worst
        study.add_trial(create_trial(value=value, params={"train.head_lr": 1e-3 * (1 + number)},
                                     distributions=dist, user_attrs={"default_config": number == 0}))
        folder = trial_dir(config, number)
        folder.mkdir(parents=True)
        (folder / BEST).write_bytes(b"weights")
    prune_checkpoints(study, config)
    assert sorted(p.name for p in trial_dir(config, 0).parent.iterdir()) == ["trial_00000", "trial_00001"]


def test_a_run_prints_and_stores_the_comparison(study_toml, capsys) -> None:
    path = study_toml()
    config = load_config(path)
    overrides = ["--set", "pruner.name=none", "--set", "study.keep_checkpoints=1"]
    assert main(["run", "--config", str(path), *overrides]) == 0
    printed = capsys.readouterr().out
    study = optuna.load_study(study_name="t", storage=config.storage.url)
    zero = study.trials[0]
    assert zero.user_attrs["default_config"] and zero.state == TrialState.COMPLETE
    assert zero.params == {"train.head_lr": config.train.head_lr, "train.loss": config.train.loss}
    assert Path(trial_attr(zero, "checkpoint")).is_file()  # kept whatever its rank, for the test evaluation
    stored = study_attr(study, "comparison")
    assert [r["key"] for r in stored["rows"]] == ["tuned", "untuned_default", "zero_shot_encoder",
                                                  "tfidf_cosine", "random", "behaviour_only"]
    assert (study_attr(study, "test_default")["trial"] == 0
            and "tfidf_cosine" in study_attr(study, "baselines"))
    assert len(json.dumps(stored)) < 4000  # rows and intervals, no per-query arrays
    assert_says(printed, "tuned (best trial", "untuned default (trial 0)", "zero-shot encoder",
                "tf-idf cosine", "random order", "behaviour only", "95% interval",
                "the zero-shot encoder on these")
    storage = ["--storage", config.storage.url]
    assert main(["best", "--name", "t", "--json", *storage]) == 0
    best = json.loads(capsys.readouterr().out)
    assert best["comparison"] == stored and best["comparison"]["best_trial"] == best["trial"]
    row = best["comparison"]["rows"][2]
    assert row["low"] <= row["delta"] <= row["high"] and isinstance(row["excludes_zero"], bool)
    assert main(["status", "--name", "t", *storage]) == 0
    assert_says(capsys.readouterr().out, "untuned default (trial 0)")
