"""The exported model's README.md: what the ranker is, how to use it, what ``study rank`` reads (as
``study.export.scoring.Ranker`` behaves), its metrics, the test comparison and its hyperparameters."""

from __future__ import annotations

from typing import Any

from study.evaluation.comparison import Comparison

_VARIANTS = {
    "fusion": "text and behaviour features",
    "text": "text only",
    "features": "an MLP over behaviour features (no text encoder).",
}
_ARCHITECTURES = {
    "cross": "a BERT cross-encoder over `[CLS] query [SEP] product text [SEP]`, pooled, into an MLP ranking "
             "head",
    "prior": "the pretrained encoder's zero-shot cosine (query vs product embedding) plus a learned residual "
             "from a BERT cross-encoder over `[CLS] query [SEP] product text [SEP]` and an MLP head",
    "frozen": "the pretrained encoder's zero-shot cosine (not fine-tuned) plus a learned residual MLP",
    "two_tower": "query and product encoded apart by a fine-tuned BERT (product vectors can be computed "
                 "ahead of time), scaled cosine plus a residual MLP",
}


def _describe(model: dict[str, Any]) -> str:
    if model["variant"] == "features":
        return _VARIANTS["features"]
    extra = (" and lexical match features (BM25, term and number overlap)" if model.get("match_features")
             else "")
    return f"{_VARIANTS[model['variant']]}: {_ARCHITECTURES[model.get('architecture', 'cross')]}{extra}."


def _input_section(spec: dict[str, Any]) -> str:
    """What ``study rank`` reads, exactly as ``study.export.scoring.Ranker`` behaves: required, optional with
    a warning, optional, never read; and the training file's column names it reads them under."""
    texts = list(spec["text_fields"])
    reads_text = spec["model"].get("variant") != "features"
    required = ["`query`"] + ([f"at least one of the text fields ({', '.join(f'`{t}`' for t in texts)})"]
                              if reads_text and texts else [])
    lines = ["Input: one row per (query, product) candidate.", "",
             f"- required: {' and '.join(required)}"]
    if reads_text and texts:
        lines.append(f"- optional, with a warning: each text field ({', '.join(f'`{t}`' for t in texts)}); a "
                     "missing one is scored as empty text")
    if spec["feature_fields"]:
        lines.append(f"- optional, with a warning: the behaviour features "
                     f"({', '.join(f'`{f}`' for f in spec['feature_fields'])}); a missing one is scored as a "
                     "cold-start product (training median plus a missing flag)")
    lines.append("- optional: `query_id` (derived from the query text when absent), `product_id` (without it "
                 "the output gets a `row` column, the candidate's input position)")
    lines.append("- never read: `label`, and any other column (kept in the output)")
    columns = spec.get("columns") or {}
    if columns:
        shown = ", ".join(f"`{canonical}` from `{column}`" for canonical, column in columns.items())
        lines += ["", (f"Columns are read under the training file's names ({shown}), so a file shaped like "
                       "it needs no mapping; map a differently named column with `--map CANONICAL=COLUMN` "
                       "(`study rank`) or `columns={...}` (`study.rank`).")]
    return "\n".join(lines)


def model_card(spec: dict[str, Any], metrics: dict[str, Any], summary: dict[str, Any]) -> str:
    m = spec["model"]
    metric = metrics["objective"]
    layers = f", first {spec['n_layers_kept']} layer(s)" if spec["n_layers_kept"] else ""
    rows = [("validation", metrics.get("validation")), ("test", metrics.get("test"))]
    rows += [(f"test, {n.replace('_', ' ')} baseline", v)
             for n, v in (metrics.get("baselines") or {}).items()]
    if metrics.get("retrained"):
        rows.append(("test, after retraining on train + validation", metrics["retrained"]["test"]))
    table = "\n".join(f"| {name} | {v.get(metric, float('nan')):.4f} | {v.get('mrr', float('nan')):.4f} |"
                      for name, v in rows if v)
    params = "\n".join(f"- `{k}` = {v!r}" for k, v in metrics["params"].items())
    features = ", ".join(spec["feature_fields"]) or "(none)"
    data = (f"{summary.get('name', '?')}, {summary.get('pairs', 0):,} judged pairs, "
            f"{summary.get('queries', 0):,} queries")
    comparison = ""
    if metrics.get("comparison"):
        comparison = ("## Against the untuned default and the baselines (same test queries)\n\n"
                      + Comparison.from_dict(metrics["comparison"]).to_markdown() + "\n\n")
    return f"""# {metrics['study']}: search ranker (trial {metrics['trial']})

A `{m['variant']}` ranker, {_describe(m)}

- encoder: `{spec['source_encoder']}`{layers}, {m['pooling']} pooling, max length {m['max_length']}
- text fields: {', '.join(spec['text_fields']) or '(none)'}
- behaviour features: {features}
- data: {data}

## Use

```bash
study rank --model THIS_DIR --input candidates.csv --output ranked.csv
```

```python
from study.export.scoring import Ranker

ranked = Ranker.load("THIS_DIR").rank(candidates_df)  # adds score and rank, by score within each query
```

{_input_section(spec)}

## Metrics

| split | {metric} | mrr |
|---|---:|---:|
{table}

{comparison}## Hyperparameters

{params}
"""
