"""Ranking and classification metrics in NumPy: NDCG@k, MRR, MAP, Recall@k, accuracy/precision/recall/F1
and ROC-AUC.

Conventions: gain ``2^g - 1``; discount ``1 / log2(rank + 1)`` with 1-based ranks; the ideal DCG is
taken over all judged items of the query; ties in score are broken deterministically by a stable sort
(descending score, then original order). An item is relevant when ``label >= relevance_threshold``.

:func:`evaluate_ranking` is vectorised: one ``lexsort`` by (query, -score) and ``bincount`` per metric,
no Python loop over queries. :func:`per_query_ndcg` and :func:`per_query_reciprocal_rank` give the per-query
values behind its means, and :func:`paired_bootstrap_interval` compares two models on the same queries.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def _check_k(k: int | None) -> None:
    if k is not None and (isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1):
        raise ValueError(f"k must be a positive int or None, got {k=}")


def _as_scores_labels(scores: ArrayLike, labels: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels, dtype=np.float64).ravel()
    if scores.shape != labels.shape:
        raise ValueError(f"scores and labels must have the same length, got {scores.size} and {labels.size}")
    if np.isnan(scores).any():
        raise ValueError(f"scores contain {int(np.isnan(scores).sum())} NaN values")
    if np.isnan(labels).any():
        raise ValueError(f"labels contain {int(np.isnan(labels).sum())} NaN values")
    if (labels < 0).any():
        raise ValueError(f"labels must be >= 0 (gain levels), got min label {labels.min()}")
    return scores, labels


def dcg_at_k(scores: ArrayLike, labels: ArrayLike, k: int | None = 10) -> float:
    """DCG of the top ``k`` items of one query ranked by ``scores`` (None: all items)."""
    _check_k(k)
    scores, labels = _as_scores_labels(scores, labels)
    order = np.argsort(-scores, kind="stable")[:k]
    gains = np.exp2(labels[order]) - 1.0
    return float(np.sum(gains / np.log2(np.arange(2, order.size + 2))))


def ndcg_at_k(scores: ArrayLike, labels: ArrayLike, k: int | None = 10) -> float:
    """NDCG@k of one query; the ideal DCG@k is over all its judged items. NaN without a positive gain."""
    _check_k(k)
    scores, labels = _as_scores_labels(scores, labels)
    ideal = dcg_at_k(labels, labels, k)
    if ideal <= 0:
        return float("nan")
    return dcg_at_k(scores, labels, k) / ideal


def _query_codes(query_ids: ArrayLike, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    """(sorted unique query ids, code in 0..Q-1 for each item)."""
    query_ids = np.asarray(query_ids).ravel()
    if query_ids.size != n_items:
        raise ValueError(f"query_ids must have one entry per item, got {query_ids.size} for {n_items} items")
    unique, codes = np.unique(query_ids, return_inverse=True)
    return unique, codes.ravel()


def _ranked(codes: np.ndarray, values: np.ndarray, n_queries: int) -> tuple[np.ndarray, np.ndarray]:
    """Item order grouped by query and by descending ``values`` (ties: original order), and 1-based ranks."""
    order = np.argsort(-values, kind="stable")
    order = order[np.argsort(codes[order], kind="stable")]  # two stable sorts = sort by (query, -value)
    starts = np.concatenate(([0], np.cumsum(np.bincount(codes, minlength=n_queries))[:-1]))
    ranks = np.arange(codes.size) - starts[codes[order]] + 1
    return order, ranks


def _dcg_per_query(
    codes: np.ndarray,
    ranking: tuple[np.ndarray, np.ndarray],
    gains: np.ndarray,
    k: int | None,
    n_queries: int,
) -> np.ndarray:
    order, ranks = ranking
    weights = gains[order] / np.log2(ranks + 1.0)
    if k is not None:
        weights = np.where(ranks <= k, weights, 0.0)
    return np.bincount(codes[order], weights=weights, minlength=n_queries)


def _ndcg_per_query(
    codes: np.ndarray,
    by_score: tuple[np.ndarray, np.ndarray],
    labels: np.ndarray,
    k: int | None,
    n_queries: int,
) -> np.ndarray:
    """NDCG@k per query from the ranking by score (``_ranked``); NaN where the ideal DCG is 0."""
    gains = np.exp2(labels) - 1.0
    dcg = _dcg_per_query(codes, by_score, gains, k, n_queries)
    ideal = _dcg_per_query(codes, _ranked(codes, labels, n_queries), gains, k, n_queries)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ideal > 0, dcg / ideal, np.nan)


def per_query_ndcg(
    scores: ArrayLike, labels: ArrayLike, query_ids: ArrayLike, *, k: int | None = 10
) -> tuple[np.ndarray, np.ndarray]:
    """(sorted unique query ids, NDCG@k of each), NaN for queries without a positive gain."""
    _check_k(k)
    scores, labels = _as_scores_labels(scores, labels)
    unique, codes = _query_codes(query_ids, scores.size)
    return unique, _ndcg_per_query(codes, _ranked(codes, scores, unique.size), labels, k, unique.size)


def _roc_auc(relevant: np.ndarray, scores: np.ndarray) -> float:
    """Mann-Whitney form of ROC-AUC; tied scores count one half. NaN if only one class is present."""
    n_pos = int(relevant.sum())
    n_neg = relevant.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    average_rank = np.cumsum(counts) - (counts - 1) / 2.0  # 1-based, mean rank of each tie group
    rank_sum = average_rank[inverse.ravel()][relevant].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _classification(relevant: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Accuracy, precision, recall and F1 over all items; 0 where a denominator is 0 (as scikit-learn)."""
    tp = float(np.sum(relevant & predicted))
    fp = float(np.sum(~relevant & predicted))
    fn = float(np.sum(relevant & ~predicted))
    return {
        "accuracy": float(np.mean(relevant == predicted)),
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / (tp + fn) if tp + fn else 0.0,
        "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0,
    }


def best_f1_threshold(relevant: ArrayLike, scores: ArrayLike) -> float:
    """The score threshold (predict relevant when ``score >= threshold``) with the highest F1 on these items.

    Ranking losses (RankNet, ListNet, LambdaLoss, ...) leave scores with an arbitrary offset, so a fixed
    threshold such as 0 says nothing; the threshold is fitted instead, on validation. Ties: every cut lies
    between two distinct scores. With no relevant item it returns a threshold above every score (nothing
    predicted relevant; finite, so that it stays valid JSON in the study's attributes)."""
    relevant = np.asarray(relevant, dtype=bool).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    n_pos = int(relevant.sum())
    if scores.size == 0:
        return 0.0
    if n_pos == 0:
        return float(scores.max()) + 1.0
    order = np.argsort(-scores, kind="stable")
    sorted_scores = scores[order]
    tp = np.cumsum(relevant[order])  # predicting the top i+1 items relevant
    predicted = np.arange(1, scores.size + 1)
    f1 = 2 * tp / (predicted + n_pos)
    cut_ok = np.append(sorted_scores[1:] < sorted_scores[:-1], True)  # a cut must not split tied scores
    best = int(np.argmax(np.where(cut_ok, f1, -1.0)))
    return float(sorted_scores[best])


def _mean_or_nan(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else float("nan")


def _hit_metrics(codes: np.ndarray, ranked: tuple[np.ndarray, np.ndarray], relevant: np.ndarray, k: int,
                 n_queries: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per query, from where its relevant items rank: reciprocal rank, average precision, recall@k, and
    whether it has a relevant item at all (the others are 0 there and left out of the means)."""
    order, ranks = ranked
    codes_ranked, relevant_ranked = codes[order], relevant[order]
    n_relevant = np.bincount(codes, weights=relevant, minlength=n_queries)
    has_relevant = n_relevant > 0

    hit_codes, hit_ranks = codes_ranked[relevant_ranked], ranks[relevant_ranked]
    first_hit = np.flatnonzero(np.diff(hit_codes, prepend=-1))  # hit_codes is sorted: first = best rank
    reciprocal_rank = np.zeros(n_queries)
    reciprocal_rank[hit_codes[first_hit]] = 1.0 / hit_ranks[first_hit]

    # Relevant items seen up to each position of its query's ranking (ranked arrays are grouped by query).
    cumulative = np.cumsum(relevant_ranked)
    query_start = np.arange(order.size) - ranks + 1
    hits_so_far = cumulative - np.concatenate(([0], cumulative))[query_start]
    precision_at_hits = np.bincount(
        hit_codes, weights=hits_so_far[relevant_ranked] / hit_ranks, minlength=n_queries
    )
    hits_in_top_k = np.bincount(hit_codes, weights=hit_ranks <= k, minlength=n_queries)
    safe_n_relevant = np.maximum(n_relevant, 1.0)
    return (reciprocal_rank, precision_at_hits / safe_n_relevant, hits_in_top_k / safe_n_relevant,
            has_relevant)


def evaluate_ranking(
    scores: ArrayLike,
    labels: ArrayLike,
    query_ids: ArrayLike,
    *,
    k: int = 10,
    relevance_threshold: float = 1.0,
    score_threshold: float | None = 0.0,
) -> dict[str, float]:
    """All metrics for items (one row each) grouped by ``query_ids``; queries need not be contiguous.

    Returns ``ndcg@{k}`` (mean over queries with a positive gain), ``mrr``, ``map`` and ``recall@{k}``
    (means over queries with at least one relevant item; MAP over the full ranking), ``accuracy``,
    ``precision``, ``recall``, ``f1`` (item relevant if ``label >= relevance_threshold``, predicted
    relevant if ``score >= score_threshold``; ``score_threshold=None`` fits it on these items with
    :func:`best_f1_threshold` and reports it as ``score_threshold``: an optimistic F1 for the split it is
    fitted on, so fit it on validation and pass it for test), ``roc_auc`` (over all items, NaN with one
    class), ``n_queries``, ``n_queries_no_positive`` (no positive gain: left out of NDCG) and
    ``n_queries_no_relevant`` (no relevant item: left out of MRR, MAP and recall@k).
    A mean over no query is NaN.
    """
    _check_k(k)
    if k is None:
        raise ValueError("evaluate_ranking needs an int k, got k=None")
    scores, labels = _as_scores_labels(scores, labels)
    if scores.size == 0:
        raise ValueError("evaluate_ranking needs at least one item, got none")
    unique, codes = _query_codes(query_ids, scores.size)
    n_queries = unique.size

    order, ranks = _ranked(codes, scores, n_queries)
    ndcg = _ndcg_per_query(codes, (order, ranks), labels, k, n_queries)
    has_positive = ~np.isnan(ndcg)

    relevant = labels >= relevance_threshold
    fitted = score_threshold is None
    if fitted:
        score_threshold = best_f1_threshold(relevant, scores)
    reciprocal_rank, average_precision, recall_at_k, has_relevant = _hit_metrics(
        codes, (order, ranks), relevant, k, n_queries)

    return {
        f"ndcg@{k}": _mean_or_nan(ndcg[has_positive]),
        "mrr": _mean_or_nan(reciprocal_rank[has_relevant]),
        "map": _mean_or_nan(average_precision[has_relevant]),
        f"recall@{k}": _mean_or_nan(recall_at_k[has_relevant]),
        **_classification(relevant, scores >= score_threshold),
        "roc_auc": _roc_auc(relevant, scores),
        **({"score_threshold": float(score_threshold)} if fitted else {}),
        "n_queries": int(n_queries),
        "n_queries_no_positive": int(n_queries - has_positive.sum()),
        "n_queries_no_relevant": int(n_queries - has_relevant.sum()),
    }


def per_query_reciprocal_rank(
    scores: ArrayLike, labels: ArrayLike, query_ids: ArrayLike, *, relevance_threshold: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """(sorted unique query ids, 1 / rank of each query's first relevant item), NaN for queries without a
    relevant item (``label >= relevance_threshold``). Their mean over finite values is ``evaluate_ranking``'s
    ``mrr``."""
    scores, labels = _as_scores_labels(scores, labels)
    unique, codes = _query_codes(query_ids, scores.size)
    order, ranks = _ranked(codes, scores, unique.size)
    relevant = (labels >= relevance_threshold)[order]
    hit_codes, hit_ranks = codes[order][relevant], ranks[relevant]
    first_hit = np.flatnonzero(np.diff(hit_codes, prepend=-1))  # grouped by query, best rank first
    out = np.full(unique.size, np.nan)
    out[hit_codes[first_hit]] = 1.0 / hit_ranks[first_hit]
    return unique, out


def paired_bootstrap_interval(
    a: ArrayLike, b: ArrayLike, *, n_resamples: int = 2000, seed: int = 0, confidence: float = 0.95
) -> tuple[float, float, float]:
    """Mean of ``a - b`` over paired queries and its percentile bootstrap interval: ``(mean, low, high)``.

    ``a`` and ``b`` hold one value per query, in the same query order (per-query NDCG of two models on the
    same queries); pairs where either is NaN (a query without a positive gain) are left out. Each resample
    draws ``n`` query positions with replacement, ``rng.integers(0, n, size=n)`` from
    ``np.random.default_rng(seed)``, one resample after another; the interval is the ``(1 - confidence) / 2``
    and ``(1 + confidence) / 2`` quantiles (NumPy's linear method) of the resampled means.
    """
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"a and b must pair one value per query, got {a.size} and {b.size} values")
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, (int, np.integer)) or n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive int, got {n_resamples=}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence=}")
    paired = np.isfinite(a) & np.isfinite(b)
    diff = (a - b)[paired]
    if diff.size == 0:
        raise ValueError("no query has a finite value in both a and b")
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples)
    for i in range(n_resamples):  # one draw per resample: memory stays O(n) for any number of queries
        means[i] = diff[rng.integers(0, diff.size, size=diff.size)].mean()
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return float(diff.mean()), float(low), float(high)
