"""``study report``: one self-contained HTML file (plotly's JavaScript inlined, works offline).

The page: an overview (trials, objective, data, the best trials), the search (``study.report.search``:
Optuna's figures on bounded subsets of trials, the Pareto front with a second objective) and the result
(``study.report.ranking``: the best trial's test comparison with the untuned default and the baselines, its
per-query NDCG distribution and example queries). The page parts live in ``study.report.html``; this module
imports the others, none of them imports it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import optuna
from plotly.offline import get_plotlyjs

from study.report.html import CSS, Section, duration, escape, metric_names, note, number, table
from study.report.ranking import ranking_section
from study.report.search import best_first, complete_trials, search_sections
from study.runtime.attrs import study_attrs, trial_attr
from study.runtime.trials import counts
from study.storage.urls import redact


def report_path(out: str | Path | None, name: str) -> Path:
    """Where ``study report --out`` writes: the file given, or ``<folder>/<name>.html`` for an existing folder
    or a path ending in a slash; ``reports/<name>.html`` by default."""
    if out is None or str(out) == "":
        return Path("reports") / f"{name}.html"
    if str(out).endswith(("/", "\\")) or Path(out).is_dir():
        return Path(out) / f"{name}.html"
    return Path(out)


def _objective(study: optuna.Study) -> str:
    names = metric_names(study)
    if len(study.directions) == 1:
        return f"maximise validation {names[0]}"
    return ", ".join(f"{d.name.lower()} {n}" for d, n in zip(study.directions, names)) + " (a Pareto front)"


def overview(study: optuna.Study, storage_url: str | None) -> Section:
    names = metric_names(study)
    attrs = study_attrs(study)
    data = attrs.get("data_summary", {})
    by_state = counts(study)
    rows = [["trials", ", ".join(f"{s.lower()} {by_state[s]:,}"
                                 for s in ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING") if by_state[s])
             or "none"],
            ["objective", _objective(study)]]
    if storage_url:
        rows.append(["storage", redact(storage_url)])
    if data:
        rows.append(["data", f"{data.get('name')}: {data.get('pairs', 0):,} pairs, "
                             f"{data.get('queries', 0):,} queries; "
                             + ", ".join(f"{n} {v['queries']:,} queries"
                                         for n, v in data.get("splits", {}).items())])
    if attrs.get("created_at"):
        rows.append(["created", attrs["created_at"]])
    if attrs.get("versions"):
        rows.append(["versions", ", ".join(f"{k} {v}" for k, v in attrs["versions"].items())])
    body = table(["", ""], rows)
    ranked = best_first(study, complete_trials(study))[:10]
    if ranked:
        params = sorted({k for t in ranked for k in t.params})
        body += "<h3>Best trials</h3>" + table(
            ["trial", *names, "epochs", "time", *params],
            [[t.number, *(float(v) for v in t.values),
              int(t.user_attrs.get("epochs_run", max(len(trial_attr(t, "curve") or []) - 1, 0))),
              duration(t.duration.total_seconds()) if t.duration else "–",
              *[number(t.params[n]) if n in t.params else "–" for n in params]]
             for t in ranked])
    if "config" in attrs:
        body += ("<details><summary>Resolved config</summary><pre>"
                 + escape(redact(json.dumps(attrs["config"], indent=2))) + "</pre></details>")
    return Section("overview", "Overview", body)


def build_report(study: optuna.Study, *, out: Path, storage_url: str | None = None, device: str = "cpu",
                 seed: int = 0) -> Path:
    """Write the report for ``study`` to ``out`` (one HTML file) and return its path."""
    started = time.perf_counter()
    sections = [overview(study, storage_url), *search_sections(study, seed=seed),
                ranking_section(study, device=device, seed=seed)]
    nav = " ".join(f'<a href="#{s.anchor}">{escape(s.title)}</a>' for s in sections)
    body = "".join(f'<section id="{s.anchor}"><h2>{escape(s.title)}</h2>{s.body}</section>' for s in sections)
    body = redact(f"<h1>Study {escape(study.study_name)}</h1><nav>{nav}</nav>{body}")
    footer = note(f"Written {time.strftime('%Y-%m-%d %H:%M')} by study report in "
                  f"{time.perf_counter() - started:.1f} s.")
    page = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>study report: '
            f"{escape(study.study_name)}</title><style>{CSS}</style>"
            f'<script type="text/javascript">{get_plotlyjs()}</script></head>'
            f'<body>{body}{footer}</body></html>')
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(out)
    return out
