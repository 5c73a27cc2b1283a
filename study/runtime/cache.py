"""The per-user cache (``study.data.tokenize.default_cache_dir``: ``$STUDY_CACHE_DIR``, else
``$XDG_CACHE_HOME/study``, else ``~/.cache/study``), shared by every working folder and process: one folder
per kind (``zero_shot`` cosines, ``tokens``, ``hidden`` states of frozen layers), each file keyed by a hash of
the encoder, the length and the exact texts, so a second folder on the same data finds them ready.

Writers write a private temporary file and rename it into place (atomic on one file system), so two
processes filling the cache at once each leave a whole file, never a torn one. ``trim_cache`` keeps the
kinds other than ``hidden`` (bounded on its own by ``STUDY_HIDDEN_CACHE_GB``) under ``STUDY_CACHE_GB``
(default 10) by deleting the least recently used files, never one written in the last ``min_age`` seconds
(another process may be about to read it)."""

from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from study.data.tokenize import default_cache_dir

logger = logging.getLogger(__name__)

SELF_BOUNDED = ("hidden",)  # models.layer_cache trims it to STUDY_HIDDEN_CACHE_GB


@dataclass(frozen=True)
class KindUsage:
    kind: str
    files: int
    bytes: int


def cache_budget_bytes() -> float:
    return float(os.environ.get("STUDY_CACHE_GB", "10")) * 1e9


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.is_dir() else []


def cache_usage(root: Path | None = None) -> list[KindUsage]:
    """Files and bytes per kind (top-level folder) of the cache, largest first."""
    root = default_cache_dir() if root is None else root
    out = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        sizes = []
        for p in _files(folder):
            try:
                sizes.append(p.stat().st_size)
            except FileNotFoundError:  # removed by another process meanwhile
                continue
        out.append(KindUsage(folder.name, len(sizes), sum(sizes)))
    return sorted(out, key=lambda u: -u.bytes)


def clear_cache(root: Path | None = None, kind: str | None = None) -> int:
    """Delete the whole cache, or one kind of it; returns the bytes freed."""
    root = default_cache_dir() if root is None else root
    folders = [root / kind] if kind else [p for p in root.iterdir() if p.is_dir()] if root.is_dir() else []
    freed = sum(u.bytes for u in cache_usage(root) if kind is None or u.kind == kind)
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)
    return freed


def trim_cache(root: Path | None = None, *, budget: float | None = None, min_age: float = 600.0) -> int:
    """Delete the least recently used files beyond ``budget`` bytes (``STUDY_CACHE_GB``), ``hidden`` aside;
    returns the bytes freed."""
    root = default_cache_dir() if root is None else root
    budget = cache_budget_bytes() if budget is None else budget
    entries = []
    for folder in (p for p in root.iterdir() if p.is_dir() and p.name not in SELF_BOUNDED) if root.is_dir() \
            else []:
        for p in _files(folder):
            try:
                st = p.stat()
            except FileNotFoundError:
                continue
            entries.append((max(st.st_atime, st.st_mtime), st.st_mtime, st.st_size, p))
    total = sum(e[2] for e in entries)
    freed = 0
    now = time.time()
    for _, mtime, size, path in sorted(entries):
        if total - freed <= budget:
            break
        if now - mtime < min_age:
            continue
        try:
            path.unlink()
            freed += size
        except FileNotFoundError:
            continue
    if freed:
        logger.info("cache %s: %.1f MB of the least recently used files deleted (limit STUDY_CACHE_GB = "
                    "%.1f)", root, freed / 1e6, budget / 1e9)
    return freed
