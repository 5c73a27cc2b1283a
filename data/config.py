"""The data section of a study config: where judged pairs come from and how they are split."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from study.errors import UserInputError

SOURCES = ("auto", "synthetic", "file", "esci", "wands", "homedepot")
FORMATS = ("csv", "tsv", "parquet", "jsonl", "json", "zip")
# How repeated judgments of one (query, product) pair become one: their mean, highest or first label, or a
# refusal naming the rows (data/validate.py, merge_repeated_pairs).
DUPLICATE_RULES = ("mean", "max", "first", "error")


@dataclass(frozen=True)
class DataConfig:
    """Which dataset to load and how to split it.

    ``source`` is ``auto`` (the default: the built-in catalogue without ``path``, else detected from the
    path's files and column names), ``synthetic`` (the built-in catalogue), ``file`` (a user
    CSV/TSV/Parquet/JSON-lines file, with ``columns`` mapping canonical names to the file's column names)
    or one of the public adapters ``esci``, ``wands``, ``homedepot``. ``n_folds=0`` means one seeded
    train/val/test split; ``n_folds=k`` keeps a fixed test set and uses fold ``fold`` of a k-fold split of the
    rest. ``duplicates`` says how rows that judge the same (query, product) pair again are merged into one:
    ``mean`` (the default), ``max`` or ``first`` label, or ``error`` to refuse the file naming the rows.
    """

    source: str = "auto"
    path: str | None = None
    products_path: str | None = None
    format: str | None = None
    columns: dict[str, str] = field(default_factory=dict)
    text_fields: tuple[str, ...] = ()
    feature_fields: tuple[str, ...] = ()
    label_map: dict[str, float] = field(default_factory=dict)
    duplicates: str = "mean"
    n_queries: int = 300
    items_per_query: int = 10
    cold_start_fraction: float = 0.2
    seed: int = 0
    val_fraction: float = 0.2
    test_fraction: float = 0.2
    n_folds: int = 0
    fold: int = 0
    encoding: str | None = None

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise UserInputError(f"Unknown data source {self.source!r}; choose one of {', '.join(SOURCES)}.")
        if self.format is not None and self.format not in FORMATS:
            raise UserInputError(f"Unknown data format {self.format!r}; choose one of {', '.join(FORMATS)}.")
        if self.duplicates not in DUPLICATE_RULES:
            raise UserInputError(
                f"data.duplicates must be one of {', '.join(DUPLICATE_RULES)} (how repeated judgments of one "
                f"query and product are merged), got {self.duplicates!r}."
            )
        if self.source not in ("synthetic", "auto") and not self.path:
            raise UserInputError(f"data.source = {self.source!r} needs data.path (a file or directory).")
        if self.source == "synthetic" and self.path:
            raise UserInputError(
                f"data.path = {self.path!r} is set but data.source = 'synthetic' (the built-in catalogue) "
                "would ignore it. Remove data.source (it defaults to \"auto\", which reads the file) or "
                "set it to file, esci, wands or homedepot; or remove data.path to use the built-in catalogue."
            )
        if self.n_queries < 2:
            raise UserInputError(f"data.n_queries must be at least 2, got {self.n_queries}.")
        if self.items_per_query < 3:
            raise UserInputError(f"data.items_per_query must be at least 3, got {self.items_per_query}.")
        if not 0.0 <= self.cold_start_fraction <= 1.0:
            raise UserInputError(
                f"data.cold_start_fraction must be in [0, 1], got {self.cold_start_fraction}."
            )
        for name in ("val_fraction", "test_fraction"):
            value = getattr(self, name)
            if not 0.0 < value < 1.0:
                raise UserInputError(f"data.{name} must be strictly between 0 and 1, got {value!r}.")
        if self.n_folds == 0 and self.val_fraction + self.test_fraction >= 1.0:
            raise UserInputError(
                "data.val_fraction + data.test_fraction must be below 1 to leave training queries, got "
                f"{self.val_fraction} and {self.test_fraction}."
            )
        if self.n_folds == 1 or self.n_folds < 0:
            raise UserInputError(
                f"data.n_folds must be 0 (no cross-validation) or >= 2, got {self.n_folds}."
            )
        if self.n_folds and not 0 <= self.fold < self.n_folds:
            raise UserInputError(f"data.fold must be in [0, {self.n_folds - 1}], got {self.fold}.")
        # Frozen dataclass: normalise sequences to tuples through object.__setattr__.
        for name in ("text_fields", "feature_fields"):
            value = getattr(self, name)
            if isinstance(value, str):
                value = (value,)
            object.__setattr__(self, name, tuple(str(v) for v in value))
        object.__setattr__(self, "columns", {str(k): str(v) for k, v in dict(self.columns).items()})
        label_map = {}
        for key, value in dict(self.label_map).items():
            try:
                label_map[str(key)] = float(value)
            except (TypeError, ValueError):
                raise UserInputError(
                    f"data.label_map[{key!r}] must be a number (a gain level), got {value!r}."
                ) from None
        object.__setattr__(self, "label_map", label_map)

    @property
    def builtin(self) -> bool:
        """True for the built-in synthetic catalogue (``synthetic``, or ``auto`` without a path)."""
        return is_builtin_catalogue(self.source, self.path)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DataConfig:
        """Build from a parsed TOML/JSON table; unknown keys are refused by name."""
        valid = [f.name for f in dataclasses.fields(cls)]
        for key in d:
            if key not in valid:
                raise UserInputError(
                    f"Unknown key {key!r} in the [data] config section; valid keys are {', '.join(valid)}."
                )
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """A JSON/TOML-safe dict that ``from_dict`` turns back into an equal config."""
        out = dataclasses.asdict(self)
        out["text_fields"] = list(self.text_fields)
        out["feature_fields"] = list(self.feature_fields)
        return out


def is_builtin_catalogue(source: str | None, path: str | None) -> bool:
    """Whether a [data] section with this source and path means the built-in synthetic catalogue."""
    return source == "synthetic" or (source in (None, "auto") and not path)
