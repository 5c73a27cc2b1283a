"""The study's note on optuna-dashboard: the data, its splits, the search space, what is fixed, and the test
comparison with the untuned default and the baselines. Written at the start and the end of a run, never over a
note the user edited by hand (the hash of the note we wrote last is kept in a study system attribute).

A nicety: writing it logs a warning and returns on failure, never stopping a run.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import optuna

from study.evaluation.comparison import Comparison
from study.runtime.attrs import study_attr, study_attrs
from study.storage import optuna_private as private
from study.storage.urls import redact

logger = logging.getLogger("study.dashboard.artifacts")  # the logger these messages have always had

NOTE_HASH_KEY = "study:note_sha256"  # study system attr: the note we wrote last, to never clobber user edits


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _grade(label: Any) -> str:
    """A grade as stored in the data summary ("3.0") as a reader writes it: 3; 2.33 stays 2.33."""
    try:
        value = float(label)
    except (TypeError, ValueError):
        return str(label)  # an unmapped letter grade
    return str(int(value)) if value.is_integer() else f"{value:.3g}"


def _space_line(name: str, spec: dict[str, Any]) -> str:
    if "choices" in spec:
        return f"| `{name}` | {', '.join(map(_fmt, spec['choices']))} |"
    scale = " (log)" if spec.get("log") else ""
    step = f", step {spec['step']}" if spec.get("step") else ""
    return f"| `{name}` | {_fmt(spec.get('low'))} … {_fmt(spec.get('high'))}{scale}{step} |"


def study_note(study: optuna.Study, summary: dict[str, Any], config: dict[str, Any]) -> str:
    """The study's Markdown note, from the dataset summary, the resolved config and what the study stores."""
    s = config.get("study", {})
    metric = s.get("metric", "ndcg@10")
    lines = [f"## {study.study_name}", "",
             f"Maximise validation **{metric}**" + (f", minimise **{s['second_objective']}**"
                                                    if s.get("second_objective") else "") + ".", ""]
    if summary:
        lines += [(f"**Data** `{summary.get('name', '?')}`: {summary.get('pairs', 0):,} judged pairs, "
                   f"{summary.get('queries', 0):,} queries, {summary.get('products', 0):,} products; "
                   f"fingerprint `{summary.get('fingerprint', '?')}`."), "",
                  f"- text fields: {', '.join(summary.get('text_fields', [])) or '(none)'}",
                  f"- behaviour features: {', '.join(summary.get('feature_fields', [])) or '(none)'}",
                  "- labels: "
                  + ", ".join(f"{_grade(k)}: {v:,}" for k, v in summary.get("label_counts", {}).items()),
                  ""]
        splits = summary.get("splits", {})
        if splits:
            lines += ["| split | queries | pairs |", "|---|---:|---:|"]
            lines += [f"| {n} | {v['queries']:,} | {v['pairs']:,} |" for n, v in splits.items()] + [""]
    search = config.get("search", {})
    if search:
        lines += ["**Search space**", "", "| parameter | range |", "|---|---|"]
        lines += [_space_line(n, spec) for n, spec in search.items()] + [""]
    model, train = config.get("model", {}), config.get("train", {})
    fixed = {f"model.{k}": model.get(k) for k in ("variant", "encoder", "n_layers", "max_length")}
    fixed.update({f"train.{k}": train.get(k) for k in ("epochs", "batch_size", "patience")})
    fixed = {k: v for k, v in fixed.items() if k not in search and v is not None}
    if fixed:
        lines += ["**Fixed**: " + ", ".join(f"`{k}` = {_fmt(v)}" for k, v in fixed.items()), ""]
    comparison = Comparison.from_user_attrs(study_attrs(study))
    if comparison is not None:
        lines += [("**Test split** (held-out queries): the tuned best trial against the untuned default and "
                   "the baselines, on the same queries"), "", comparison.to_markdown(), ""]
    else:
        lines += ["_The test-split comparison with the baselines appears here once a run has finished._", ""]
    lines.append(f"Storage `{redact(config.get('storage', {}).get('url', '?'))}`; every finished trial "
                 "has an artifact (validation curve and per-query NDCG histogram).")
    return redact("\n".join(lines))


def write_study_note(study: optuna.Study, summary: dict[str, Any], config: Any) -> bool:
    """Save the note unless the user edited the one we wrote before; returns whether it was written."""
    try:
        from optuna_dashboard import get_note, save_note  # ~1.3 s; `study status` imports this module

        raw = config.to_dict() if hasattr(config, "to_dict") else dict(config)
        body = study_note(study, summary, raw)
        current = get_note(study)
        ours = private.study_system_attrs(study).get(NOTE_HASH_KEY)
        if current and hashlib.sha256(current.encode()).hexdigest() != ours:
            logger.info("study %r has a note edited by hand; left as it is", study.study_name)
            return False
        if current == body:
            return False
        save_note(study, body)
        private.set_study_system_attr(study, NOTE_HASH_KEY, hashlib.sha256(body.encode()).hexdigest())
        return True
    except Exception as exc:  # noqa: BLE001 - the note is informational: a failure must not stop a run
        logger.warning("could not write the dashboard note of study %r: %s", study.study_name,
                       redact(str(exc)))
        return False


def refresh_study_notes(storage: optuna.storages.BaseStorage) -> int:
    """Rewrite stale notes of this tool's studies (baselines appear once a run finished); returns how many."""
    written = 0
    for s in optuna.get_all_study_summaries(storage, include_best_trial=False):
        study = optuna.load_study(study_name=s.study_name, storage=storage)
        config = study_attr(study, "config")
        if config is not None:
            written += write_study_note(study, study_attr(study, "data_summary", {}), config)
    return written
