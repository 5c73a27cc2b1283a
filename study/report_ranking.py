"""The report's ranking section: the best trial against the untuned default and the baselines on the test
split (differences with paired bootstrap intervals, from the stored comparison), its per-query NDCG
distribution (recomputed from its checkpoint on the study's stored data) and example queries with their top
products and grades. Anything that cannot be recomputed here (no checkpoint, other data) is said, not hidden.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import optuna

from study.data.errors import UserInputError
from study.data.schema import LABEL, product_text
from study.report import N_EXAMPLES, TOP_PRODUCTS, Section, _e, _figure, _metric_name, _note, _table

logger = logging.getLogger(__name__)


def _metrics_rows(study: optuna.Study, trial: optuna.trial.FrozenTrial, metric: str) -> tuple[list[str], list]:
    k = metric.split("@")[-1] if "@" in metric else "10"
    columns = [metric, "mrr", "map", f"recall@{k}", "f1", "roc_auc"]
    test = study.user_attrs.get("test")
    rows: list[tuple[str, dict[str, float]]] = []
    if test and test.get("trial") == trial.number:
        rows.append((f"tuned, best trial {trial.number} (test)", test["metrics"]))
    default = study.user_attrs.get("test_default")
    if default and default.get("trial") != trial.number:
        rows.append((f"untuned default, trial {default['trial']} (test)", default["metrics"]))
    for name, m in (study.user_attrs.get("baselines") or {}).items():
        rows.append((name.replace("_", " ") + " (test)", m))
    rows.append((f"tuned, best trial {trial.number} (validation)", trial.user_attrs.get("val_metrics", {})))
    table = [[name, *[float(m[c]) if isinstance(m.get(c), (int, float)) else "–" for c in columns]]
             for name, m in rows]
    return ["model", *columns], table


def _comparison(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> Any:
    """The stored test comparison (tuned minus each row, bootstrap intervals), if made for this trial."""
    from study.evaluation import stored_comparison

    comparison = stored_comparison(study)
    return comparison if comparison is not None and comparison.best_trial == trial.number else None


def _comparison_figure(header: list[str], rows: list, metric: str) -> Any:
    import plotly.graph_objects as go

    fig = go.Figure()
    for column in (metric, "mrr"):
        j = header.index(column)
        test_rows = [r for r in rows if r[0].endswith("(test)") and isinstance(r[j], float)]
        fig.add_bar(name=column, x=[r[0].removesuffix(" (test)") for r in test_rows], y=[r[j] for r in test_rows],
                    text=[f"{r[j]:.3f}" for r in test_rows], textposition="outside")
    fig.update_layout(title="Test split: tuned model against the baselines", barmode="group",
                      yaxis={"range": [0, 1.08], "title": "score"})
    return fig


def _per_query(study: optuna.Study, trial: optuna.trial.FrozenTrial, device: str) -> dict[str, Any]:
    """Scores of the best trial's checkpoint on the test split of the study's own data."""
    import torch

    from study.evaluation import load_trial_model
    from study.models.device import resolve_device, resolve_precision
    from study.models.metrics import per_query_ndcg
    from study.models.train import predict
    from study.studies import stored_config
    from study.workspace import prepare_workspace

    model, config, _ = load_trial_model(trial)
    dev = resolve_device(device)
    ws = prepare_workspace(stored_config(study), dev)
    stored = study.user_attrs.get("dataset_fingerprint")
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
    import plotly.graph_objects as go

    from study.models.metrics import per_query_ndcg

    split, k, ndcg = result["split"], result["k"], result["ndcg"]
    random_scores = np.random.default_rng(seed).random(split.n_pairs)
    _, random_ndcg = per_query_ndcg(random_scores, split.labels_np, split.row_query, k=k)
    finite = ndcg[np.isfinite(ndcg)]
    fig = go.Figure()
    bins = {"start": 0.0, "end": 1.0001, "size": 0.05}
    fig.add_histogram(x=finite, xbins=bins, name="tuned model", opacity=0.75)
    fig.add_histogram(x=random_ndcg[np.isfinite(random_ndcg)], xbins=bins, name="random order", opacity=0.45)
    fig.update_layout(barmode="overlay", title=f"Per-query NDCG@{k} on the test split",
                      xaxis_title=f"NDCG@{k} of one query", yaxis_title="queries")
    stats = [["queries", int(ndcg.size)], ["mean", float(finite.mean()) if finite.size else "–"],
             ["median", float(np.median(finite)) if finite.size else "–"],
             ["perfect (1.0)", int(np.sum(finite >= 1 - 1e-9))], ["below 0.5", int(np.sum(finite < 0.5))],
             ["without a relevant item (not scored)", int(ndcg.size - finite.size)]]
    return f'<div class="grid"><div>{_figure(fig)}</div><div>{_table(["per-query NDCG", ""], stats)}</div></div>'


def _examples(result: dict[str, Any]) -> str:
    split, ndcg, qids = result["split"], result["ndcg"], result["qids"]
    frame, scores = split.frame, result["scores"]
    scored = np.flatnonzero(np.isfinite(ndcg))
    if scored.size == 0:
        return _note("No test query has a relevant item, so there is no example to show.")
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
        table = _table(["rank", "product", "grade", "score"], [
            [i + 1, f"{pid}: {text[:90]}", f"{label:g}", float(score)] for i, (pid, text, label, score) in enumerate(
                zip(sub["product_id"], texts, sub[LABEL], scores[ranked]))][:TOP_PRODUCTS])
        parts.append(f'<div class="example"><h4>{_e(name)}: “{_e(sub["query"].iloc[0])}” — NDCG@{result["k"]} '
                     f'{ndcg[pick]:.3f}, {len(rows)} judged products</h4>{table}'
                     f'<p class="note">ideal grades at the top: {_e(", ".join(f"{g:g}" for g in ideal))}</p></div>')
    return '<div class="grid">' + "".join(parts) + "</div>"


def ranking_section(study: optuna.Study, *, device: str = "cpu", seed: int = 0) -> Section:
    from study.trials import best_trial

    trial = best_trial(study)
    if trial is None:
        return Section("ranking", "Ranking quality of the best trial", _note("No complete trial yet."))
    metric = _metric_name(study)
    header, rows = _metrics_rows(study, trial, metric)
    body = f"<p>Best trial <b>{trial.number}</b>: " + ", ".join(
        f"<code>{_e(k)}</code> = {_e(f'{v:.4g}' if isinstance(v, float) else v)}" for k, v in trial.params.items())
    body += "</p>"
    comparison = _comparison(study, trial)
    if comparison is not None:
        from study.comparison import comparison_figure, format_html

        body += "<h3>Tuned against the untuned default and the baselines, same test queries</h3>"
        body += format_html(comparison) + _figure(comparison_figure(comparison), height=340)
        body += "<h3>All test metrics</h3>"
    body += _table(header, rows)
    if any(r[0].endswith("(test)") for r in rows):
        body += _figure(_comparison_figure(header, rows, metric), height=380)
    else:
        body += _note("Not evaluated on the test split yet: `study run` does so once its trials are done.")
    try:
        result = _per_query(study, trial, device)
    except (FileNotFoundError, ValueError, KeyError, OSError, RuntimeError, UserInputError) as exc:
        logger.info("report: per-query NDCG skipped: %s", exc)
        return Section("ranking", "Ranking quality of the best trial",
                       body + _note(f"Per-query NDCG and examples not recomputed: {exc}. Run the report where "
                                    "the study ran (its checkpoints and data)."))
    body += "<h3>Per-query NDCG on the test split</h3>" + _distribution(result, seed)
    body += "<h3>Example test queries: the model's top products</h3>" + _examples(result)
    return Section("ranking", "Ranking quality of the best trial", body)
