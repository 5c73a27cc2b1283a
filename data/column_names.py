"""A file's own column names read as the canonical ones, so that the exports shops actually have load
without a ``--map``: a header that differs only in case, spaces or hyphens (``Query``, ``Review Count``),
and the common names of the required columns and the product title (``search_term``, ``relevance``,
``product_title``, as in Home Depot's file). Each column so read is said once; ``--map`` (``data.columns``)
always wins, and a name is never guessed when the file has two candidates for it."""

from __future__ import annotations

import re
from collections.abc import Mapping

from study.data.schema import ID_COLUMNS, KNOWN_FEATURE_FIELDS, KNOWN_TEXT_FIELDS, LABEL

CANONICAL = (*ID_COLUMNS, LABEL, *KNOWN_TEXT_FIELDS, *KNOWN_FEATURE_FIELDS)
# Other names of a column, compared after ``_normal``. Only names that mean the column in a file of judged
# (query, product) pairs: ``rating`` or ``score`` are not the label (a product's rating is a feature).
SYNONYMS: dict[str, tuple[str, ...]] = {
    "query": ("search_term", "search_terms", "search_query", "query_text", "search_string", "keyword",
              "keywords", "search"),
    "query_id": ("qid", "search_id", "search_term_id"),
    "product_id": ("product_uid", "item_id", "doc_id", "asin"),
    LABEL: ("relevance", "relevance_label", "relevance_grade", "grade", "judgment", "judgement",
            "esci_label", "gain"),
    "title": ("product_title", "product_name", "item_title", "item_name"),
    "description": ("product_description", "item_description"),
    "brand": ("product_brand",),
}


def _normal(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", str(name).strip().lower())


def recognise_columns(header: list[str], given: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """``(canonical -> file column, notes)`` for canonical columns the header lacks under their own name and
    ``given`` (the user's map) does not name, where exactly one file column is that name in another case or
    spelling, or one of its ``SYNONYMS``."""
    present = set(header)
    taken = set(given.values()) | {c for c in header if c in CANONICAL}
    by_normal: dict[str, list[str]] = {}
    for column in header:
        by_normal.setdefault(_normal(column), []).append(column)
    found: dict[str, str] = {}
    for canonical in CANONICAL:
        if canonical in present or canonical in given:
            continue
        for names in ((canonical,), SYNONYMS.get(canonical, ())):
            candidates = [c for n in names for c in by_normal.get(n, []) if c not in taken]
            if candidates:
                break
        if len(candidates) == 1:
            found[canonical] = candidates[0]
            taken.add(candidates[0])
    if not found:
        return found, []
    said = ", ".join(f"{column!r} as {canonical}" for canonical, column in found.items())
    return found, [f"columns read by their names: {said} (--map <name>=<column> chooses another column)."]
