"""The test-split comparison: the tuned best trial against the untuned default config and the baselines, on
the same test queries, with a paired bootstrap interval of the NDCG difference for each row.

One home for the table: :func:`build_comparison` turns the models' test scores into a :class:`Comparison`
(small, stored as the study's user attribute ``comparison``), and the renderers draw it as plain text
(``study run``, ``study status``, ``study best``), Markdown (the dashboard note, the model card) and HTML /
plotly (the report). The first row is the reference: every other row gets ``tuned - row``.
"""

from __future__ import annotations

import dataclasses
import html
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from study.models.metrics import paired_bootstrap_interval, per_query_ndcg, per_query_reciprocal_rank
from study.trials import DEFAULT_CONFIG_ATTR, DEFAULT_SAMPLED_ATTR  # noqa: F401 - re-exported

N_RESAMPLES = 2000
CONFIDENCE = 0.95
REFERENCE_KEY = "zero_shot_encoder"  # the verdict line compares the tuned model with this row when present


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


def _round(value: float) -> float:
    return round(float(value), 6)


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
                                  mrr=_round(np.nanmean(rr[i])), delta=delta, low=low, high=high))
    return Comparison(metric=f"ndcg@{k}", n_queries=int(ids.size), n_scored=int(np.isfinite(ndcg[0]).sum()),
                      rows=tuple(rows), n_resamples=n_resamples, seed=seed, confidence=confidence,
                      best_trial=best_trial, default_trial=default_trial, notes=tuple(notes))


# ------------------------------------------------------------------------------------------------ renderers


def _interval(row: ComparisonRow) -> str:
    return f"{row.delta:+.4f} [{row.low:+.4f}, {row.high:+.4f}]" if row.delta is not None else ""


def _plain(label: str) -> str:
    """A row label without its trial number, for a sentence: "the zero-shot encoder"."""
    return label.split(" (")[0]


def verdict(comparison: Comparison) -> str:
    """One sentence: does the tuned model beat the zero-shot encoder (else the strongest other row)?"""
    others = [r for r in comparison.rows[1:] if r.delta is not None]
    if not others:
        return ""
    row = comparison.row(REFERENCE_KEY) or max(others, key=lambda r: r.ndcg)
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
    return f"model (test, {comparison.n_queries} queries)"


def _footnotes(comparison: Comparison) -> list[str]:
    out = []
    if comparison.n_scored < comparison.n_queries:
        left_out = comparison.n_queries - comparison.n_scored
        out.append(f"{left_out} test queries without a positive gain are left out of NDCG and the intervals.")
    out.append(f"Intervals: paired bootstrap over test queries, {comparison.n_resamples} resamples, seed "
               f"{comparison.seed}; mean per-query {comparison.metric} of the tuned model minus the row's.")
    return out + list(comparison.notes)


def format_text(comparison: Comparison) -> str:
    """The plain-text table with the verdict line (``study run``, ``study status``, ``study best``)."""
    reference = comparison.rows[0]
    width = max(32, *(len(r.label) + 2 for r in comparison.rows), len(_header_label(comparison)) + 2)
    level = f"{comparison.confidence:.0%}"
    lines = [(f"{_header_label(comparison):<{width}}{comparison.metric:>7}{'mrr':>8}   "
              f"{_plain(reference.label)} - model [{level} CI]")]
    for r in comparison.rows:
        interval = f"   {_interval(r)}" if r.delta is not None else ""
        lines.append(f"{r.label:<{width}}{r.ndcg:>7.4f}{r.mrr:>8.4f}{interval}")
    said = verdict(comparison)
    return "\n".join(lines + ([said] if said else []) + _footnotes(comparison))


def format_markdown(comparison: Comparison) -> str:
    """The table as Markdown (the dashboard note, the exported model card)."""
    level = f"{comparison.confidence:.0%}"
    header = f"| {_header_label(comparison)} | {comparison.metric} | mrr | tuned − model | {level} interval |"
    lines = [header, "|---|---:|---:|---:|---|"]  # bold: the interval excludes 0
    for r in comparison.rows:
        if r.delta is None:
            lines.append(f"| {r.label} | {r.ndcg:.4f} | {r.mrr:.4f} | | |")
        else:
            delta = f"**{r.delta:+.4f}**" if r.excludes_zero else f"{r.delta:+.4f}"
            interval = f"[{r.low:+.4f}, {r.high:+.4f}]"
            lines.append(f"| {r.label} | {r.ndcg:.4f} | {r.mrr:.4f} | {delta} | {interval} |")
    said = verdict(comparison)
    notes = [f"_{n}_" for n in _footnotes(comparison)]
    return "\n".join(lines + ([""] + [said] if said else []) + [""] + notes)


def format_html(comparison: Comparison) -> str:
    """The table as HTML (the report); a bold difference has an interval that excludes 0."""
    e = html.escape
    level = f"{comparison.confidence:.0%}"
    head = "".join(f"<th>{e(h)}</th>" for h in (_header_label(comparison), comparison.metric, "mrr",
                                                 "tuned − model", f"{level} interval"))
    body = []
    for r in comparison.rows:
        cells = [f"<td>{e(r.label)}</td>", f'<td class="num">{r.ndcg:.4f}</td>',
                 f'<td class="num">{r.mrr:.4f}</td>']
        if r.delta is None:
            cells += ["<td></td>", "<td></td>"]
        else:
            delta = f"<b>{r.delta:+.4f}</b>" if r.excludes_zero else f"{r.delta:+.4f}"
            cells += [f'<td class="num">{delta}</td>', f'<td class="num">[{r.low:+.4f}, {r.high:+.4f}]</td>']
        body.append("<tr>" + "".join(cells) + "</tr>")
    said = verdict(comparison)
    notes = "".join(f'<p class="note">{e(n)}</p>' for n in _footnotes(comparison))
    return (f"<table><tr>{head}</tr>{''.join(body)}</table>" + (f"<p><b>{e(said)}</b></p>" if said else "")
            + notes)


def comparison_figure(comparison: Comparison) -> Any:
    """A plotly figure: ``tuned - row`` for every other row, with its interval as error bars, and 0 marked."""
    import plotly.graph_objects as go

    rows = [r for r in comparison.rows if r.delta is not None]
    level = f"{comparison.confidence:.0%}"
    fig = go.Figure(go.Scatter(
        x=[r.delta for r in rows], y=[r.label for r in rows], mode="markers",
        marker={"size": 10, "color": ["#2ca02c" if r.excludes_zero and r.delta > 0 else
                                      "#d62728" if r.excludes_zero else "#7f7f7f" for r in rows]},
        error_x={"type": "data", "symmetric": False, "array": [r.high - r.delta for r in rows],
                 "arrayminus": [r.delta - r.low for r in rows]},
        hovertemplate="%{y}: %{x:+.4f}<extra></extra>"))
    fig.add_vline(x=0.0, line_dash="dash", line_color="#555")
    fig.update_layout(title=f"Tuned minus each model on the same test queries ({comparison.metric}, {level} "
                            "paired bootstrap interval)", xaxis_title=f"tuned − model, {comparison.metric}",
                      yaxis={"autorange": "reversed"})
    return fig
