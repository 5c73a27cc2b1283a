"""The test-split comparison: the tuned best trial against the untuned default config and the baselines, on
the same test queries, with a paired bootstrap interval of the NDCG difference for each row.

One model of the table: :func:`build_comparison` turns the models' test scores into a :class:`Comparison`
(small, stored as the study's user attribute ``comparison``; :meth:`Comparison.from_user_attrs` reads it back,
or rebuilds a table without intervals from a study stored before it existed). It renders itself as plain text
(``study run``, ``study status``, ``study best``), Markdown (the dashboard note, the model card) and HTML /
plotly (the report) through ``evaluation.comparison_table``. The first row is the reference: every other row
gets ``tuned - row``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from study.evaluation import comparison_table
from study.models.metrics import paired_bootstrap_interval, per_query_ndcg, per_query_reciprocal_rank

N_RESAMPLES = 2000
CONFIDENCE = 0.95
EXTRA_METRICS = ("map", "recall@k", "f1", "roc_auc")  # kept per row beside NDCG and MRR; k as in the metric


@dataclass(frozen=True)
class Scored:
    """One model's scores on the test split: one score, label and query id per judged pair (any row order)."""

    key: str  # "tuned", "untuned_default", "zero_shot_encoder", "tfidf_cosine", "random", "behaviour_only"
    label: str  # as shown: "tuned (best trial 7)"
    scores: np.ndarray  # (P,)
    labels: np.ndarray  # (P,)
    query_ids: np.ndarray  # (P,)
    metrics: dict[str, float] = field(default_factory=dict)  # all test metrics, where computed


@dataclass(frozen=True)
class ComparisonRow:
    key: str
    label: str
    ndcg: float
    mrr: float
    delta: float | None = None  # reference (tuned) minus this row, mean per-query NDCG; None on the reference
    low: float | None = None
    high: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)  # more test metrics (map, recall@k, f1, roc_auc)

    @property
    def excludes_zero(self) -> bool | None:
        """Whether the interval of ``tuned - row`` lies wholly above or below 0 (None on the reference)."""
        if self.low is None or self.high is None:
            return None
        return self.low > 0 or self.high < 0


@dataclass(frozen=True)
class Comparison:
    metric: str  # "ndcg@10"
    n_queries: int  # test queries
    n_scored: int  # of which have a positive gain: NDCG and the intervals are over these
    rows: tuple[ComparisonRow, ...]
    n_resamples: int = N_RESAMPLES
    seed: int = 0
    confidence: float = CONFIDENCE
    best_trial: int | None = None
    default_trial: int | None = None
    notes: tuple[str, ...] = ()

    def row(self, key: str) -> ComparisonRow | None:
        return next((r for r in self.rows if r.key == key), None)

    @property
    def has_intervals(self) -> bool:
        return any(r.delta is not None for r in self.rows)

    @property
    def extra_metrics(self) -> list[str]:
        """The further test metrics some row carries, in :data:`EXTRA_METRICS` order."""
        k = self.metric.split("@")[-1] if "@" in self.metric else "10"
        names = [m.replace("@k", f"@{k}") for m in EXTRA_METRICS]
        return [m for m in names if any(m in r.metrics for r in self.rows)]

    def to_text(self) -> str:
        """The plain-text table with the verdict line (``study run``, ``study status``, ``study best``)."""
        return comparison_table.as_text(self)

    def to_markdown(self, *, all_metrics: bool = False) -> str:
        """The table as Markdown (the dashboard note, the model card); a bold difference excludes 0."""
        return comparison_table.as_markdown(self, all_metrics=all_metrics)

    def to_html(self, *, all_metrics: bool = False) -> str:
        """The table as HTML (the report); a bold difference has an interval that excludes 0."""
        return comparison_table.as_html(self, all_metrics=all_metrics)

    def figure(self) -> Any:
        """A plotly figure: ``tuned - row`` for every other row with its interval as error bars, 0 marked."""
        return comparison_table.figure(self)

    @classmethod
    def from_user_attrs(cls, attrs: dict[str, Any], *, best_trial: int | None = None) -> Comparison | None:
        """The comparison a study stores (None if it has none, or if ``best_trial`` is given and it was made
        for another trial), its rows completed with the further test metrics the study stores (``test``,
        ``test_default``, ``baselines``). A study stored before comparisons existed gets one rebuilt from
        those, without intervals."""
        test, default = attrs.get("test") or {}, attrs.get("test_default") or {}
        stored = attrs.get("comparison")
        reference = stored["best_trial"] if stored else test.get("trial")
        if reference is None or (best_trial is not None and reference != best_trial):
            return None
        metric = (stored["metric"] if stored
                  else attrs.get("config", {}).get("study", {}).get("metric", "ndcg@10"))
        models = {"tuned": (f"tuned (best trial {reference})", test.get("metrics", {}))}
        if default and default.get("trial") != reference:
            models["untuned_default"] = (f"untuned default (trial {default['trial']})", default["metrics"])
        models.update({k: (k.replace("_", " "), m) for k, m in (attrs.get("baselines") or {}).items()})
        if test.get("trial") != reference:
            models["tuned"] = (models["tuned"][0], {})  # test metrics of an earlier best trial
        if stored:
            comparison = cls.from_dict(stored)
            return dataclasses.replace(comparison, rows=tuple(
                r if r.metrics
                else dataclasses.replace(r, metrics=_extra(models.get(r.key, ("", {}))[1], metric))
                for r in comparison.rows))
        n_queries = int(test["metrics"].get("n_queries", 0))
        return cls(metric=metric, n_queries=n_queries,
                   n_scored=n_queries - int(test["metrics"].get("n_queries_no_positive", 0)),
                   rows=tuple(_row_of(key, label, m, metric) for key, (label, m) in models.items()),
                   best_trial=reference, default_trial=default.get("trial"), notes=(_NO_INTERVALS,))

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        for row, stored in zip(self.rows, out["rows"]):
            stored["excludes_zero"] = row.excludes_zero
        out["notes"] = list(self.notes)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Comparison:
        names = {f.name for f in dataclasses.fields(ComparisonRow)}
        rows = tuple(ComparisonRow(**{k: v for k, v in r.items() if k in names}) for r in d["rows"])
        keep = {f.name for f in dataclasses.fields(cls)} - {"rows", "notes"}
        return cls(rows=rows, notes=tuple(d.get("notes", ())), **{k: v for k, v in d.items() if k in keep})


_NO_INTERVALS = ("Stored before the paired comparison existed: no intervals (`study run` of this study adds "
                 "them).")


def _round(value: float) -> float:
    return round(float(value), 6)


def _extra(metrics: dict[str, float], metric: str) -> dict[str, float]:
    k = metric.split("@")[-1] if "@" in metric else "10"
    names = [m.replace("@k", f"@{k}") for m in EXTRA_METRICS]
    return {m: _round(metrics[m]) for m in names if isinstance(metrics.get(m), (int, float))}


def _row_of(key: str, label: str, metrics: dict[str, float], metric: str) -> ComparisonRow:
    return ComparisonRow(key=key, label=label, ndcg=_round(metrics.get(metric, float("nan"))),
                         mrr=_round(metrics.get("mrr", float("nan"))), metrics=_extra(metrics, metric))


def _aligned(per_query: tuple[np.ndarray, np.ndarray], ids: np.ndarray) -> np.ndarray:
    """Per-query values in the order of ``ids`` (NaN for a query this model did not score)."""
    own_ids, values = per_query
    if own_ids.shape == ids.shape and np.array_equal(own_ids, ids):
        return values
    lookup = dict(zip(own_ids.tolist(), values.tolist()))
    return np.array([lookup.get(q, np.nan) for q in ids.tolist()], dtype=np.float64)


def build_comparison(
    scored: list[Scored], *, k: int = 10, relevance_threshold: float = 1.0, n_resamples: int = N_RESAMPLES,
    seed: int = 0, confidence: float = CONFIDENCE, best_trial: int | None = None,
    default_trial: int | None = None, notes: tuple[str, ...] = (),
) -> Comparison:
    """NDCG@k and MRR of every model on the test queries, and ``scored[0] - row`` with its paired bootstrap
    interval over queries for every other row (same seed for every row)."""
    if not scored:
        raise ValueError("build_comparison needs at least the reference model, got no scores")
    ids = np.unique(np.concatenate([np.asarray(s.query_ids).astype(str) for s in scored]))
    ndcg = [_aligned(per_query_ndcg(s.scores, s.labels, np.asarray(s.query_ids).astype(str), k=k), ids)
            for s in scored]
    rr = [_aligned(per_query_reciprocal_rank(s.scores, s.labels, np.asarray(s.query_ids).astype(str),
                                             relevance_threshold=relevance_threshold), ids) for s in scored]
    rows = []
    for i, s in enumerate(scored):
        delta = low = high = None
        if i > 0:
            delta, low, high = (_round(v) for v in paired_bootstrap_interval(
                ndcg[0], ndcg[i], n_resamples=n_resamples, seed=seed, confidence=confidence))
        rows.append(ComparisonRow(key=s.key, label=s.label, ndcg=_round(np.nanmean(ndcg[i])),
                                  mrr=_round(np.nanmean(rr[i])), delta=delta, low=low, high=high,
                                  metrics=_extra(s.metrics, f"ndcg@{k}")))
    return Comparison(metric=f"ndcg@{k}", n_queries=int(ids.size), n_scored=int(np.isfinite(ndcg[0]).sum()),
                      rows=tuple(rows), n_resamples=n_resamples, seed=seed, confidence=confidence,
                      best_trial=best_trial, default_trial=default_trial, notes=tuple(notes))
