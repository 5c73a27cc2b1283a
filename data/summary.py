"""The human summary of a table of judged pairs that ``study data check`` prints, warnings included."""

from __future__ import annotations

import textwrap

import pandas as pd
from study.data.schema import LABEL, JudgedPairs


def _label_counts(labels: pd.Series, limit: int = 8) -> str:
    counts = labels.round(6).value_counts()
    shown = counts.iloc[:limit].sort_index()
    text = ", ".join(f"{k:g}: {v:,} ({v / len(labels):.0%})" for k, v in shown.items())
    return text + (f" and {len(counts) - limit} rarer values" if len(counts) > limit else "")


def check_file_report(pairs: JudgedPairs) -> str:
    """A short human summary of a validated table for ``study data check``: ``NAME: OK`` (or ``OK with N
    warnings``), its numbers, then one ``warning:`` paragraph per warning (wrapped at 100 columns)."""
    frame = pairs.frame
    sizes = frame.groupby("query_id").size()
    n = len(pairs.warnings)
    lines = [
        f"{pairs.name}: OK" + (f" with {n} warning{'s' if n != 1 else ''} (below)" if n else ""),
        f"  pairs {len(frame):,}, queries {pairs.n_queries:,}, products {frame['product_id'].nunique():,}",
        f"  judged products per query: min {sizes.min()}, median {sizes.median():g}, max {sizes.max()}",
        "  labels: " + _label_counts(frame[LABEL]),
        f"  text fields: {', '.join(pairs.text_fields)}",
        f"  feature fields: {', '.join(pairs.feature_fields) or '(none: text only)'}",
    ]
    no_gain = int((frame.groupby("query_id")[LABEL].max() <= 0).sum())
    if no_gain:
        lines.append(f"  queries with no relevant product (all labels 0): {no_gain:,} (reported apart)")
    for field in pairs.feature_fields:
        share = float(frame[field].isna().mean())
        if share > 0:
            lines.append(f"  missing {field}: {share:.1%} (imputed with the training median plus a flag)")
    lines += [textwrap.fill(f"warning: {warning}", width=100, subsequent_indent="  ", break_long_words=False,
                            break_on_hyphens=False) for warning in pairs.warnings]
    return "\n".join(lines)
