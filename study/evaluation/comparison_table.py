"""The test comparison rendered, from one list of columns: plain text with the verdict line (``study run``,
``study status``, ``study best``), Markdown (the dashboard note, the model card), HTML and a plotly figure
(the report); the verdict sentence and the footnotes that explain the table. The table's model is
``evaluation.comparison``."""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from study.evaluation.comparison import Comparison, ComparisonRow

REFERENCE_KEY = "zero_shot_encoder"  # the verdict line compares the tuned model with this row when present


def as_text(comparison: Comparison) -> str:
    """The plain-text table with the verdict line (``study run``, ``study status``, ``study best``)."""
    columns = _columns(comparison, all_metrics=False)
    cells = [[_header_label(comparison), *(c.title.replace("−", "-") for c in columns)]]
    cells += [[r.label, *(c.text(r) for c in columns)] for r in comparison.rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    lines = ["  ".join(cell.ljust(w) if i == 0 or columns[i - 1].left else cell.rjust(w)
                       for i, (cell, w) in enumerate(zip(row, widths))).rstrip() for row in cells]
    said = verdict(comparison)
    return "\n".join(lines + ([said] if said else []) + _footnotes(comparison))


def as_markdown(comparison: Comparison, *, all_metrics: bool = False) -> str:
    """The table as Markdown (the dashboard note, the model card); a bold difference excludes 0."""
    columns = _columns(comparison, all_metrics=all_metrics)
    lines = [f"| {_header_label(comparison)} | " + " | ".join(c.title for c in columns) + " |",
             "|---|" + "".join("---|" if c.left else "---:|" for c in columns)]
    lines += [f"| {r.label} | " + " | ".join(c.text(r, bold="**") for c in columns) + " |"
              for r in comparison.rows]
    said = verdict(comparison)
    return "\n".join(lines + (["", said] if said else []) + [""] + [f"_{n}_" for n in _footnotes(comparison)])


def as_html(comparison: Comparison, *, all_metrics: bool = False) -> str:
    """The table as HTML (the report); a bold difference has an interval that excludes 0."""
    e = html.escape
    columns = _columns(comparison, all_metrics=all_metrics)
    head = f"<th>{e(_header_label(comparison))}</th>" + "".join(f"<th>{e(c.title)}</th>" for c in columns)
    body = "".join(f"<tr><td>{e(r.label)}</td>" + "".join(
        (f"<td>{c.text(r)}</td>" if c.left else f'<td class="num">{c.text(r, bold="<b>")}</td>')
        for c in columns) + "</tr>" for r in comparison.rows)
    said = verdict(comparison)
    return (f"<table><tr>{head}</tr>{body}</table>" + (f"<p><b>{e(said)}</b></p>" if said else "")
            + "".join(f'<p class="note">{e(n)}</p>' for n in _footnotes(comparison)))


def figure(comparison: Comparison) -> Any:
    """A plotly figure: ``tuned - row`` for every other row with its interval as error bars, 0 marked."""
    import plotly.graph_objects as go  # no plotly in the read-only commands, which import this module

    rows = [r for r in comparison.rows if r.delta is not None]
    fig = go.Figure(go.Scatter(
        x=[r.delta for r in rows], y=[r.label for r in rows], mode="markers",
        marker={"size": 10, "color": ["#2ca02c" if r.excludes_zero and r.delta > 0 else
                                      "#d62728" if r.excludes_zero else "#7f7f7f" for r in rows]},
        error_x={"type": "data", "symmetric": False, "array": [r.high - r.delta for r in rows],
                 "arrayminus": [r.delta - r.low for r in rows]},
        hovertemplate="%{y}: %{x:+.4f}<extra></extra>"))
    fig.add_vline(x=0.0, line_dash="dash", line_color="#555")
    fig.update_layout(title=f"Tuned minus each model on the same test queries ({comparison.metric}, "
                            f"{comparison.confidence:.0%} paired bootstrap interval)",
                      xaxis_title=f"tuned − model, {comparison.metric}", yaxis={"autorange": "reversed"})
    return fig


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


def _columns(comparison: Comparison, *, all_metrics: bool) -> list[_Column]:
    columns = [_Column(comparison.metric, lambda r: r.ndcg), _Column("mrr", lambda r: r.mrr)]
    if all_metrics:
        columns += [_Column(m, lambda r, m=m: r.metrics.get(m)) for m in comparison.extra_metrics]
    if comparison.has_intervals:
        columns += [_Column(f"{_plain(comparison.rows[0].label)} − model", lambda r: r.delta, signed=True),
                    _Column(f"{comparison.confidence:.0%} interval", lambda r: r.low, interval=True,
                            left=True)]
    return columns


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
