"""The test-split comparison: the tuned best trial against the untuned default config and the baselines, on
the same test queries, with a paired bootstrap interval of the NDCG difference for each row.

One model of the table: :func:`build_comparison` turns the models' test scores into a :class:`Comparison`
(small, stored as the study's user attribute ``comparison``; :meth:`Comparison.from_user_attrs` reads it back,
or rebuilds a table without intervals from a study stored before it existed). It renders itself as plain text
(``study run``, ``study status``, ``study best``), Markdown (the dashboard note, the model card) and HTML /
plotly (the report), from one list of columns. The first row is the reference: every other row gets
``tuned - row``.
"""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from study.models.metrics import paired_bootstrap_interval, per_query_ndcg, per_query_reciprocal_rank

N_RESAMPLES = 2000
CONFIDENCE = 0.95
REFERENCE_KEY = "zero_shot_encoder"  # the verdict line compares the tuned model with this row when present
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
        columns = self._columns(all_metrics=False)
        cells = [[_header_label(self), *(c.title.replace("−", "-") for c in columns)]]
        cells += [[r.label, *(c.text(r) for c in columns)] for r in self.rows]
        widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
        lines = ["  ".join(cell.ljust(w) if i == 0 or columns[i - 1].left else cell.rjust(w)
                           for i, (cell, w) in enumerate(zip(row, widths))).rstrip() for row in cells]
        return "\n".join(lines + self._sentences())

    def to_markdown(self, *, all_metrics: bool = False) -> str:
        """The table as Markdown (the dashboard note, the model card); a bold difference excludes 0."""
        columns = self._columns(all_metrics=all_metrics)
        lines = [f"| {_header_label(self)} | " + " | ".join(c.title for c in columns) + " |",
                 "|---|" + "".join("---|" if c.left else "---:|" for c in columns)]
        lines += [f"| {r.label} | " + " | ".join(c.text(r, bold="**") for c in columns) + " |"
                  for r in self.rows]
        said = verdict(self)
        return "\n".join(lines + (["", said] if said else []) + [""] + [f"_{n}_" for n in _footnotes(self)])

    def to_html(self, *, all_metrics: bool = False) -> str:
        """The table as HTML (the report); a bold difference has an interval that excludes 0."""
        e = html.escape
        columns = self._columns(all_metrics=all_metrics)
        head = f"<th>{e(_header_label(self))}</th>" + "".join(f"<th>{e(c.title)}</th>" for c in columns)
        body = "".join(f"<tr><td>{e(r.label)}</td>" + "".join(
            (f"<td>{c.text(r)}</td>" if c.left else f'<td class="num">{c.text(r, bold="<b>")}</td>')
            for c in columns) + "</tr>" for r in self.rows)
        said = verdict(self)
        return (f"<table><tr>{head}</tr>{body}</table>" + (f"<p><b>{e(said)}</b></p>" if said else "")
                + "".join(f'<p class="note">{e(n)}</p>' for n in _footnotes(self)))

    def figure(self) -> Any:
        """A plotly figure: ``tuned - row`` for every other row with its interval as error bars, 0 marked."""
        import plotly.graph_objects as go  # no plotly in the read-only commands, which import this module

        rows = [r for r in self.rows if r.delta is not None]
        fig = go.Figure(go.Scatter(
            x=[r.delta for r in rows], y=[r.label for r in rows], mode="markers",
            marker={"size": 10, "color": ["#2ca02c" if r.excludes_zero and r.delta > 0 else
                                          "#d62728" if r.excludes_zero else "#7f7f7f" for r in rows]},
            error_x={"type": "data", "symmetric": False, "array": [r.high - r.delta for r in rows],
                     "arrayminus": [r.delta - r.low for r in rows]},
            hovertemplate="%{y}: %{x:+.4f}<extra></extra>"))
        fig.add_vline(x=0.0, line_dash="dash", line_color="#555")
        fig.update_layout(title=f"Tuned minus each model on the same test queries ({self.metric}, "
                                f"{self.confidence:.0%} paired bootstrap interval)",
                          xaxis_title=f"tuned − model, {self.metric}", yaxis={"autorange": "reversed"})
        return fig

    def _columns(self, *, all_metrics: bool) -> list[_Column]:
        columns = [_Column(self.metric, lambda r: r.ndcg), _Column("mrr", lambda r: r.mrr)]
        if all_metrics:
            columns += [_Column(m, lambda r, m=m: r.metrics.get(m)) for m in self.extra_metrics]
        if self.has_intervals:
            columns += [_Column(f"{_plain(self.rows[0].label)} − model", lambda r: r.delta, signed=True),
                        _Column(f"{self.confidence:.0%} interval", lambda r: r.low, interval=True, left=True)]
        return columns

    def _sentences(self) -> list[str]:
        said = verdict(self)
        return ([said] if said else []) + _footnotes(self)

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




@dataclass(frozen=True)
class _Column:
    """One column of every rendering: its title and how a row's cell reads (blank where the row has none)."""

    title: str
    value: Callable[[ComparisonRow], float | None]
    signed: bool = False  # a difference: +0.0123, bold when its interval excludes 0
    interval: bool = False  # the row's [low, high]
    left: bool = False

    def text(self, row: ComparisonRow, *, bold: str = "") -> str:
        if self.interval:
            return "" if row.low is None or row.high is None else f"[{row.low:+.4f}, {row.high:+.4f}]"
        value = self.value(row)
        if value is None:
            return "" if self.signed else "–"
        if not self.signed:
            return f"{value:.4f}"
        close = bold.replace("<", "</") if bold.startswith("<") else bold
        return f"{bold}{value:+.4f}{close}" if bold and row.excludes_zero else f"{value:+.4f}"


def _plain(label: str) -> str:
    """A row label without its trial number, for a sentence: "the zero-shot encoder"."""
    return label.split(" (")[0]


def verdict(comparison: Comparison) -> str:
    """One sentence: does the tuned model beat the zero-shot encoder (else the strongest other row)?"""
    others = [r for r in comparison.rows[1:] if r.delta is not None]
    if not others:
        return ""
    row = comparison.row(REFERENCE_KEY) or max(others, key=lambda r: r.ndcg)
    if row.delta is None:
        return ""
    level = f"{comparison.confidence:.0%}"
    numbers = (f"{row.delta:+.4f} {comparison.metric.replace('ndcg', 'NDCG')}, {level} interval "
               f"[{row.low:+.4f}, {row.high:+.4f}]")
    ours, theirs = _plain(comparison.rows[0].label), _plain(row.label)
    where = f"on these {comparison.n_scored} test queries"
    if row.low is not None and row.low > 0:
        return f"The {ours} model beats the {theirs} {where}: {numbers}, above 0."
    if row.high is not None and row.high < 0:
        return f"The {ours} model is worse than the {theirs} {where}: {numbers}, below 0."
    return f"The {ours} model does not clearly beat the {theirs} {where}: {numbers} includes 0."


def _header_label(comparison: Comparison) -> str:
    return f"model (test, {comparison.n_queries} queries)" if comparison.n_queries else "model (test)"


def _footnotes(comparison: Comparison) -> list[str]:
    out = []
    if comparison.n_scored < comparison.n_queries:
        left_out = comparison.n_queries - comparison.n_scored
        out.append(f"{left_out} test queries without a positive gain are left out of NDCG and the intervals.")
    if comparison.has_intervals:
        out.append(f"Intervals: paired bootstrap over test queries, {comparison.n_resamples} resamples, seed "
                   f"{comparison.seed}; mean per-query {comparison.metric} of the tuned model "
                   "minus the row's.")
    return out + _identical_rows(comparison) + list(comparison.notes)


def _identical_rows(comparison: Comparison) -> list[str]:
    """Why rows read the same, one sentence per group of identical rows: the untuned default that is also
    the best trial is scored once and shown twice; a model that starts at the zero-shot cosine (``prior``,
    ``frozen``: a residual that starts at 0) and was best at epoch 0, before any update, ranks exactly as the
    zero-shot encoder."""
    groups: list[list[ComparisonRow]] = []
    for row in comparison.rows:
        same = [g for g in groups if abs(g[0].ndcg - row.ndcg) < 1e-9 and abs(g[0].mrr - row.mrr) < 1e-9]
        if same:
            same[0].append(row)
        else:
            groups.append([row])
    out = []
    for group in (g for g in groups if len(g) > 1):
        keys = {r.key for r in group}
        labels = [_plain(r.label) for r in group]
        named = ", ".join(labels[:-1]) + f" and {labels[-1]}"
        why = []
        if {"tuned", "untuned_default"} <= keys and comparison.best_trial == comparison.default_trial:
            why.append("the untuned default is the best trial")
        if REFERENCE_KEY in keys:
            why.append("a prior or frozen model starts at the zero-shot cosine, its learned residual at 0, "
                       "so one that was best at epoch 0, before any update, ranks exactly as the zero-shot "
                       "encoder")
        out.append(f"The {named} rows are identical: they put these test queries' items in the same order"
                   + (f" ({'; '.join(why)})" if why else "") + ".")
    return out
