"""One entry point from a ``DataConfig`` to validated judged pairs, whatever the source."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from study.data.adapters import ADAPTERS, detect_source, load_adapter
from study.data.config import DataConfig
from study.data.loaders import load_file
from study.data.schema import JudgedPairs
from study.data.splits import check_splits
from study.data.summary import check_file_report
from study.data.synthetic import generate_catalogue
from study.data.validate import validate_pairs

from study.errors import UserInputError

logger = logging.getLogger(__name__)


def resolve_source(cfg: DataConfig) -> str:
    """The concrete source: ``auto`` is ``synthetic`` without a path, else detected from the path."""
    if cfg.builtin:
        return "synthetic"
    if cfg.source != "auto":
        return cfg.source
    if cfg.columns and Path(cfg.path).is_file():  # a column mapping means the user's own format
        return "file"
    source = detect_source(cfg.path)
    logger.info("data.source auto: %s reads as %s", cfg.path, source)
    return source


def load_dataset(cfg: DataConfig, *, log_warnings: bool = True) -> JudgedPairs:
    """The judged pairs a study on ``cfg`` trains on, checked for everything that would make the study
    meaningless (a ``UserInputError``) or part of it doubtful (``warnings``, logged unless ``log_warnings``
    is false). ``study run`` and ``study data check`` both come through here, so they never disagree."""
    pairs = _load(cfg)
    source = str(cfg.path) if cfg.path and not cfg.builtin else pairs.name
    pairs = dataclasses.replace(pairs,
                                warnings=pairs.warnings + tuple(check_splits(pairs, cfg, source=source)))
    if log_warnings:
        for warning in pairs.warnings:
            logger.warning("warning: %s: %s", source, warning)
    return pairs


def _load(cfg: DataConfig) -> JudgedPairs:
    """``synthetic`` -> the generator; ``file`` -> read, map columns and labels, validate; ``esci`` /
    ``wands`` / ``homedepot`` -> the adapter (which validates); ``auto`` -> one of these."""
    source = resolve_source(cfg)
    if source == "synthetic":
        return generate_catalogue(n_queries=cfg.n_queries, items_per_query=cfg.items_per_query,
                                  cold_start_fraction=cfg.cold_start_fraction, seed=cfg.seed)
    if cfg.path is None:
        raise UserInputError(f"data.source = {cfg.source!r} needs data.path (a file or directory).")
    if source == "file":
        notes: list[str] = []
        frame = load_file(cfg.path, format=cfg.format, columns=cfg.columns, label_map=cfg.label_map,
                          encoding=cfg.encoding, notes=notes)
        return validate_pairs(frame, source=str(cfg.path), text_fields=cfg.text_fields,
                              feature_fields=cfg.feature_fields, name=Path(cfg.path).stem.split(".")[0],
                              notes=notes, duplicates=cfg.duplicates)
    if source in ADAPTERS:
        return load_adapter(source, path=cfg.path, products_path=cfg.products_path)
    raise UserInputError(f"Unknown data source {source!r}; choose synthetic, file or one of "
                         f"{', '.join(ADAPTERS)}.")


def check_file(path: str | Path, *, source: str = "auto", **options: object) -> str:
    """Validate a file (or an adapter's folder) and return the summary ``study data check`` prints."""
    cfg = DataConfig.from_dict({"source": source, "path": str(path), **options})
    return check_file_report(load_dataset(cfg, log_warnings=False))
