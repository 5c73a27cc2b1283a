"""The report's page parts: sections, tables, notes, plotly figures and how numbers print. The report's
modules (``report``, ``report_search``, ``report_ranking``) all build on this one; it imports none of them."""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from typing import Any

import optuna

from study.runtime.attrs import study_attr

# .grid has fixed columns (not auto-fit): plotly sizes a figure once, on its box's width when it is drawn, and
# an auto-fit grid only gains its second column after the figure in the first one has been drawn full width.
CSS = """
*,*::before,*::after{box-sizing:border-box}
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1200px;\
padding:0 24px 48px;
color:#222}h1{margin-top:24px}h2{border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:36px}
table{border-collapse:collapse;margin:8px 0 16px;display:block;max-width:100%;overflow-x:auto}
td,th{border:1px solid #ddd;padding:4px 8px;font-size:14px}
th{background:#f5f5f5;text-align:left}td.num{text-align:right;font-variant-numeric:tabular-nums}
.note{color:#666;font-style:italic}.caveat{background:#fff8e1;border-left:4px solid #f0b400;padding:6px 12px}
.grid{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:16px}
@media (max-width:900px){.grid{grid-template-columns:minmax(0,1fr)}}.plotly-graph-div{max-width:100%}
nav a{margin-right:12px;white-space:nowrap}.example{border:1px solid #eee;border-radius:6px;padding:8px 12px}
details pre{background:#f7f7f7;padding:8px;overflow:auto;font-size:12px}
"""


@dataclass
class Section:
    anchor: str
    title: str
    body: str


def escape(value: Any) -> str:
    return html.escape(str(value))


def note(text: str) -> str:
    return f'<p class="note">{escape(text)}</p>'


def caveat(text: str) -> str:
    """A warning the reader must not miss (unlike a note, not in grey italics)."""
    return f'<p class="caveat">{escape(text)}</p>'


def figure(fig: Any, *, height: int = 420) -> str:
    """A plotly figure that takes the width of its box (never a fixed width wider than the page)."""
    fig.update_layout(height=height, width=None, autosize=True, template="plotly_white",
                      margin={"t": 50, "l": 60, "r": 30, "b": 50})
    return fig.to_html(full_html=False, include_plotlyjs=False, default_width="100%",
                       config={"displaylogo": False, "responsive": True})


def number(value: Any) -> str:
    """A number as a reader wants it: integers (3, 3.0) without decimals, others with 3 significant digits,
    booleans as true / false (as the config writes them)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and math.isfinite(value) and value == int(value) and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def grade(value: Any) -> str:
    """A relevance grade: 3 (not 3.0000), 2.33 (Home Depot's averaged judgements)."""
    return number(float(value))


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def table(header: list[str], rows: list[list[Any]]) -> str:
    """Floats with 4 decimals (scores), integers with thousands separators, anything else as text."""
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f'<td class="num">{v:.4f}</td>'
        if isinstance(v, int) and not isinstance(v, bool):
            return f'<td class="num">{v:,}</td>'
        return f"<td>{escape(v)}</td>"

    head = "<tr>" + "".join(f"<th>{escape(h)}</th>" for h in header) + "</tr>" if any(header) else ""
    body = "".join("<tr>" + "".join(cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table>{head}{body}</table>"


def metric_names(study: optuna.Study) -> list[str]:
    """One name per objective: the study's metric names, else the config's metric (and "objective 2")."""
    names = list(study.metric_names or [])
    if not names:
        names = [study_attr(study, "config", {}).get("study", {}).get("metric", "objective")]
    return names + [f"objective {i + 1}" for i in range(len(names), len(study.directions))]


def metric_name(study: optuna.Study) -> str:
    return metric_names(study)[0]
