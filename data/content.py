"""What the values of a table of judged pairs mean for a study: refusals where training would be meaningless,
warnings where part of the file would be, and columns left out that carry nothing.

Called by ``validate_pairs`` for training data (not for candidates to rank), on the canonical frame while
its index still holds the file's rows. Refused: one label for every row; one label within every query (no
query can be ranked, so every trial scores the same); labels so large that float32 gains lose the lower
grades; no product text anywhere. Warned: queries with one label (they score the same under every order),
a few labels between whole grades, a grade scale above 10, rows without product text. Left out, with a
warning: text columns empty in every row, behaviour columns missing in every row or constant.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from study.data.schema import LABEL

from study.errors import UserInputError, describe_rows

# Gains are 2^g - 1 in float32 (24-bit mantissa): above this a grade's gain swamps every lower grade's.
MAX_LABEL = 24
# A grade scale above this looks like scores or percentages rather than a few relevance levels.
MANY_LEVELS = 10
# Non-integer labels among integer grades are reported as likely typos when they are this rare.
STRAY_FRACTION = 0.05


def _query_examples(frame: pd.DataFrame, query_ids: Sequence[str], limit: int = 3) -> str:
    shown = []
    for qid in list(query_ids)[:limit]:
        rows = frame.index[frame["query_id"] == qid]
        label = frame.loc[rows[0], LABEL]
        shown.append(f"{frame.loc[rows[0], 'query']!r} (all {label:g}, {describe_rows(rows, limit=3)})")
    return ", ".join(shown) + (" ..." if len(query_ids) > limit else "")


def _check_labels(frame: pd.DataFrame, *, source: str, problems: list[str], notes: list[str],
                  merged_rows: pd.Index) -> None:
    labels = frame[LABEL]
    levels = np.unique(labels.round(6))
    if len(levels) == 1:
        problems.append(
            f"column 'label' is {levels[0]:g} in all {len(labels):,} rows: every order of every query scores "
            "the same, so every trial would get the same score and the study would tune nothing. Judge "
            "products at two or more relevance levels (e.g. 0 = irrelevant ... 3 = exact match).")
        return
    per_query = frame.groupby("query_id", sort=False)[LABEL].nunique()
    constant = per_query.index[per_query == 1]
    if len(constant) == len(per_query):
        problems.append(
            f"every query has a single label for all its products (column 'label'), e.g. "
            f"{_query_examples(frame, constant)}: no query can be ranked, every order of its products scores "
            "the same, so every trial would get the same score. Each query needs products judged at "
            "different levels.")
    elif len(constant):
        notes.append(
            f"{len(constant):,} of {len(per_query):,} queries ({len(constant) / len(per_query):.0%}) have a "
            f"single label for all their products (column 'label'), e.g. {_query_examples(frame, constant)}: "
            "every order scores the same on them, so they only dilute the differences between trials.")
    top = float(labels.max())
    if top > MAX_LABEL:
        problems.append(
            f"column 'label' goes up to {top:g} ({describe_rows(frame.index[labels == top])}): labels are "
            f"gain levels g with gain 2^g - 1, and above {MAX_LABEL} the top grades' gains swamp all lower "
            "grades in float32, so training would ignore them. Scores or percentages? Map them to a few "
            "levels (e.g. 0-4).")
    elif top > MANY_LEVELS:
        notes.append(
            f"column 'label' goes up to {top:g}: labels are gain levels g with gain 2^g - 1, so each grade "
            "counts double the one below and the top grades outweigh all others. If these are scores or "
            "percentages, map them to a few levels (e.g. 0-4).")
    fractional = (labels - labels.round()).abs() > 1e-6
    stray = fractional & ~frame.index.isin(merged_rows)  # a merged pair's mean: between grades, no typo
    if stray.any() and stray.mean() <= STRAY_FRACTION:
        values = ", ".join(f"{v:g}" for v in pd.unique(labels[stray])[:3])
        notes.append(
            f"column 'label' has {int(stray.sum())} value(s) between whole grades ({values}) in "
            f"{describe_rows(frame.index[stray])}, among {int((~fractional).sum()):,} whole grades: "
            "typos? They are used as they are.")


def _check_texts(frame: pd.DataFrame, text_fields: tuple[str, ...], *, problems: list[str],
                 notes: list[str]) -> tuple[str, ...]:
    filled = {f: frame[f].astype(str).str.strip() != "" for f in text_fields}
    empty = [f for f in text_fields if not filled[f].any()]
    kept = tuple(f for f in text_fields if f not in empty)
    if not kept:
        problems.append(
            f"product text column(s) {', '.join(map(repr, text_fields))} are empty in every row: the ranker "
            "reads the query against the product text, and there is none. Fill them, or map the column that "
            "holds product titles (e.g. --map title=name).")
        return text_fields
    if empty:
        notes.append(f"product text column(s) {', '.join(map(repr, empty))} empty in every row: left out.")
    none = ~np.logical_or.reduce([filled[f].to_numpy() for f in kept])
    if none.any():
        notes.append(
            f"{int(none.sum()):,} row(s) have no product text (column(s) {', '.join(map(repr, kept))} "
            f"empty) in {describe_rows(frame.index[none])}: the model reads only the query for them.")
    return kept


def _check_features(frame: pd.DataFrame, feature_fields: tuple[str, ...], *,
                    notes: list[str]) -> tuple[str, ...]:
    kept = []
    for field in feature_fields:
        values = frame[field]
        if values.isna().all():
            notes.append(f"behaviour column {field!r} is empty in every row: left out.")
        elif values.notna().all() and values.nunique() == 1:
            notes.append(f"behaviour column {field!r} is {values.iloc[0]:g} in every row, so it cannot tell "
                         "products apart: left out.")
        else:
            kept.append(field)
    return tuple(kept)


def check_content(frame: pd.DataFrame, text_fields: tuple[str, ...], feature_fields: tuple[str, ...], *,
                  source: str, merged_rows: Sequence[int] = (),
                  ) -> tuple[tuple[str, ...], tuple[str, ...], list[str]]:
    """The text and feature fields worth keeping and the warnings; a ``UserInputError`` (one paragraph per
    problem) when training on ``frame`` (canonical columns, numeric labels, file rows as index) would be
    meaningless. ``merged_rows`` (index values) hold the merge of a repeated pair's judgments: a label
    between whole grades there is their mean, not a typo."""
    problems: list[str] = []
    notes: list[str] = []
    _check_labels(frame, source=source, problems=problems, notes=notes, merged_rows=pd.Index(merged_rows))
    texts = _check_texts(frame, text_fields, problems=problems, notes=notes)
    features = _check_features(frame, feature_fields, notes=notes)
    if len(problems) == 1:
        raise UserInputError(f"{source}: {problems[0]}")
    if problems:
        raise UserInputError(f"{source}: {len(problems)} problems.\n"
                             + "\n".join(f"{i}. {p}" for i, p in enumerate(problems, 1)))
    return texts, features, notes
