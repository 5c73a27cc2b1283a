"""One entry point from a ``DataConfig`` to validated judged pairs, whatever the source."""

from __future__ import annotations

import logging
from pathlib import Path

from data.adapters import ADAPTERS, load_adapter
from data.config import DataConfig
from data.errors import UserInputError
from data.loaders import load_file
from data.schema import JudgedPairs
from data.synthetic import generate_catalogue
from data.validate import check_file_report, validate_pairs

logger = logging.getLogger(__name__)


def load_dataset(cfg: DataConfig) -> JudgedPairs:
    """``synthetic`` -> the generator; ``file`` -> read, map columns and labels, validate; ``esci`` /
    ``wands`` / ``homedepot`` -> the adapter (which validates)."""
    if cfg.source == "synthetic":
        return generate_catalogue(n_queries=cfg.n_queries, items_per_query=cfg.items_per_query,
                                  cold_start_fraction=cfg.cold_start_fraction, seed=cfg.seed)
    if cfg.path is None:
        raise UserInputError(f"data.source = {cfg.source!r} needs data.path (a file or directory).")
    if cfg.source == "file":
        frame = load_file(cfg.path, format=cfg.format, columns=cfg.columns, label_map=cfg.label_map,
                          encoding=cfg.encoding)
        return validate_pairs(frame, source=str(cfg.path), text_fields=cfg.text_fields,
                              feature_fields=cfg.feature_fields, name=Path(cfg.path).stem.split(".")[0])
    if cfg.source in ADAPTERS:
        return load_adapter(cfg.source, path=cfg.path, products_path=cfg.products_path)
    raise UserInputError(f"Unknown data source {cfg.source!r}; choose synthetic, file or one of "
                         f"{', '.join(ADAPTERS)}.")


def check_file(path: str | Path, *, source: str = "file", **options: object) -> str:
    """Validate a file (or an adapter's folder) and return the summary ``study data check`` prints."""
    cfg = DataConfig.from_dict({"source": source, "path": str(path), **options})
    return check_file_report(load_dataset(cfg))
