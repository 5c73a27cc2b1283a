"""The report's ranking section: the best trial against the untuned default and the baselines on the test
split (the stored :class:`~study.comparison.Comparison`, the same table ``study run`` prints: differences with
paired bootstrap intervals), its per-query NDCG distribution (recomputed from its checkpoint on the study's
stored data) and example queries with their top products and grades. Anything that cannot be recomputed here
(no checkpoint, other data) is said, not hidden.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import optuna
import plotly.graph_objects as go
import torch

from study.data.schema import LABEL, product_text
from study.errors import UserInputError
from study.evaluation.comparison import Comparison
from study.models.device import resolve_device, resolve_precision
from study.models.metrics import per_query_ndcg
from study.models.train import predict
from study.report.html import Section, escape, figure, grade, metric_name, note, number, table
from study.runtime.attrs import study_attr, study_attrs
from study.runtime.checkpoints import load_trial_model
from study.runtime.studies import stored_config
from study.runtime.trials import best_trial
from study.workspace import prepare_workspace

logger = logging.getLogger(__name__)

N_EXAMPLES = 4
TOP_PRODUCTS = 5


def _per_query(study: optuna.Study, trial: optuna.trial.FrozenTrial, device: str) -> dict[str, Any]:
    """Scores of the best trial's checkpoint on the test split of the study's own data."""
    model, config, _ = load_trial_model(trial)
    dev = resolve_device(device)
    ws = prepare_workspace(stored_config(study), dev)
    stored = study_attr(study, "dataset_fingerprint")
    if stored not in (None, ws.pairs.fingerprint()):
        raise ValueError(f"the data found here (fingerprint {ws.pairs.fingerprint()}) is not the study's "
                         f"({stored})")
    split = ws.tensors("test", config.model)
    model.to(dev)
    with torch.inference_mode():
        scores = predict(model, split, batch_size=config.train.eval_batch_size,
                         dtype=resolve_precision(config.train.precision, dev))
    k = config.train.ndcg_k
    qids, ndcg = per_query_ndcg(scores, split.labels_np, split.row_query, k=k)
    return {"scores": scores, "qids": qids, "ndcg": ndcg, "split": split, "k": k,
            "text_fields": ws.pairs.text_fields}


def _distribution(result: dict[str, Any], seed: int) -> str:
    split, k, ndcg = result["split"], result["k"], result["ndcg"]
    random_scores = np.random.default_rng(seed).random(split.n_pairs)
    _, random_ndcg = per_query_ndcg(random_scores, split.labels_np, split.row_query, k=k)
    finite = ndcg[np.isfinite(ndcg)]
    fig = go.Figure()
    bins = {"start": 0.0, "end": 1.0001, "size": 0.05}
    fig.add_histogram(x=finite, xbins=bins, name="tuned model", opacity=0.75)
    fig.add_histogram(x=random_ndcg[np.isfinite(random_ndcg)], xbins=bins, name="random order", opacity=0.45)
    peak = max(np.histogram(finite, bins=20, range=(0.0, 1.0001))[0].max(initial=0), 1)
    counts_axis = {"tickmode": "linear", "tick0": 0, "dtick": 1} if peak <= 10 else {"tickformat": "d"}
    fig.update_layout(barmode="overlay", xaxis_title=f"NDCG@{k} of one query",  # the heading is its title
                      yaxis={"title": "queries", **counts_axis}, legend={"orientation": "h", "y": 1.12})
    stats = [["queries", int(ndcg.size)], ["mean", float(finite.mean()) if finite.size else "–"],
             ["median", float(np.median(finite)) if finite.size else "–"],
             ["perfect (1.0)", int(np.sum(finite >= 1 - 1e-9))], ["below 0.5", int(np.sum(finite < 0.5))],
             ["without a relevant item (not scored)", int(ndcg.size - finite.size)]]
    return (f'<div class="grid"><div>{figure(fig)}</div>'
            f'<div>{table(["per-query NDCG", ""], stats)}</div></div>')


def _examples(result: dict[str, Any]) -> str:
    split, ndcg, qids = result["split"], result["ndcg"], result["qids"]
    frame, scores = split.frame, result["scores"]
    scored = np.flatnonzero(np.isfinite(ndcg))
    if scored.size == 0:
        return note("No test query has a relevant item, so there is no example to show.")
    order = scored[np.argsort(ndcg[scored], kind="stable")]
    picks = [order[round(q * (order.size - 1))] for q in np.linspace(1.0, 0.0, N_EXAMPLES)]
    names = ["best", "upper quartile", "lower quartile", "worst"] if N_EXAMPLES == 4 else [""] * N_EXAMPLES
    fields = result["text_fields"]
    title_field = "title" if "title" in fields else None
    parts, seen = [], set()
    for name, pick in zip(names, picks):
        if pick in seen:
            continue
        seen.add(pick)
        rows = np.flatnonzero(split.row_query == qids[pick])
        ranked = rows[np.argsort(-scores[rows], kind="stable")]
        sub = frame.iloc[ranked]
        texts = (sub[title_field].astype(str).tolist() if title_field else product_text(sub, fields))
        ideal = sorted(sub[LABEL].tolist(), reverse=True)[:TOP_PRODUCTS]
        top = table(["rank", "product", "grade", "score"], [
            [i + 1, f"{pid}: {text[:90]}", grade(label), float(score)]
            for i, (pid, text, label, score) in enumerate(
                zip(sub["product_id"], texts, sub[LABEL], scores[ranked]))][:TOP_PRODUCTS])
        parts.append(f'<div class="example"><h4>{escape(name)}: “{escape(sub["query"].iloc[0])}” — '
                     f'NDCG@{result["k"]} {ndcg[pick]:.3f}, {len(rows)} judged products</h4>{top}'
                     '<p class="note">ideal grades at the top: '
                     f'{escape(", ".join(map(grade, ideal)))}</p></div>')
    return '<div class="grid">' + "".join(parts) + "</div>"


def _best_trial_line(trial: optuna.trial.FrozenTrial, metric: str) -> str:
    val = trial.user_attrs.get("val_metrics") or {}
    shown = f"validation {metric} {val[metric]:.4f}" if isinstance(val.get(metric), (int, float)) else ""
    if trial.user_attrs.get("best_epoch") is not None:
        shown += f" (epoch {trial.user_attrs['best_epoch']})"
    params = ", ".join(f"<code>{escape(k)}</code> = {escape(number(v))}" for k, v in trial.params.items())
    return f"<p>Best trial <b>{trial.number}</b>{': ' + escape(shown) if shown else ''}. {params}</p>"


def ranking_section(study: optuna.Study, *, device: str = "cpu", seed: int = 0) -> Section:
    trial = best_trial(study)
    if trial is None:
        return Section("ranking", "Ranking quality of the best trial", note("No complete trial yet."))
    body = _best_trial_line(trial, metric_name(study))
    comparison = Comparison.from_user_attrs(study_attrs(study), best_trial=trial.number)
    if comparison is not None:
        body += "<h3>Tuned against the untuned default and the baselines, same test queries</h3>"
        body += comparison.to_html(all_metrics=True)
        if comparison.has_intervals:
            body += figure(comparison.figure(), height=340)
    else:
        body += note("Not evaluated on the test split yet: `study run` does so once its trials are done.")
    try:
        result = _per_query(study, trial, device)
    except (FileNotFoundError, ValueError, KeyError, OSError, RuntimeError, UserInputError) as exc:
        logger.info("report: per-query NDCG skipped: %s", exc)
        return Section("ranking", "Ranking quality of the best trial",
                       body + note(f"Per-query NDCG and examples not recomputed: {exc}. Run the report where "
                                    "the study ran (its checkpoints and data)."))
    body += "<h3>Per-query NDCG on the test split</h3>" + _distribution(result, seed)
    body += "<h3>Example test queries: the model's top products</h3>" + _examples(result)
    return Section("ranking", "Ranking quality of the best trial", body)
