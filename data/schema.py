"""The canonical table of judged (query, product) pairs that every source produces.

Columns: ``query_id``, ``query``, ``product_id``, any subset of text fields (title, description,
brand, ...), any subset of numeric behaviour features (price, rating, ...), and ``label`` (graded
relevance as a float gain level g >= 0; NDCG uses gain 2^g - 1).
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

ID_COLUMNS = ("query_id", "query", "product_id")
LABEL = "label"
KNOWN_TEXT_FIELDS = ("title", "description", "brand", "category", "colour", "color", "material", "attributes")
KNOWN_FEATURE_FIELDS = (
    "price",
    "rating",
    "review_count",
    "impressions",
    "clicks",
    "add_to_cart",
    "purchases",
    "ctr",
    "conversion_rate",
    "days_since_listed",
)
# ESCI-style letter grades mapped to gain levels.
ESCI_GAINS = {"E": 3.0, "S": 2.0, "C": 1.0, "I": 0.0}


@dataclass(frozen=True)
class JudgedPairs:
    """A validated canonical table plus which of its columns are text and which are features.

    ``warnings``: what reading and checking the source found worth telling (one sentence each, no file name);
    ``study data check`` lists them and ``study run`` logs them. Splits do not carry them.
    """

    frame: pd.DataFrame
    text_fields: tuple[str, ...]
    feature_fields: tuple[str, ...]
    name: str = "dataset"
    warnings: tuple[str, ...] = dataclasses.field(default=(), compare=False)

    @property
    def n_queries(self) -> int:
        return int(self.frame["query_id"].nunique())

    def __len__(self) -> int:
        return len(self.frame)

    def subset(self, query_ids: np.ndarray | list[str]) -> JudgedPairs:
        keep = self.frame["query_id"].isin(set(query_ids))
        return JudgedPairs(self.frame.loc[keep].reset_index(drop=True), self.text_fields, self.feature_fields,
                           self.name)

    def fingerprint(self) -> str:
        """A stable hash of the content (columns, values, order) used to refuse resuming on other data."""
        h = hashlib.sha256()
        h.update(repr((self.text_fields, self.feature_fields)).encode())
        cols = list(ID_COLUMNS) + list(self.text_fields) + list(self.feature_fields) + [LABEL]
        h.update(pd.util.hash_pandas_object(self.frame[cols], index=False).values.tobytes())
        return h.hexdigest()[:16]

    def summary(self) -> dict[str, object]:
        labels = self.frame[LABEL]
        return {
            "name": self.name,
            "pairs": len(self.frame),
            "queries": self.n_queries,
            "products": int(self.frame["product_id"].nunique()),
            "text_fields": list(self.text_fields),
            "feature_fields": list(self.feature_fields),
            "label_counts": {str(k): int(v) for k, v in labels.value_counts().sort_index().items()},
        }


def product_text(frame: pd.DataFrame, text_fields: tuple[str, ...]) -> list[str]:
    """Join the text fields of each row with field markers, e.g. ``title: red shoe | brand: acme``.

    Empty or missing fields are left out so that short catalogues stay short after tokenisation.
    """
    parts: list[list[str]] = [[] for _ in range(len(frame))]
    for field in text_fields:
        values = frame[field].astype("string").fillna("").str.strip().tolist()
        for i, v in enumerate(values):
            if v:
                parts[i].append(f"{field}: {v}")
    return [" | ".join(p) for p in parts]
