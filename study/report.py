"""``study report``: one self-contained HTML file (plotly's JavaScript inlined, works offline).

The search: optimisation history, parameter importances, parallel coordinates, slices, intermediate values
and timeline (Optuna's plotly figures). The result: the best trial's test metrics against the untuned default
and the baselines (tuned minus each with a paired bootstrap interval, ``study.comparison``), its per-query
NDCG distribution on the test split (recomputed from its checkpoint) and a few example queries with their top
products and grades. Heavy figures draw a bounded subset of trials, so the file stays small
and quick for a study of 3 trials or of 3,000.
"""

from __future__ import annotations

import html
import json
import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from study.storage import redact

logger = logging.getLogger(__name__)

MAX_PARALLEL = 100  # parallel coordinates: the best N complete trials
MAX_SLICE = 500  # slices: a seeded sample of complete trials
MAX_IMPORTANCE = 1000  # importances: a seeded sample of complete trials
MAX_INTERMEDIATE = 40  # learning curves: the best half of this, then the most recent others
MAX_TIMELINE = 500  # timeline: the most recent trials
N_EXAMPLES = 4
TOP_PRODUCTS = 5

def _param(value: object) -> object:
    """A parameter as the config writes it: 3 significant digits, booleans as true / false (not 1 / 0)."""
    if isinstance(value, bool):
        return str(value).lower()
    return f"{value:.3g}" if isinstance(value, float) else value


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1200px;padding:0 24px 48px;
color:#222}h1{margin-top:24px}h2{border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:36px}
table{border-collapse:collapse;margin:8px 0 16px;display:block;max-width:100%;overflow-x:auto}td,th{border:1px solid #ddd;padding:4px 8px;font-size:14px}
th{background:#f5f5f5;text-align:left}td.num{text-align:right;font-variant-numeric:tabular-nums}
.note{color:#666;font-style:italic}.grid{display:grid;grid-template-columns:1fr 1fr;gap:16px}
nav a{margin-right:12px}.example{border:1px solid #eee;border-radius:6px;padding:8px 12px}
details pre{background:#f7f7f7;padding:8px;overflow:auto;font-size:12px}
"""


@dataclass
class Section:
    anchor: str
    title: str
    body: str


def _e(value: Any) -> str:
    return html.escape(str(value))


def _note(text: str) -> str:
    return f'<p class="note">{_e(text)}</p>'


def _figure(fig: Any, *, height: int = 420) -> str:
    fig.update_layout(height=height, template="plotly_white", margin={"t": 50, "l": 60, "r": 30, "b": 50})
    return fig.to_html(full_html=False, include_plotlyjs=False, config={"displaylogo": False, "responsive": True})


def _table(header: list[str], rows: list[list[Any]]) -> str:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f'<td class="num">{v:.4f}</td>'
        if isinstance(v, int):
            return f'<td class="num">{v:,}</td>'
        return f"<td>{_e(v)}</td>"

    head = "<tr>" + "".join(f"<th>{_e(h)}</th>" for h in header) + "</tr>" if any(header) else ""
    body = "".join("<tr>" + "".join(cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table>{head}{body}</table>"


def _metric_name(study: optuna.Study) -> str:
    names = study.metric_names
    return names[0] if names else study.user_attrs.get("config", {}).get("study", {}).get("metric", "objective")


def _complete(study: optuna.Study) -> list[FrozenTrial]:
    return [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.values]


def _subset(study: optuna.Study, trials: list[FrozenTrial]) -> optuna.Study:
    """An in-memory copy holding only ``trials``, for figures that would be unreadable with all of them."""
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "A new study created in memory" per figure
    try:
        sub = optuna.create_study(directions=study.directions)
    finally:
        optuna.logging.set_verbosity(verbosity)
    if study.metric_names:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            sub.set_metric_names(study.metric_names)
    sub.add_trials(trials)
    return sub


def _best_first(study: optuna.Study, trials: list[FrozenTrial]) -> list[FrozenTrial]:
    maximise = study.directions[0] == optuna.study.StudyDirection.MAXIMIZE
    return sorted(trials, key=lambda t: t.values[0], reverse=maximise)


def _sample(trials: list[FrozenTrial], n: int, seed: int) -> list[FrozenTrial]:
    if len(trials) <= n:
        return trials
    keep = np.random.default_rng(seed).choice(len(trials), size=n, replace=False)
    return [trials[i] for i in sorted(keep)]


def search_sections(study: optuna.Study, *, seed: int = 0) -> list[Section]:
    """Optuna's figures, each on a bounded subset of trials; a figure that cannot be drawn says why."""
    vis = optuna.visualization
    metric = _metric_name(study)
    multi = len(study.directions) > 1
    kw: dict[str, Any] = {"target": (lambda t: t.values[0]) if multi else None, "target_name": metric}
    complete = _complete(study)
    ranked = _best_first(study, complete) if complete else []
    with_params = [t for t in complete if t.params]
    curves = [t for t in ranked if t.intermediate_values][: MAX_INTERMEDIATE // 2]
    chosen = {t.number for t in curves}
    others = [t for t in study.get_trials(deepcopy=False) if t.intermediate_values and t.number not in chosen]
    curves += sorted(others, key=lambda t: t.number)[-(MAX_INTERMEDIATE - len(curves)):]

    def importances() -> Any:
        if len(with_params) < 2:
            raise ValueError(f"needs at least 2 complete trials with parameters, the study has {len(with_params)}")
        return vis.plot_param_importances(_subset(study, _sample(with_params, MAX_IMPORTANCE, seed)), **kw)

    def intermediate() -> Any:
        if not curves:
            raise ValueError("no trial reported intermediate values yet")
        fig = vis.plot_intermediate_values(_subset(study, sorted(curves, key=lambda t: t.number)))
        fig.update_layout(showlegend=len(curves) <= 12, yaxis_title=f"validation {metric}", xaxis_title="epoch")
        return fig

    def needs_params(make: Callable[[], Any]) -> Callable[[], Any]:
        def wrapped() -> Any:
            if not with_params:
                raise ValueError("no complete trial with searched parameters yet")
            return make()
        return wrapped

    figures: list[tuple[str, str, Callable[[], Any], str]] = [
        ("history", "Optimisation history", lambda: vis.plot_optimization_history(study, **kw),
         f"all {len(complete)} complete trials"),
        ("importances", "Parameter importances", importances,
         f"fANOVA over {min(len(with_params), MAX_IMPORTANCE)} complete trials"),
        ("parallel", "Parallel coordinates",
         needs_params(lambda: vis.plot_parallel_coordinate(_subset(study, ranked[:MAX_PARALLEL]), **kw)),
         f"the best {min(len(ranked), MAX_PARALLEL)} complete trials"),
        ("slices", "Slices",
         needs_params(lambda: vis.plot_slice(_subset(study, _sample(with_params, MAX_SLICE, seed)), **kw)),
         f"{min(len(with_params), MAX_SLICE)} complete trials"),
        ("intermediate", "Learning curves (intermediate values)", intermediate,
         (f"the best {min(len(ranked), MAX_INTERMEDIATE // 2)} complete trials and the most recent others, "
          f"{len(curves)} in all")),
        ("timeline", "Timeline", lambda: vis.plot_timeline(study, n_recent_trials=MAX_TIMELINE),
         f"the {min(len(study.trials), MAX_TIMELINE)} most recent trials"),
    ]
    if multi:
        figures.append(("pareto", "Pareto front", lambda: vis.plot_pareto_front(study), "complete trials"))
    sections = []
    for anchor, title, make, scope in figures:
        try:
            body = _figure(make(), height=520 if anchor in ("slices", "parallel") else 420) + _note(f"Shows {scope}.")
        except Exception as exc:  # noqa: BLE001 - one figure that cannot be drawn must not cost the whole report
            logger.info("report: %s skipped: %s", title, exc)
            body = _note(f"Not drawn: {exc}")
        sections.append(Section(anchor, title, body))
    return sections


def overview(study: optuna.Study, storage_url: str | None) -> Section:
    counts = {s.name: 0 for s in TrialState}
    for t in study.get_trials(deepcopy=False):
        counts[t.state.name] += 1
    metric = _metric_name(study)
    attrs = study.user_attrs
    data = attrs.get("data_summary", {})
    rows = [["trials", ", ".join(f"{n.lower()} {c:,}" for n, c in counts.items() if c) or "none"],
            ["objective", f"maximise validation {metric}" if len(study.directions) == 1 else
             ", ".join(f"{d.name.lower()} {n}" for d, n in zip(study.directions, study.metric_names or []))]]
    if storage_url:
        rows.append(["storage", redact(storage_url)])
    if data:
        rows.append(["data", f"{data.get('name')}: {data.get('pairs', 0):,} pairs, {data.get('queries', 0):,} "
                             f"queries; " + ", ".join(f"{n} {v['queries']:,} queries"
                                                      for n, v in data.get("splits", {}).items())])
    if attrs.get("created_at"):
        rows.append(["created", attrs["created_at"]])
    if attrs.get("versions"):
        rows.append(["versions", ", ".join(f"{k} {v}" for k, v in attrs["versions"].items())])
    body = _table(["", ""], rows)
    ranked = _best_first(study, _complete(study))[:10]
    if ranked:
        names = sorted({k for t in ranked for k in t.params})
        body += "<h3>Best trials</h3>" + _table(
            ["trial", metric, "epochs", "minutes", *names],
            [[t.number, float(t.values[0]), int(t.user_attrs.get("epochs_run", len(t.intermediate_values))),
              f"{(t.duration.total_seconds() / 60 if t.duration else 0):.1f}",
              *[_param(t.params.get(n, "")) for n in names]]
             for t in ranked])
    if "config" in attrs:
        body += ("<details><summary>Resolved config</summary><pre>"
                 + _e(redact(json.dumps(attrs["config"], indent=2))) + "</pre></details>")
    return Section("overview", "Overview", body)


def build_report(study: optuna.Study, *, out: Path, storage_url: str | None = None, device: str = "cpu",
                 seed: int = 0) -> Path:
    """Write the report for ``study`` to ``out`` (one HTML file) and return its path."""
    from plotly.offline import get_plotlyjs

    from study.report_ranking import ranking_section

    started = time.perf_counter()
    sections = [overview(study, storage_url), *search_sections(study, seed=seed),
                ranking_section(study, device=device, seed=seed)]
    nav = " ".join(f'<a href="#{s.anchor}">{_e(s.title)}</a>' for s in sections)
    body = "".join(f'<section id="{s.anchor}"><h2>{_e(s.title)}</h2>{s.body}</section>' for s in sections)
    body = redact(f"<h1>Study {_e(study.study_name)}</h1><nav>{nav}</nav>{body}")
    footer = _note(f"Written {time.strftime('%Y-%m-%d %H:%M')} by study report in {time.perf_counter() - started:.1f} s.")
    page = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>study report: '
            f"{_e(study.study_name)}</title><style>{_CSS}</style>"
            f'<script type="text/javascript">{get_plotlyjs()}</script></head><body>{body}{footer}</body></html>')
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(out)
    return out
