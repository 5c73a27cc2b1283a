"""Repeated judgments of one (query, product) pair: several raters, or the same title sold twice.

They are normal, so by default they are merged into one row with one warning (``data.duplicates`` picks how
their labels combine: ``mean``, ``max`` or ``first``); ``error`` refuses such a file, naming the rows. Both
work on the canonical frame while its index still holds the file's rows (``validate_pairs``).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from study.data.schema import LABEL

from study.errors import UserInputError, describe_rows

KEYS = ["query_id", "product_id"]
LABEL_RULES = {"mean": "the mean label", "max": "the highest label", "first": "the first row's label"}


def _product(row: pd.Series, derived_from: str | None) -> str:
    return (f"product {row['product_id']!r}" if derived_from is None
            else f"{derived_from} {str(row[derived_from]).strip()!r}")


def merge_repeated_pairs(frame: pd.DataFrame, features: Sequence[str], *, rule: str = "mean",
                         derived_from: str | None = None) -> tuple[pd.DataFrame, str | None]:
    """Merge the rows that judge one (query_id, product_id) pair more than once into one row each.

    The merged row stands where the pair's first row stood, with that row's index (its row number in later
    messages). Its label follows ``rule``: ``mean`` (the mean of the pair's labels), ``max`` (the highest)
    or ``first`` (the first row's). Each numeric behaviour feature in ``features`` is the mean of the pair's
    rows, missing values left out (missing only where every row misses it); the query and the product's
    text fields are the first row's. Returns the merged frame and one warning that says the rule and
    counts the repeated pairs, the rows merged away and the pairs whose labels disagreed (``None`` and the
    frame itself when no pair repeats). ``derived_from`` names the text column that names a product when
    the file has no product_id (its ids were derived from the text), ``None`` otherwise.
    """
    if rule not in LABEL_RULES:
        raise ValueError(f"rule must be one of {', '.join(LABEL_RULES)}, got {rule!r}")
    repeated = frame.duplicated(KEYS, keep=False)
    if not repeated.any():
        return frame, None
    merged = frame.loc[~frame.duplicated(KEYS, keep="first")].copy()
    pairs = pd.MultiIndex.from_frame(merged[KEYS])
    groups = frame.groupby(KEYS, sort=False)
    merged[LABEL] = groups[LABEL].agg(rule).reindex(pairs).to_numpy()
    for field in features:
        merged[field] = groups[field].mean().reindex(pairs).to_numpy()
    labels = frame.loc[repeated].groupby(KEYS, sort=False)[LABEL]
    n_pairs, n_disagree = labels.ngroups, int((labels.nunique() > 1).sum())
    first = frame.loc[repeated].iloc[0]
    others = ", ".join(r for r in LABEL_RULES if r != rule)
    derived = (" The file has no product_id column, so the same product text is the same product."
               if derived_from else "")
    return merged, (
        f"{n_pairs:,} (query, product) pair(s) judged more than once "
        f"({describe_rows(frame.index[repeated])}; e.g. query {first['query']!r} with "
        f"{_product(first, derived_from)}): merged into one row each, {len(frame) - len(merged):,} row(s) "
        f"merged away; {n_disagree:,} of the repeated pairs had different labels, combined by "
        f"data.duplicates = {rule!r} ({LABEL_RULES[rule]}; set it to {others}, or error to refuse such a "
        f"file). {'Behaviour features are averaged, the text' if len(features) else 'The text'} is the "
        f"first row's.{derived}"
    )


def refuse_repeated_pairs(frame: pd.DataFrame, *, source: str, derived_from: str | None = None) -> None:
    """``data.duplicates = "error"``: a ``UserInputError`` naming the rows of every repeated pair, how many
    pairs repeat and how many of them disagree."""
    dup = frame.duplicated(KEYS, keep=False)
    if not dup.any():
        return
    first = frame.loc[dup].iloc[0]
    derived = (" (the file has no product_id column, so products with the same text are the same "
               "product; add a product_id column to tell them apart)" if derived_from else "")
    groups = frame.loc[dup].groupby(KEYS, sort=False)[LABEL]
    conflicting = int((groups.nunique(dropna=False) > 1).sum())
    conflicts = (f", {conflicting:,} of them with conflicting labels" if conflicting
                 else ", all with the same label")
    raise UserInputError(
        f"{source}: duplicate (query_id, product_id) pairs in {describe_rows(frame.index[dup])}: "
        f"{groups.ngroups:,} pair(s) judged more than once{conflicts}, e.g. query {first['query']!r} "
        f"with {_product(first, derived_from)} (columns 'query_id'/'query' and "
        f"{derived_from or 'product_id'!r}){derived}; "
        "data.duplicates = \"error\" refuses them: judge each product once per query, or merge the repeats "
        "with data.duplicates = \"mean\", \"max\" or \"first\"."
    )
