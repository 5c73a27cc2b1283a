"""Checking a raw table of judged pairs and turning it into the canonical ``JudgedPairs``.

Every problem is a ``UserInputError`` with one paragraph naming the file (``source``), the column and
the rows (spreadsheet numbering: header on row 1, data from row 2). ``query_id`` may be absent: it is
then derived from the query text (one stable id per distinct query); so may ``product_id``: derived
from the product's text fields. ``query, title, label`` is a complete file. Repeated judgments of one
(query, product) pair (several raters, the same title from two sellers) are merged into one row with a
warning, or refused with ``data.duplicates = "error"`` (``data.duplicates``).

The checks of each column are ``data.column_checks``; what would make training meaningless, ``data.content``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from study.data.column_checks import (
    REQUIRED,
    check_columns,
    check_features,
    check_ids_and_query,
    check_labels,
    check_single_items,
    fail,
    infer_feature_fields,
    infer_text_fields,
    product_ids_from_text,
    query_ids_from_text,
    refuse_nested_cells,
)
from study.data.config import DUPLICATE_RULES
from study.data.content import check_content
from study.data.duplicates import merge_repeated_pairs, refuse_repeated_pairs
from study.data.schema import KNOWN_TEXT_FIELDS, LABEL, JudgedPairs

from study.errors import UserInputError

__all__ = ["REQUIRED", "drop_single_item_queries", "product_ids_from_text", "query_ids_from_text",
           "validate_pairs"]

logger = logging.getLogger(__name__)


def _fields(frame: pd.DataFrame, text_fields: Sequence[str], feature_fields: Sequence[str], *,
            source: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The text and feature fields: as named (each must be a column), else inferred from the columns."""
    for kind, fields in (("text", text_fields), ("feature", feature_fields)):
        missing = [f for f in fields if f not in frame.columns]
        if missing:
            named = ", ".join(map(repr, missing))
            raise fail(source, f"{kind} field(s) {named} named in data.{kind}_fields are not columns of the "
                               f"file (its columns: {', '.join(map(str, frame.columns))}).")
    texts = tuple(text_fields) or infer_text_fields(frame, feature_fields)
    if not texts:
        raise fail(source, (
            "no product text column found. Add at least one of "
            f"{', '.join(KNOWN_TEXT_FIELDS)} (or name string columns in data.text_fields); the ranker reads "
            "the query against the product text."
        ))
    return texts, tuple(feature_fields) or infer_feature_fields(frame, texts)


def _checked_values(frame: pd.DataFrame, features: Sequence[str], *, source: str, require_label: bool,
                    duplicates: str, derived_from: str | None, query_column: str,
                    found: list[str]) -> tuple[dict[str, pd.Series], pd.Series]:
    """The features as numbers and the labels; the checks are independent, so every problem is reported at
    once, one paragraph each."""
    problems: list[UserInputError] = []

    def collect(check: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return check(*args, **kwargs)
        except UserInputError as exc:
            problems.append(exc)
            return None

    numbers = collect(check_features, frame, features, source=source)
    labels = (collect(check_labels, frame, source=source, notes=found) if require_label
              else pd.Series(np.nan, index=frame.index, dtype="float64"))
    if require_label and duplicates == "error":
        collect(refuse_repeated_pairs, frame, source=source, derived_from=derived_from)
    collect(check_single_items, frame, source=source, require_label=require_label, query_column=query_column)
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise UserInputError(f"{source}: {len(problems)} problems.\n" + "\n".join(
            f"{i}. {str(p).removeprefix(source + ': ')}" for i, p in enumerate(problems, 1)))
    return numbers, labels


def validate_pairs(
    frame: pd.DataFrame,
    *,
    source: str,
    text_fields: Sequence[str] = (),
    feature_fields: Sequence[str] = (),
    name: str | None = None,
    require_label: bool = True,
    notes: Sequence[str] = (),
    duplicates: str = "mean",
) -> JudgedPairs:
    """Check ``frame`` (canonical column names) and return the canonical table.

    ``text_fields`` / ``feature_fields`` empty means infer: the known text fields present (else the other
    string columns) and the numeric non-id columns. With ``require_label=False`` (candidates to rank)
    the label is not read, and single-item queries and repeated pairs are allowed; otherwise repeated
    judgments of one (query, product) pair are merged by ``duplicates`` (``mean``, ``max`` or ``first``
    label, with a warning: ``data.duplicates``) or refused (``error``), and ``data.content`` also
    refuses data that would make training meaningless. ``notes`` (what the reader changed) start the
    table's warnings. Row numbers in messages come from ``frame``'s integer index.
    """
    if duplicates not in DUPLICATE_RULES:
        raise ValueError(f"duplicates must be one of {', '.join(DUPLICATE_RULES)}, got {duplicates!r}")
    if frame.empty:
        raise fail(source, "the table holds no rows.")
    if not (frame.index.is_unique and pd.api.types.is_integer_dtype(frame.index)):
        frame = frame.reset_index(drop=True)  # else the index is the file's rows (a reader skipped some)
    check_columns(frame, source=source, require_label=require_label)
    refuse_nested_cells(frame, source=source)
    query_column = "query_id" if "query_id" in frame.columns else "query"  # where queries are told apart
    frame = check_ids_and_query(frame, source=source)
    texts, features = _fields(frame, text_fields, feature_fields, source=source)
    derived_product_id = "product_id" not in frame.columns
    derived_from = texts[0] if derived_product_id else None  # what names a product in messages
    if derived_product_id:
        frame = frame.assign(product_id=product_ids_from_text(frame, texts))
    found = list(notes)
    numbers, labels = _checked_values(frame, features, source=source, require_label=require_label,
                                      duplicates=duplicates, derived_from=derived_from,
                                      query_column=query_column, found=found)
    out = frame[["query_id", "query", "product_id"]].copy()
    for field in texts:
        out[field] = frame[field].astype("string").fillna("").str.strip().astype(str)
    for field in features:
        out[field] = numbers[field]
    out[LABEL] = labels
    if require_label:
        repeated = out.duplicated(["query_id", "product_id"], keep=False)
        merged_rows = out.index[repeated & ~out.duplicated(["query_id", "product_id"])]  # where merges land
        if duplicates != "error":  # else refused above when any pair repeats
            out, merged = merge_repeated_pairs(out, features, rule=duplicates, derived_from=derived_from)
            found += [merged] if merged else []
        texts, features, checked = check_content(out, texts, features, source=source, merged_rows=merged_rows)
        found += checked
        out = out[["query_id", "query", "product_id", *texts, *features, LABEL]]
    logger.info("%s: %d pairs, %d queries, text %s, features %s", source, len(out), out["query_id"].nunique(),
                list(texts), list(features))
    return JudgedPairs(out.reset_index(drop=True), texts, features, name=name or source,
                       warnings=tuple(found))


def drop_single_item_queries(frame: pd.DataFrame, *, source: str) -> pd.DataFrame:
    """For public datasets: drop queries with one judged product (they cannot be ranked) and log it."""
    sizes = frame.groupby("query_id")["query_id"].transform("size")
    keep = sizes > 1
    if not keep.all():
        logger.info("%s: dropped %d queries with a single judged product (%d of %d pairs)", source,
                    frame.loc[~keep, "query_id"].nunique(), int((~keep).sum()), len(frame))
    return frame.loc[keep]  # the index stays the file's rows, for messages
