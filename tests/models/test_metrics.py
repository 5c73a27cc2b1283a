"""Ranking metrics against scikit-learn and direct per-query computations."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    f1_score,
    ndcg_score,
    precision_score,
    recall_score,
    roc_auc_score,
)
from study.models.metrics import (
    dcg_at_k,
    evaluate_ranking,
    ndcg_at_k,
    paired_bootstrap_interval,
    per_query_ndcg,
    per_query_reciprocal_rank,
)


def make_queries(seed: int = 0, n_queries: int = 40):
    """Items of ``n_queries`` queries, shuffled so no query is contiguous; scores are distinct.

    Returns (scores, labels, query_ids, groups) where groups maps each query id to its item indices.
    Some queries have no positive label, some a single item.
    """
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 25, size=n_queries)
    query_ids = np.repeat(np.arange(100, 100 + n_queries), sizes)
    labels = rng.integers(0, 4, size=query_ids.size).astype(float)
    labels[np.isin(query_ids, [101, 105, 110])] = 0.0
    scores = rng.normal(size=query_ids.size) + 0.4 * labels
    perm = rng.permutation(query_ids.size)
    scores, labels, query_ids = scores[perm], labels[perm], query_ids[perm]
    groups = {q: np.flatnonzero(query_ids == q) for q in np.unique(query_ids)}
    return scores, labels, query_ids, groups


@pytest.mark.parametrize("k", [1, 3, 10, None])
def test_ndcg_at_k_matches_sklearn_with_exponential_gain(k: int | None) -> None:
    scores, labels, _, groups = make_queries(1)
    for rows in groups.values():
        s, g = scores[rows], labels[rows]
        value = ndcg_at_k(s, g, k)
        if g.max() == 0:
            assert np.isnan(value)
        elif rows.size == 1:
            assert value == 1.0
        else:
            assert value == pytest.approx(ndcg_score([2**g - 1], [s], k=k))


def test_dcg_at_k_by_hand_and_ties_keep_original_order() -> None:
    labels = np.array([1.0, 3.0, 0.0, 2.0])
    expected = 7 / np.log2(2) + 3 / np.log2(3) + 1 / np.log2(4)  # order 1, 3, 0 by score
    assert dcg_at_k([0.2, 0.9, 0.1, 0.5], labels, 3) == pytest.approx(expected)
    # All scores tied: the original order stands.
    assert dcg_at_k(np.zeros(4), labels, None) == pytest.approx(1 + 7 / np.log2(3) + 0 + 3 / np.log2(5))
    assert ndcg_at_k(np.zeros(4), labels, 2) == pytest.approx((1 + 7 / np.log2(3)) / (7 + 3 / np.log2(3)))


def test_ideal_dcg_covers_all_judged_items_not_just_the_top_k() -> None:
    # The best item is ranked last: with k=2 NDCG sees none of its gain, but the ideal DCG does.
    value = ndcg_at_k([3.0, 2.0, 1.0], [0.0, 0.0, 2.0], 2)
    assert value == 0.0


def test_evaluate_ranking_matches_sklearn_and_direct_computations() -> None:
    scores, labels, query_ids, groups = make_queries(2)
    k, threshold = 5, 2.0
    metrics = evaluate_ranking(
        scores, labels, query_ids, k=k, relevance_threshold=threshold, score_threshold=0.3
    )

    ndcgs, reciprocal_ranks, average_precisions, recalls = [], [], [], []
    no_positive = no_relevant = 0
    for rows in groups.values():
        s, g = scores[rows], labels[rows]
        if g.max() == 0:
            no_positive += 1
        else:
            ndcgs.append(1.0 if rows.size == 1 else ndcg_score([2**g - 1], [s], k=k))
        relevant = g >= threshold
        if not relevant.any():
            no_relevant += 1
            continue
        ranked_relevant = relevant[np.argsort(-s)]
        reciprocal_ranks.append(1.0 / (np.argmax(ranked_relevant) + 1))
        average_precisions.append(average_precision_score(relevant, s))
        recalls.append(ranked_relevant[:k].sum() / relevant.sum())

    relevant, predicted = labels >= threshold, scores >= 0.3
    assert metrics["n_queries"] == len(groups)
    assert metrics["n_queries_no_positive"] == no_positive == 3
    assert metrics["n_queries_no_relevant"] == no_relevant
    assert metrics[f"ndcg@{k}"] == pytest.approx(np.mean(ndcgs))
    assert metrics["mrr"] == pytest.approx(np.mean(reciprocal_ranks))
    assert metrics["map"] == pytest.approx(np.mean(average_precisions))
    assert metrics[f"recall@{k}"] == pytest.approx(np.mean(recalls))
    assert metrics["accuracy"] == pytest.approx(accuracy_score(relevant, predicted))
    assert metrics["precision"] == pytest.approx(precision_score(relevant, predicted))
    assert metrics["recall"] == pytest.approx(recall_score(relevant, predicted))
    assert metrics["f1"] == pytest.approx(f1_score(relevant, predicted))
    assert metrics["roc_auc"] == pytest.approx(roc_auc_score(relevant, scores))


def test_roc_auc_with_tied_scores_matches_sklearn() -> None:
    scores, labels, query_ids, _ = make_queries(3)
    coarse = np.round(scores)  # many ties
    metrics = evaluate_ranking(coarse, labels, query_ids)
    assert metrics["roc_auc"] == pytest.approx(roc_auc_score(labels >= 1.0, coarse))


def test_per_query_ndcg_agrees_with_ndcg_at_k_and_string_ids() -> None:
    scores, labels, query_ids, groups = make_queries(4)
    ids, values = per_query_ndcg(scores, labels, query_ids.astype(str), k=10)
    assert list(ids) == sorted(str(q) for q in groups)
    for query, value in zip(ids, values):
        expected = ndcg_at_k(scores[groups[int(query)]], labels[groups[int(query)]], 10)
        assert value == pytest.approx(expected, nan_ok=True)
    assert np.isnan(values).sum() == sum(labels[rows].max() == 0 for rows in groups.values()) >= 3
    metrics = evaluate_ranking(scores, labels, query_ids.astype(str))
    assert metrics["ndcg@10"] == pytest.approx(np.nanmean(values))


def test_query_order_of_rows_does_not_matter() -> None:
    scores, labels, query_ids, _ = make_queries(5)
    order = np.argsort(query_ids, kind="stable")
    shuffled = evaluate_ranking(scores, labels, query_ids)
    contiguous = evaluate_ranking(scores[order], labels[order], query_ids[order])
    assert shuffled == pytest.approx(contiguous, nan_ok=True)


def test_ties_are_broken_by_original_order_within_each_query() -> None:
    query_ids = np.array([7, 8, 7, 8, 7])
    labels = np.array([0.0, 1.0, 2.0, 0.0, 1.0])
    metrics = evaluate_ranking(np.zeros(5), labels, query_ids, k=10)
    q7 = ndcg_at_k(np.zeros(3), labels[[0, 2, 4]], 10)  # ranked as given: 0, 2, 1
    assert metrics["ndcg@10"] == pytest.approx((q7 + 1.0) / 2)
    assert metrics["mrr"] == pytest.approx((1 / 2 + 1) / 2)


def test_single_class_gives_nan_auc_and_nan_means() -> None:
    metrics = evaluate_ranking([0.5, 0.1, 0.3], [0.0, 0.0, 0.0], [1, 1, 2])
    assert np.isnan(metrics["roc_auc"]) and np.isnan(metrics["ndcg@10"]) and np.isnan(metrics["mrr"])
    assert metrics["n_queries"] == 2 and metrics["n_queries_no_positive"] == 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scores": [0.1, 0.2], "labels": [1.0], "query_ids": [1, 1]}, "same length"),
        ({"scores": [0.1, 0.2], "labels": [1.0, 0.0], "query_ids": [1]}, "query_ids"),
        ({"scores": [0.1, np.nan], "labels": [1.0, 0.0], "query_ids": [1, 1]}, "NaN"),
        ({"scores": [0.1, 0.2], "labels": [np.nan, 0.0], "query_ids": [1, 1]}, "NaN"),
        ({"scores": [0.1, 0.2], "labels": [-1.0, 0.0], "query_ids": [1, 1]}, ">= 0"),
        ({"scores": [0.1, 0.2], "labels": [1.0, 0.0], "query_ids": [1, 1], "k": 0}, "k=0"),
        ({"scores": [0.1, 0.2], "labels": [1.0, 0.0], "query_ids": [1, 1], "k": None}, "k=None"),
        ({"scores": [], "labels": [], "query_ids": []}, "at least one item"),
    ],
)
def test_bad_inputs_raise_with_the_value(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        evaluate_ranking(**kwargs)


def test_fitted_score_threshold_maximises_f1_and_ignores_the_score_offset() -> None:
    from sklearn.metrics import f1_score
    from study.models.metrics import best_f1_threshold

    rng = np.random.default_rng(3)
    labels = rng.integers(0, 4, size=300).astype(float)
    scores = labels + rng.normal(0, 1.2, size=300) - 40.0  # a ranking loss's arbitrary offset: all negative
    relevant = labels >= 2
    threshold = best_f1_threshold(relevant, scores)
    best = f1_score(relevant, scores >= threshold)
    for t in np.unique(scores):  # no other cut does better
        assert f1_score(relevant, scores >= t) <= best + 1e-12
    query_ids = np.repeat(np.arange(30), 10)
    at_zero = evaluate_ranking(scores, labels, query_ids, relevance_threshold=2)
    fitted = evaluate_ranking(scores, labels, query_ids, relevance_threshold=2, score_threshold=None)
    assert at_zero["f1"] == 0.0 and "score_threshold" not in at_zero  # nothing scores >= 0
    assert fitted["score_threshold"] == threshold and fitted["f1"] == pytest.approx(best)
    shifted = evaluate_ranking(scores + 100.0, labels, query_ids, relevance_threshold=2, score_threshold=None)
    assert shifted["f1"] == pytest.approx(best)
    # ties are never split; no relevant item -> nothing predicted relevant, and a finite threshold
    assert best_f1_threshold([True, False, True], [1.0, 1.0, 0.0]) == 0.0
    assert best_f1_threshold([False, False], [0.2, 0.5]) > 0.5


@pytest.mark.parametrize("k", [1, 5, 10])
def test_per_query_ndcg_matches_sklearn_ndcg_score_query_by_query(k: int) -> None:
    scores, labels, query_ids, groups = make_queries(11, n_queries=60)
    ids, values = per_query_ndcg(scores, labels, query_ids, k=k)
    for query, value in zip(ids, values):
        rows = groups[query]
        if labels[rows].max() == 0:  # no positive gain: NaN, left out of the mean
            assert np.isnan(value)
        elif rows.size == 1:  # scikit-learn refuses a single document; its NDCG is 1
            assert value == pytest.approx(1.0)
        else:
            assert value == pytest.approx(ndcg_score([2 ** labels[rows] - 1], [scores[rows]], k=k))
    assert np.nanmean(values) == pytest.approx(evaluate_ranking(scores, labels, query_ids, k=k)[f"ndcg@{k}"])


def test_per_query_reciprocal_rank_by_hand_and_its_mean_is_mrr() -> None:
    ids, rr = per_query_reciprocal_rank([0.9, 0.8, 0.1, 0.5, 0.7, 0.3], [0, 2, 1, 0, 0, 0],
                                        ["a", "a", "a", "b", "b", "b"])
    assert list(ids) == ["a", "b"] and rr[0] == pytest.approx(0.5) and np.isnan(rr[1])
    scores, labels, query_ids, groups = make_queries(12)
    _, rr = per_query_reciprocal_rank(scores, labels, query_ids, relevance_threshold=2.0)
    for value, rows in zip(rr, groups.values()):
        ranked = labels[rows][np.argsort(-scores[rows], kind="stable")]
        hits = np.flatnonzero(ranked >= 2.0)
        assert value == pytest.approx(1.0 / (hits[0] + 1) if hits.size else np.nan, nan_ok=True)
    mrr = evaluate_ranking(scores, labels, query_ids, relevance_threshold=2.0)["mrr"]
    assert np.nanmean(rr) == pytest.approx(mrr)


def bootstrap_by_hand(a: list[float], b: list[float], n_resamples: int,
                      seed: int) -> tuple[float, float, float]:
    """The definition, one Python loop: resample query positions, mean the differences, take 2.5/97.5%."""
    pairs = [(x, y) for x, y in zip(a, b) if not (np.isnan(x) or np.isnan(y))]
    diff = [x - y for x, y in pairs]
    rng = np.random.default_rng(seed)
    means = []
    for _ in range(n_resamples):
        picks = rng.integers(0, len(diff), size=len(diff))
        means.append(sum(diff[int(j)] for j in picks) / len(diff))
    means.sort()
    return sum(diff) / len(diff), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def test_paired_bootstrap_interval_matches_a_direct_loop_with_the_same_seed() -> None:
    rng = np.random.default_rng(3)
    b = rng.uniform(0.5, 1.0, size=71)
    a = np.clip(b + rng.normal(0.01, 0.05, size=71), 0, 1)
    a[[4, 9]] = np.nan  # queries without a positive gain are left out of both
    b[4] = np.nan
    got = paired_bootstrap_interval(a, b, n_resamples=500, seed=7)
    assert got == pytest.approx(bootstrap_by_hand(list(a), list(b), 500, 7), abs=1e-12)
    low, high = got[1:]
    assert low < got[0] < high
    assert paired_bootstrap_interval(a, b, n_resamples=500, seed=8) != got  # the seed matters
    assert paired_bootstrap_interval(a, b, n_resamples=500, seed=7) == got  # and fixes the result


def test_paired_bootstrap_interval_of_a_constant_difference_collapses_to_it() -> None:
    b = np.random.default_rng(0).uniform(0, 0.7, size=50)
    mean, low, high = paired_bootstrap_interval(b + 0.125, b, n_resamples=200, seed=1)
    assert mean == pytest.approx(0.125) and low == pytest.approx(0.125) and high == pytest.approx(0.125)
    assert paired_bootstrap_interval(b, b) == (0.0, 0.0, 0.0)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"a": [0.5, 0.6], "b": [0.5]}, "pair one value per query"),
    ({"a": [np.nan], "b": [0.5]}, "no query has a finite value"),
    ({"a": [0.5], "b": [0.5], "n_resamples": 0}, "n_resamples=0"),
    ({"a": [0.5], "b": [0.5], "confidence": 1.0}, "confidence=1.0"),
])
def test_paired_bootstrap_interval_rejects_bad_inputs(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        paired_bootstrap_interval(**kwargs)
