"""What optuna-dashboard shows beyond Optuna's own records: a small SVG per finished trial (validation curve
and per-query NDCG histogram) uploaded to the file-system artifact store, and two custom plotly charts on the
study page. The study note (data, splits, search space, the test comparison with the untuned default and the
baselines) is ``dashboard.note``, re-exported here.

Artifacts are a nicety: every entry point here logs a warning and returns on failure, never failing a trial.
"""

from __future__ import annotations

import html
import json
import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from study.dashboard.note import NOTE_HASH_KEY, refresh_study_notes, study_note, write_study_note
from study.models.metrics import per_query_ndcg
from study.runtime.attrs import set_trial_attr, trial_attr
from study.storage.urls import redact

__all__ = ["BEST_CHART", "MAX_CHART_TRIALS", "NOTE_HASH_KEY", "SPEED_CHART", "SPEED_PARAMS", "artifact_dir",
           "artifact_store", "best_histogram", "log_trial_artifacts", "refresh_study_notes", "speed_figure",
           "study_note", "trial_svg", "write_study_note"]

logger = logging.getLogger(__name__)

SPEED_CHART = "quality-vs-speed"
BEST_CHART = "best-trial-per-query-ndcg"
MAX_CHART_TRIALS = 500


def artifact_dir(runs_dir: str | Path) -> Path:
    return Path(runs_dir) / "artifacts"


def artifact_store(path: str | Path) -> optuna.artifacts.FileSystemArtifactStore:
    Path(path).mkdir(parents=True, exist_ok=True)
    return optuna.artifacts.FileSystemArtifactStore(str(path))


# ------------------------------------------------------------------------------------------- trial artifact


def _polyline(xs: list[float], ys: list[float], box: tuple[float, float, float, float],
              x_range: tuple[float, float], y_range: tuple[float, float]) -> list[tuple[float, float]]:
    left, top, width, height = box
    (x0, x1), (y0, y1) = x_range, y_range
    return [(left + (x - x0) / ((x1 - x0) or 1) * width, top + height - (y - y0) / ((y1 - y0) or 1) * height)
            for x, y in zip(xs, ys)]


def trial_svg(*, title: str, curve: list[tuple[int, float]], per_query: np.ndarray, metric: str) -> str:
    """A 720x300 SVG: validation metric per epoch (left), histogram of per-query NDCG (right)."""
    w, h, pad = 720, 300, 44
    panel = (w - 3 * pad) / 2
    box_l = (pad, 40.0, panel, h - 100.0)
    box_r = (2 * pad + panel, 40.0, panel, h - 100.0)
    out = [(f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
            'font-family="sans-serif" font-size="11">'), f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<text x="{w / 2}" y="18" text-anchor="middle" font-size="14">{html.escape(title)}</text>']
    for (left, top, width, height), label in ((box_l, f"validation {metric} per epoch"),
                                              (box_r, (f"per-query {metric.split('@')[0].upper()} "
                                                       "(validation)"))):
        out.append(f'<rect x="{left}" y="{top}" width="{width}" height="{height}" fill="none" '
                   'stroke="#999"/>')
        out.append(f'<text x="{left + width / 2}" y="{top + height + 30}" '
                   f'text-anchor="middle">{label}</text>')
    if curve:
        xs = [float(e) for e, _ in curve]
        ys = [float(v) for _, v in curve]
        lo, hi = min(ys), max(ys)
        margin = max((hi - lo) * 0.15, 0.01)
        y_range = (max(lo - margin, 0.0), min(hi + margin, 1.0))
        x_range = (min(xs) - 0.5, max(xs) + 0.5)
        points = _polyline(xs, ys, box_l, x_range, y_range)
        out.append('<polyline fill="none" stroke="#1f77b4" stroke-width="2" points="'
                   + " ".join(f"{x:.1f},{y:.1f}" for x, y in points) + '"/>')
        for (px, py), e, v in zip(points, xs, ys):
            out.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="#1f77b4"><title>epoch {e:g}: '
                       f'{v:.4f}</title></circle>')
            out.append(f'<text x="{px:.1f}" y="{box_l[1] + box_l[3] + 14}" text-anchor="middle">{e:g}</text>')
        for y in y_range:
            _, py = _polyline([0.0], [y], box_l, (0.0, 1.0), y_range)[0]
            out.append(f'<text x="{box_l[0] - 4}" y="{py + 4:.1f}" text-anchor="end">{y:.3f}</text>')
    finite = per_query[np.isfinite(per_query)]
    counts, edges = np.histogram(finite, bins=10, range=(0.0, 1.0))
    left, top, width, height = box_r
    peak = max(int(counts.max(initial=0)), 1)
    bar = width / len(counts)
    for i, c in enumerate(counts):
        bh = c / peak * height
        out.append(f'<rect x="{left + i * bar + 1:.1f}" y="{top + height - bh:.1f}" width="{bar - 2:.1f}" '
                   f'height="{bh:.1f}" fill="#2ca02c"><title>{edges[i]:.1f}–{edges[i + 1]:.1f}: {c} '
                   'queries</title></rect>')
    for x in (0.0, 0.5, 1.0):
        out.append(f'<text x="{left + x * width:.1f}" y="{top + height + 14}" '
                   f'text-anchor="middle">{x:g}</text>')
    out.append(f'<text x="{left - 4}" y="{top + 8}" text-anchor="end">{peak}</text>')
    n_nan = int(per_query.size - finite.size)
    stats = (f"{finite.size} queries, mean {finite.mean():.3f}, median {np.median(finite):.3f}"
             if finite.size else "no query with a relevant item")
    if n_nan:
        stats += f"; {n_nan} without a relevant item"
    out.append(f'<text x="{left + width / 2}" y="{h - 8}" text-anchor="middle" fill="#555">{stats}</text>')
    out.append("</svg>")
    return "\n".join(out)


# what changes training speed, in the order the speed chart colours by
SPEED_PARAMS = ("model.n_layers", "model.max_length", "model.architecture", "model.variant",
                "train.batch_size", "model.pooling")


def speed_figure(points: list[tuple[int, float, float, dict[str, Any]]], metric: str) -> Any:
    """Validation metric against training pairs per second, one point per ``(trial number, value, pairs/s,
    params)``, coloured by the first parameter of :data:`SPEED_PARAMS` that the study searches (one colour
    when it searches none of them: a parameter the study keeps fixed explains nothing)."""
    import plotly.graph_objects as go  # no plotly in the read-only commands, which import this module

    by = next((n for n in SPEED_PARAMS if any(n in p[3] for p in points)), None)  # params: searched only
    text = [f"trial {n}" + (f", {by} {params.get(by)}" if by else "") for n, _, _, params in points]
    marker: dict[str, Any] = {"size": 9, "color": "#1f77b4"}
    if by is not None:
        values = [params.get(by) for *_, params in points]
        levels = sorted({v for v in values if v is not None}, key=str)
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in levels)
        codes = [v if numeric else (levels.index(v) if v in levels else None) for v in values]
        colorbar: dict[str, Any] = {"title": {"text": by.split(".")[-1]}}
        if not numeric:
            colorbar.update(tickvals=list(range(len(levels))), ticktext=[str(v) for v in levels])
        marker.update(color=codes, colorscale="Viridis", showscale=True, colorbar=colorbar)
    fig = go.Figure(go.Scatter(x=[p[2] for p in points], y=[p[1] for p in points], mode="markers", text=text,
                               marker=marker,
                               hovertemplate="%{text}<br>%{x:.0f} pairs/s, %{y:.4f}<extra></extra>"))
    fig.update_layout(title="Quality vs training speed (complete trials)" + (f", colour: {by}" if by else ""),
                      xaxis_title="training pairs per second", yaxis_title=f"validation {metric}")
    return fig


def best_histogram(per_query: np.ndarray, number: int, metric: str) -> Any:
    """Per-query validation NDCG of the best trial so far; query counts on whole-number ticks."""
    import plotly.graph_objects as go  # lazy: see speed_figure

    finite = per_query[np.isfinite(per_query)]
    peak = int(np.histogram(finite, bins=20, range=(0.0, 1.0001))[0].max(initial=0))
    ticks = {"tickmode": "linear", "tick0": 0, "dtick": 1} if peak <= 10 else {"tickformat": "d"}
    fig = go.Figure(go.Histogram(x=finite, xbins={"start": 0.0, "end": 1.0001, "size": 0.05}))
    fig.update_layout(title=f"Best trial so far ({number}): per-query {metric} on validation",
                      xaxis_title=metric, yaxis={"title": "queries", **ticks}, bargap=0.05)
    return fig


def _custom_charts(study: optuna.Study, trial: optuna.trial.Trial, value: float, per_query: np.ndarray,
                   metric: str) -> None:
    from optuna_dashboard import save_plotly_graph_object  # lazy: see note.write_study_note

    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if t.values and t.number != trial.number][-MAX_CHART_TRIALS:]
    points = [(t.number, t.values[0], trial_attr(t, "pairs_per_second", 0.0), t.params) for t in done]
    points.append((trial.number, value, trial_attr(trial, "pairs_per_second", 0.0), trial.params))
    fig = speed_figure(points, metric)
    save_plotly_graph_object(study, fig, graph_object_id=SPEED_CHART)
    if all(value > p[1] for p in points[:-1]):
        save_plotly_graph_object(study, best_histogram(per_query, trial.number, metric),
                                 graph_object_id=BEST_CHART)


def log_trial_artifacts(trial: optuna.trial.BaseTrial, *, model: Any, workspace: Any, config: Any,
                        history: list[dict[str, float]], val_scores: np.ndarray | None = None) -> str | None:
    """Upload the trial's SVG (validation curve + per-query NDCG histogram) and refresh the study's custom
    charts. Returns the artifact id, or None (a ``FixedTrial``, or a failure logged as a warning): an
    artifact never fails a trial."""
    if not isinstance(trial, optuna.trial.Trial):
        return None
    try:
        study = trial.study
        from study.models.device import resolve_precision  # torch: not in the read-only commands
        from study.models.train import predict  # torch: as above

        metric = config.study.metric
        k = config.train.ndcg_k
        split = workspace.tensors("val", config.model)
        scores = val_scores if val_scores is not None else predict(  # scored already unless resumed past it
            model, split, batch_size=config.train.eval_batch_size,
            dtype=resolve_precision(config.train.precision, workspace.device))
        _, per_query = per_query_ndcg(scores, split.labels_np, split.row_query, k=k)
        curve = [(int(h["epoch"]), float(h[metric])) for h in history if metric in h]
        best = max((v for _, v in curve), default=float("nan"))
        svg = trial_svg(title=f"{study.study_name}: trial {trial.number}, best {metric} {best:.4f}",
                        curve=curve, per_query=per_query, metric=metric)
        store = artifact_store(artifact_dir(config.study.runs_dir))
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"trial_{trial.number:05d}_curve_ndcg.svg"
            path.write_text(svg, encoding="utf-8")
            artifact_id = optuna.artifacts.upload_artifact(artifact_store=store, file_path=str(path),
                                                           study_or_trial=trial, mimetype="image/svg+xml")
        summary = {"mean": round(float(np.nanmean(per_query)), 6) if np.isfinite(per_query).any() else None,
                   "share_below_0.5": round(float(np.mean(per_query[np.isfinite(per_query)] < 0.5)), 4)
                   if np.isfinite(per_query).any() else None}
        set_trial_attr(trial, "val_per_query_ndcg", json.loads(json.dumps(summary)))
        _custom_charts(study, trial, best, per_query, metric)
        return artifact_id
    except Exception as exc:  # noqa: BLE001 - an artifact is a nicety: never fail (or prune) the trial because of it
        logger.warning("trial %d: could not write its dashboard artifact: %s: %s", trial.number,
                       type(exc).__name__, redact(str(exc)))
        return None
