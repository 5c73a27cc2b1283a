"""One comparison model, three renderings: what a study stores becomes one :class:`Comparison` (a study
stored before comparisons existed included), and the run/status text, the dashboard note, the model card and
the report all show that one table."""

from __future__ import annotations

import optuna

from study.dashboard.note import study_note
from study.evaluation.comparison import Comparison, ComparisonRow
from study.runtime.attrs import set_study_attr, study_attrs
from tests.messages import assert_says

METRICS = {"ndcg@10": 0.91, "mrr": 0.95, "map": 0.88, "recall@10": 1.0, "f1": 0.8, "roc_auc": 0.75,
           "accuracy": 0.7, "n_queries": 40.0, "n_queries_no_positive": 2.0}


def legacy_attrs() -> dict:
    """What a study stored before the paired comparison existed: metrics only."""
    return {"test": {"trial": 4, "metrics": METRICS},
            "test_default": {"trial": 0, "metrics": {**METRICS, "ndcg@10": 0.85, "map": 0.8}},
            "baselines": {"zero_shot_encoder": {**METRICS, "ndcg@10": 0.87, "mrr": 0.9}},
            "config": {"study": {"metric": "ndcg@10"}}}


def stored_comparison() -> dict:
    """A comparison stored without per-row extra metrics (as written before they were kept)."""
    return Comparison(metric="ndcg@10", n_queries=40, n_scored=38, best_trial=4, default_trial=0, rows=(
        ComparisonRow("tuned", "tuned (best trial 4)", 0.91, 0.95),
        ComparisonRow("untuned_default", "untuned default (trial 0)", 0.85, 0.95, 0.06, 0.02, 0.1),
        ComparisonRow("zero_shot_encoder", "zero-shot encoder", 0.87, 0.9, 0.04, -0.01, 0.09),
    )).to_dict()


def test_a_study_without_a_stored_comparison_gets_one_rebuilt_from_its_test_metrics() -> None:
    comparison = Comparison.from_user_attrs(legacy_attrs())
    assert [r.key for r in comparison.rows] == ["tuned", "untuned_default", "zero_shot_encoder"]
    assert (comparison.n_queries, comparison.n_scored, comparison.best_trial) == (40, 38, 4)
    assert not comparison.has_intervals and comparison.rows[1].ndcg == 0.85
    text = comparison.to_text().splitlines()
    assert text[0].split() == ["model", "(test,", "40", "queries)", "ndcg@10", "mrr"]  # no interval columns
    assert text[2].split() == ["untuned", "default", "(trial", "0)", "0.8500", "0.9500"]
    assert_says(comparison.to_text(), "no intervals")
    markdown = comparison.to_markdown(all_metrics=True)
    assert "| model (test, 40 queries) | ndcg@10 | mrr | map | recall@10 | f1 | roc_auc |" in markdown
    assert "| untuned default (trial 0) | 0.8500 | 0.9500 | 0.8000 | 1.0000 | 0.8000 | 0.7500 |" in markdown
    assert Comparison.from_user_attrs(legacy_attrs(), best_trial=5) is None  # made for another trial
    assert Comparison.from_user_attrs({}) is None


def test_a_stored_comparison_is_completed_with_the_stored_test_metrics() -> None:
    attrs = {**legacy_attrs(), "comparison": stored_comparison()}
    comparison = Comparison.from_user_attrs(attrs)
    assert comparison.rows[0].metrics == {"map": 0.88, "recall@10": 1.0, "f1": 0.8, "roc_auc": 0.75}
    assert comparison.rows[1].metrics["map"] == 0.8 and comparison.extra_metrics == ["map", "recall@10", "f1",
                                                                                     "roc_auc"]
    page = comparison.to_html(all_metrics=True)
    assert "<th>map</th>" in page and "<th>tuned − model</th>" in page and "<b>+0.0600</b>" in page
    # the short table: the same columns as text and Markdown
    assert "<th>map</th>" not in comparison.to_html()
    text = comparison.to_text().splitlines()
    assert text[2].split()[-4:] == ["0.9500", "+0.0600", "[+0.0200,", "+0.1000]"]
    assert len({line.index(f"{r.mrr:.4f}") for line, r in zip(text[1:4], comparison.rows)}) == 1  # lined up
    # test metrics of an earlier best trial are not shown as this one's
    attrs["test"] = {"trial": 3, "metrics": METRICS}
    assert Comparison.from_user_attrs(attrs).rows[0].metrics == {}


def test_the_dashboard_note_shows_the_same_table() -> None:
    study = optuna.create_study(study_name="note", directions=["maximize"])
    attrs = {**legacy_attrs(), "comparison": stored_comparison()}
    for key, value in attrs.items():
        study.set_user_attr(key, value)
    note = study_note(study, {}, {"study": {"metric": "ndcg@10"}})
    assert Comparison.from_user_attrs(study_attrs(study)).to_markdown() in note
    set_study_attr(study, "comparison", None)  # no comparison stored: the metrics-only table
    note = study_note(study, {}, {"study": {"metric": "ndcg@10"}})
    assert "| zero shot encoder | 0.8700 | 0.9000 |" in note and "no intervals" in note
