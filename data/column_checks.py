"""The checks of a raw table of judged pairs, column by column, each refusing with one paragraph that names
the file, the column and the rows: required columns, ids and query text (ids derived from text when absent),
labels, behaviour features, nested cells and single-item queries; and which columns are text and which are
features when the config does not say. ``data.validate`` runs them; ``data.content`` refuses what would make
training meaningless."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np
import pandas as pd
from study.data.schema import ID_COLUMNS, KNOWN_FEATURE_FIELDS, KNOWN_TEXT_FIELDS, LABEL

from study.errors import UserInputError, describe_rows

REQUIRED = ("query", LABEL)
# Numeric columns that are identifiers or row numbers, never behaviour features.
_ID_LIKE = re.compile(r"^(id|index|row|rowid|sku|asin|ean|upc|gtin|isbn|unnamed.*|.*_id|.*_uid|.*_index)$",
                      re.IGNORECASE)


def query_ids_from_text(queries: pd.Series) -> pd.Series:
    """A stable id per distinct query text (``q`` + 12 hex digits), the same in any file or order."""
    unique = pd.unique(queries.astype(str))
    ids = {q: "q" + hashlib.blake2b(q.encode(), digest_size=6).hexdigest() for q in unique}
    return queries.astype(str).map(ids)


def product_ids_from_text(frame: pd.DataFrame, text_fields: Sequence[str]) -> pd.Series:
    """A stable id per distinct product text (``p`` + 12 hex digits): the text fields, in order, joined."""
    parts = [frame[f].astype("string").fillna("").str.strip().astype(str) for f in text_fields]
    joined = parts[0]
    for part in parts[1:]:
        joined = joined + "\x1f" + part
    unique = pd.unique(joined)
    ids = {t: "p" + hashlib.blake2b(t.encode(), digest_size=6).hexdigest() for t in unique}
    return joined.map(ids)


def fail(source: str, message: str) -> UserInputError:
    return UserInputError(f"{source}: {message}")


def examples(values: pd.Series, limit: int = 3) -> str:
    shown = [repr(v.item() if isinstance(v, np.generic) else v) for v in pd.unique(values)[:limit]]
    return ", ".join(shown)


def check_columns(frame: pd.DataFrame, *, source: str, require_label: bool) -> None:
    required = [c for c in REQUIRED if require_label or c != LABEL]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise fail(source, (
            f"required column(s) {', '.join(map(repr, missing))} missing. The file has columns "
            f"{', '.join(map(repr, map(str, frame.columns)))}. Needed: query, label and at least one product "
            "text column such as title (query_id and product_id are optional: derived from the query and "
            "product text when absent); "
            "map differently named columns with --map (e.g. --map query=search_term) or, in a config file, "
            "with data.columns, e.g. columns = {query = \"search_term\"}."
        ))


def check_ids_and_query(frame: pd.DataFrame, *, source: str) -> pd.DataFrame:
    out = frame.copy()
    for column in ("query", "product_id", "query_id"):
        if column not in out.columns:
            continue
        text = out[column].astype("string").str.strip()
        empty = text.isna() | (text == "")
        if empty.any():
            what = "empty query text" if column == "query" else f"an empty {column}"
            need = "its query text" if column == "query" else f"a {column}"
            raise fail(source, f"column {column!r} has {what} in {describe_rows(out.index[empty])}; every "
                                f"judged pair needs {need}.")
        out[column] = text.astype(str)
    if "query_id" not in out.columns:
        out["query_id"] = query_ids_from_text(out["query"])
    texts_per_id = out.groupby("query_id")["query"].nunique()
    mixed = texts_per_id[texts_per_id > 1]
    if len(mixed):
        qid = mixed.index[0]
        rows = out.index[out["query_id"] == qid]
        raise fail(source, f"query_id {qid!r} has {mixed.iloc[0]} different query texts in column 'query' "
                            f"({describe_rows(rows)}); one query_id must always have the same query text.")
    return out


def check_labels(frame: pd.DataFrame, *, source: str, notes: list[str]) -> pd.Series:
    raw = frame[LABEL]
    missing = raw.isna()
    if missing.any():
        raise fail(source, f"column 'label' is empty (NaN) in {describe_rows(frame.index[missing])}; every "
                            "judged pair needs a relevance grade.")
    if pd.api.types.is_bool_dtype(raw):
        notes.append("column 'label' holds true/false: read as gains 1 (relevant) and 0 (not relevant).")
        return raw.astype("float64")
    labels = pd.to_numeric(raw, errors="coerce")
    bad = labels.isna() | ~np.isfinite(labels.to_numpy(dtype=float, na_value=np.nan))
    if bad.any():
        text = raw[bad].astype(str).str.strip()
        hint = ("Percentages are not relevance grades: map them to a few gain levels (e.g. 0-3) in the file."
                if text.str.endswith("%").any() else
                "Labels must be numeric gain levels >= 0; map letter or word grades with data.label_map, "
                "e.g. label_map = {E = 3, S = 2, C = 1, I = 0} or {relevant = 1, irrelevant = 0}.")
        counts = (f" ({int(bad.sum()):,} of {len(raw):,} rows"
                  f"{'; the others are numbers' if (~bad).any() else ''})")
        raise fail(source, (
            f"column 'label' has non-numeric values ({examples(raw[bad])}) in "
            f"{describe_rows(frame.index[bad])}{counts}. {hint}"
        ))
    negative = labels < 0
    if negative.any():
        raise fail(source, f"column 'label' has negative values ({examples(raw[negative])}) in "
                            f"{describe_rows(frame.index[negative])}; labels are gain levels >= 0 "
                            "(shift your scale, e.g. relevance 1..3 -> label 0..2).")
    return labels.astype("float64")


def infer_text_fields(frame: pd.DataFrame, feature_fields: Sequence[str]) -> tuple[str, ...]:
    known = tuple(f for f in KNOWN_TEXT_FIELDS if f in frame.columns)
    if known:
        return known
    taken = set(ID_COLUMNS) | {LABEL} | set(feature_fields) | set(KNOWN_FEATURE_FIELDS)
    return tuple(str(c) for c in frame.columns
                 if c not in taken and not _ID_LIKE.match(str(c))
                 and (pd.api.types.is_string_dtype(frame[c]) or pd.api.types.is_object_dtype(frame[c])))


def infer_feature_fields(frame: pd.DataFrame, text_fields: Sequence[str]) -> tuple[str, ...]:
    taken = set(ID_COLUMNS) | {LABEL} | set(text_fields)
    fields = [c for c in KNOWN_FEATURE_FIELDS if c in frame.columns and c not in taken]
    for c in frame.columns:
        column = frame[c]
        if c in taken or c in fields or _ID_LIKE.match(str(c)):
            continue
        if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
            fields.append(str(c))
    return tuple(fields)


def check_features(frame: pd.DataFrame, fields: Sequence[str], *, source: str) -> dict[str, pd.Series]:
    out = {}
    for field in fields:
        raw = frame[field]
        if pd.api.types.is_bool_dtype(raw):
            raw = raw.astype("float64")
        values = pd.to_numeric(raw, errors="coerce")
        bad = values.isna() & raw.notna()
        if pd.api.types.is_string_dtype(raw) or pd.api.types.is_object_dtype(raw):
            bad &= raw.astype("string").str.strip().fillna("") != ""  # blank cells are just missing
        if bad.any():
            raise fail(source, (
                f"feature column {field!r} has non-numeric values ({examples(raw[bad])}) in "
                f"{describe_rows(frame.index[bad])}. Behaviour features must be numbers (leave a cell empty "
                "when unknown), or list the numeric ones in data.feature_fields."
            ))
        infinite = np.isinf(values)
        if infinite.any():
            raise fail(source, (
                f"feature column {field!r} has infinite values ({examples(raw[infinite])}) in "
                f"{describe_rows(frame.index[infinite])}. Behaviour features must be finite numbers (leave a "
                "cell empty when unknown)."
            ))
        out[field] = values.astype("float64")
    return out


def refuse_nested_cells(frame: pd.DataFrame, *, source: str) -> None:
    """Cells holding a list, an array or a mapping (Parquet and JSON can) would be read as their printed form
    (``['a' 'b']``) or not at all; refused, every such column with its rows."""
    found = []
    for column in frame.columns:
        if not pd.api.types.is_object_dtype(frame[column]):
            continue
        nested = frame[column].map(lambda v: isinstance(v, (list, tuple, dict, set, np.ndarray)))
        if nested.any():
            found.append(f"{column!r} in {describe_rows(frame.index[nested])}")
    if found:
        raise fail(source, (
            f"cells hold lists or nested values instead of one text or number: {'; '.join(found)}. Write one "
            "value per cell (join a list of words into one text, or pick one number)."
        ))


def check_single_items(frame: pd.DataFrame, *, source: str, require_label: bool, query_column: str) -> None:
    if not require_label:
        return
    # distinct products: a query whose one product is judged twice still has one once the repeats merge
    single = frame.groupby("query_id")["product_id"].transform("nunique") == 1
    if single.any():
        rows = frame.loc[single].drop_duplicates("query_id").head(3)
        if query_column == "query_id":
            named = ", ".join(f"{q!r} ({t!r})" for q, t in zip(rows["query_id"], rows["query"], strict=True))
        else:
            named = ", ".join(map(repr, rows["query"]))
        n = int(frame.loc[single, "query_id"].nunique())
        raise fail(source, (
            f"{n} {'query has' if n == 1 else 'queries have'} a single judged product (column "
            f"{query_column!r}: {named}{' ...' if n > 3 else ''} in {describe_rows(frame.index[single])}); "
            "a ranking needs at least two judged products per query. Add judgements or drop those rows."
        ))
