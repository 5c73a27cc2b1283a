"""Adapters from public search-relevance datasets to the canonical table of judged pairs.

- Amazon ESCI: ``shopping_queries_dataset_examples.parquet`` + ``shopping_queries_dataset_products.parquet``;
  E/S/C/I -> gains 3/2/1/0, one locale, the ``small_version`` subset where the column exists.
- Wayfair WANDS: ``product.csv``, ``query.csv``, ``label.csv`` (tab separated);
  Exact/Partial/Irrelevant -> 2/1/0.
- Home Depot search relevance: ``train.csv`` (or ``train.csv.zip``), latin-1; label = relevance - 1
  (0..2, averaged rater grades); ``product_descriptions.csv`` beside it is joined when present.

Queries with a single judged product cannot be ranked; adapters drop them and log how many.
``detect_source`` recognises these formats by their file and column names (``data.source = "auto"``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from study.data.loaders import read_columns, read_raw
from study.data.schema import ESCI_GAINS, JudgedPairs
from study.data.validate import drop_single_item_queries, query_ids_from_text, validate_pairs

from study.errors import UserInputError, missing_path

logger = logging.getLogger(__name__)

WANDS_GAINS = {"Exact": 2.0, "Partial": 1.0, "Irrelevant": 0.0}
_HTML_TAG = re.compile(r"<[^>]+>")


def _require(frame: pd.DataFrame, columns: list[str], *, source: Path | str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise UserInputError(
            f"{source}: missing column(s) {', '.join(map(repr, missing))} expected in this dataset's format; "
            f"the file has {', '.join(map(str, frame.columns))}. Is it the right file?"
        )


def _text(series: pd.Series) -> pd.Series:
    """Plain single-line text: HTML tags and runs of whitespace removed, missing -> ''."""
    text = series.astype("string").fillna("")
    text = text.str.replace(_HTML_TAG, " ", regex=True).str.replace(r"\s+", " ", regex=True).str.strip()
    return text.astype(str)


def _find(directory: Path, names: tuple[str, ...], *, what: str) -> Path:
    for base in (directory, directory / "dataset"):
        for name in names:
            if (base / name).is_file():
                return base / name
    raise UserInputError(
        f"{directory}: no {what} found (looked for {', '.join(names)}, also under dataset/)."
    )


def load_esci(examples_path: str | Path, products_path: str | Path | None, *, locale: str = "us",
              small_version: bool = True) -> JudgedPairs:
    """Amazon Shopping Queries (ESCI); ``products_path`` defaults to the products file beside the examples."""
    examples_path = Path(examples_path)
    if examples_path.is_dir():
        examples_path = _find(examples_path, ("shopping_queries_dataset_examples.parquet",),
                              what="ESCI examples")
    if products_path is None:
        products_path = examples_path.with_name("shopping_queries_dataset_products.parquet")
    products_path = Path(products_path)
    examples = read_raw(examples_path, format="parquet")
    products = read_raw(products_path, format="parquet")
    _require(examples, ["query_id", "query", "product_id", "esci_label", "product_locale"],
             source=examples_path)
    _require(products, ["product_id", "product_locale", "product_title"], source=products_path)
    examples = examples[examples["product_locale"] == locale]
    if small_version and "small_version" in examples.columns:
        examples = examples[examples["small_version"] == 1]
    if examples.empty:
        locales = sorted(map(str, read_raw(examples_path, format="parquet")["product_locale"].unique()))
        raise UserInputError(
            f"{examples_path}: no judged pairs for locale {locale!r}; the file has {locales}."
        )
    products = products[products["product_locale"] == locale].drop_duplicates("product_id")
    merged = examples.merge(products, on=["product_id", "product_locale"], how="left", validate="many_to_one")
    unknown = set(merged["esci_label"].astype(str)) - set(ESCI_GAINS)
    if unknown:
        raise UserInputError(f"{examples_path}: column 'esci_label' has values {sorted(unknown)}; expected "
                             f"{', '.join(ESCI_GAINS)}.")
    fields = {"title": "product_title", "brand": "product_brand", "colour": "product_color",
              "description": "product_description", "bullet_points": "product_bullet_point"}
    frame = pd.DataFrame({"query_id": merged["query_id"].astype(str), "query": merged["query"].astype(str),
                          "product_id": merged["product_id"].astype(str)})
    for field, column in fields.items():
        if column in merged.columns:
            frame[field] = _text(merged[column])
    frame["label"] = merged["esci_label"].astype(str).map(ESCI_GAINS).astype(float)
    frame = drop_single_item_queries(frame.reset_index(drop=True), source=str(examples_path))
    texts = tuple(f for f in fields if f in frame.columns)
    return validate_pairs(frame, source=str(examples_path), text_fields=texts, feature_fields=(), name="esci")


def load_wands(directory: str | Path) -> JudgedPairs:
    """Wayfair WANDS from the folder holding product.csv, query.csv and label.csv (or its dataset/)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise UserInputError(f"data.path for WANDS must be the folder with product.csv, query.csv and "
                             f"label.csv; {directory} is not a folder.")
    paths = {name: _find(directory, (f"{name}.csv",), what=f"{name}.csv")
             for name in ("product", "query", "label")}
    product = read_raw(paths["product"], format="tsv", id_columns=("product_id",))
    query = read_raw(paths["query"], format="tsv", id_columns=("query_id",))
    label = read_raw(paths["label"], format="tsv", id_columns=("query_id", "product_id"))
    hierarchy = "category hierarchy" if "category hierarchy" in product.columns else "category_hierarchy"
    _require(product, ["product_id", "product_name"], source=paths["product"])
    _require(query, ["query_id", "query"], source=paths["query"])
    _require(label, ["query_id", "product_id", "label"], source=paths["label"])
    unknown = set(label["label"].astype(str)) - set(WANDS_GAINS)
    if unknown:
        raise UserInputError(f"{paths['label']}: column 'label' has values {sorted(unknown)}; expected "
                             f"{', '.join(WANDS_GAINS)}.")
    merged = label.merge(query[["query_id", "query"]], on="query_id", how="inner")
    merged = merged.merge(product, on="product_id", how="inner", validate="many_to_one")
    frame = pd.DataFrame({"query_id": merged["query_id"], "query": merged["query"].astype(str),
                          "product_id": merged["product_id"]})
    fields = {"title": "product_name", "product_class": "product_class", "category": hierarchy,
              "description": "product_description", "attributes": "product_features"}
    for field, column in fields.items():
        if column in merged.columns:
            frame[field] = _text(merged[column])
    numbers = {"rating": "average_rating", "review_count": "review_count", "rating_count": "rating_count"}
    for field, column in numbers.items():
        if column in merged.columns:
            frame[field] = pd.to_numeric(merged[column], errors="coerce")
    frame["label"] = merged["label"].astype(str).map(WANDS_GAINS)
    frame = drop_single_item_queries(frame, source=str(directory))
    return validate_pairs(frame, source=str(directory), name="wands",
                          text_fields=tuple(f for f in fields if f in frame.columns),
                          feature_fields=tuple(f for f in numbers if f in frame.columns))


def _homedepot_descriptions(directory: Path) -> pd.DataFrame | None:
    for name in ("product_descriptions.csv", "product_descriptions.csv.zip"):
        path = directory / name
        if path.is_file():
            frame = read_raw(path, encoding="latin-1", id_columns=("product_uid",))
            _require(frame, ["product_uid", "product_description"], source=path)
            return frame[["product_uid", "product_description"]].drop_duplicates("product_uid")
    return None


def load_homedepot(path: str | Path) -> JudgedPairs:
    """Home Depot product search relevance: ``train.csv`` / ``train.csv.zip`` or the folder holding it."""
    path = Path(path)
    if path.is_dir():
        path = _find(path, ("train.csv", "train.csv.zip"), what="Home Depot train.csv")
    raw = read_raw(path, encoding="latin-1", id_columns=("product_uid",))
    _require(raw, ["product_uid", "product_title", "search_term", "relevance"], source=path)
    relevance = pd.to_numeric(raw["relevance"], errors="coerce")
    frame = pd.DataFrame({
        "query_id": query_ids_from_text(raw["search_term"].astype(str)),
        "query": raw["search_term"].astype(str),
        "product_id": raw["product_uid"].astype(str),
        "title": _text(raw["product_title"]),
    })
    descriptions = _homedepot_descriptions(path.parent)
    if descriptions is not None:
        text = _text(descriptions["product_description"])
        lookup = dict(zip(descriptions["product_uid"].astype(str), text, strict=True))
        frame["description"] = frame["product_id"].map(lookup).fillna("")
    frame["label"] = (relevance - 1.0).round(6)  # 2.33 - 1 -> 1.33, not 1.3299999999999998
    frame = drop_single_item_queries(frame, source=str(path))
    texts = ("title", "description") if "description" in frame.columns else ("title",)
    return validate_pairs(frame, source=str(path), text_fields=texts, feature_fields=(), name="homedepot")


ADAPTERS: dict[str, Callable[..., JudgedPairs]] = {
    "esci": lambda path, products_path=None: load_esci(path, products_path),
    "wands": lambda path, products_path=None: load_wands(path),
    "homedepot": lambda path, products_path=None: load_homedepot(path),
}


def load_adapter(name: str, *, path: str | Path, products_path: str | Path | None = None) -> JudgedPairs:
    """Dispatch on a public dataset's name; unknown names are refused with the list of known ones."""
    if name not in ADAPTERS:
        raise UserInputError(f"Unknown dataset adapter {name!r}; known adapters: {', '.join(ADAPTERS)}.")
    return ADAPTERS[name](path, products_path)


# Column names that identify a public dataset's file; anything else is a user's own file.
ADAPTER_COLUMNS: dict[str, frozenset[str]] = {
    "homedepot": frozenset({"product_uid", "product_title", "search_term", "relevance"}),
    "esci": frozenset({"query", "product_id", "esci_label", "product_locale"}),
}


def _detect_file(path: Path) -> str:
    encoding = "latin-1" if path.name.lower().startswith("train.csv") else None
    columns = set(read_columns(path, encoding=encoding))
    for name, needed in ADAPTER_COLUMNS.items():
        if needed <= columns:
            return name
    return "file"


def _detect_directory(directory: Path) -> str:
    for base in (directory, directory / "dataset"):
        if (base / "shopping_queries_dataset_examples.parquet").is_file():
            return "esci"
        if all((base / f"{name}.csv").is_file() for name in ("product", "query", "label")):
            return "wands"
        for name in ("train.csv", "train.csv.zip"):
            if (base / name).is_file() and _detect_file(base / name) == "homedepot":
                return "homedepot"
    raise UserInputError(
        f"{directory} is a folder in no format this tool recognises: expected the ESCI "
        "shopping_queries_dataset_examples.parquet, the WANDS product.csv + query.csv + label.csv, or the "
        "Home Depot train.csv (also under dataset/). Point --data (data.path) at a CSV, TSV, Parquet or "
        "JSON-lines file of judged pairs instead, or name the source with --source (data.source)."
    )


def detect_source(path: str | Path) -> str:
    """``esci``, ``wands``, ``homedepot`` or ``file`` for a path, from its file and column names."""
    path = Path(path)
    if not path.exists():
        raise UserInputError(missing_path(path))
    if path.is_dir():
        return _detect_directory(path)
    return _detect_file(path)
