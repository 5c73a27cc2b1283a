"""Tokenisation of (query, product text) pairs, done once and cached.

Key: the tokenizer's files, the maximum length and the exact texts. Cached in memory for the trials of
one worker and on disk (``tokens/`` in the per-user cache, ``default_cache_dir``) for every later process.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

_MEMORY: dict[str, TokenizedPairs] = {}
_TOKENIZERS: dict[str, object] = {}


@dataclass(frozen=True)
class TokenizedPairs:
    input_ids: np.ndarray  # (P, L) int32, right-padded with the pad id
    token_type_ids: np.ndarray  # (P, L) int8
    lengths: np.ndarray  # (P,) int32, real tokens per pair

    @property
    def real_tokens(self) -> int:
        return int(self.lengths.sum())


def default_cache_dir() -> Path:
    """The per-user cache, shared by every working folder: ``$STUDY_CACHE_DIR`` if set, else
    ``$XDG_CACHE_HOME/study``, else ``~/.cache/study`` (``study cache`` shows and clears it)."""
    if os.environ.get("STUDY_CACHE_DIR"):
        return Path(os.environ["STUDY_CACHE_DIR"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "study"


_WARNED_CACHES: set[str] = set()  # one warning per unwritable cache folder and process


def write_cache_file(path: Path, write: Callable[[Path], None], *, suffix: str = "") -> bool:
    """Write a cache file atomically (``write(tmp)``, then rename): True when it is in place. A cache that
    cannot be written (a read-only disk, a full one, ``$STUDY_CACHE_DIR`` naming a file) costs time, never
    the run: nothing is cached and one warning per process names the folder and why."""
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp{suffix or path.suffix}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(tmp)
        os.replace(tmp, path)
        return True
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        root = str(default_cache_dir())
        if root not in _WARNED_CACHES:
            _WARNED_CACHES.add(root)
            logger.warning("The cache %s cannot be written (%s), so nothing is cached this run: it goes on, "
                           "computing again what a cache would keep. Point $STUDY_CACHE_DIR at a writable "
                           "folder to keep the cache.", root, _why_unwritable(Path(root), exc))
        return False


def _why_unwritable(root: Path, exc: OSError) -> str:
    if root.exists() and not root.is_dir():
        return "it is a file, not a folder"
    if exc.errno == errno.EROFS:
        return f"it is read-only: {exc.strerror}"
    return f"{type(exc).__name__}: {exc.strerror or exc}"


def load_tokenizer(model_dir: str | Path) -> object:
    from transformers import AutoTokenizer  # transformers: ~1 s, not for models that read no text

    key = str(Path(model_dir).resolve())
    if key not in _TOKENIZERS:
        _TOKENIZERS[key] = AutoTokenizer.from_pretrained(key, local_files_only=True)
    return _TOKENIZERS[key]


def _tokenizer_identity(model_dir: Path) -> str:
    h = hashlib.sha256()
    for name in ("tokenizer.json", "vocab.txt", "tokenizer_config.json"):
        f = model_dir / name
        if f.is_file():
            h.update(name.encode())
            h.update(f.read_bytes())
    return h.hexdigest()


def cache_key(model_dir: Path, max_length: int, queries: list[str], texts: list[str]) -> str:
    h = hashlib.sha256()
    h.update(_tokenizer_identity(model_dir).encode())
    h.update(str(max_length).encode())
    for q, t in zip(queries, texts):
        h.update(q.encode())
        h.update(b"\x1f")
        h.update(t.encode())
        h.update(b"\x1e")
    return h.hexdigest()[:24]


def _cached(key: str, compute: Callable[[], TokenizedPairs], *, cache_dir: Path | None,
            cache: bool) -> TokenizedPairs:
    """``compute()`` once per key: memory, then ``<cache>/tokens/<key>.npz`` (written atomically).
    ``cache=False`` (one-off candidate lists) neither reads nor writes either."""
    if not cache:
        return compute()
    if key in _MEMORY:
        return _MEMORY[key]
    path = (default_cache_dir() if cache_dir is None else cache_dir) / "tokens" / f"{key}.npz"
    if path.is_file():
        with np.load(path) as z:
            result = TokenizedPairs(z["input_ids"], z["token_type_ids"], z["lengths"])
    else:
        result = compute()
        if write_cache_file(path, lambda tmp: np.savez(tmp, input_ids=result.input_ids,
                                                       token_type_ids=result.token_type_ids,
                                                       lengths=result.lengths)):
            logger.info("tokenised %d texts, cached in %s", len(result.lengths), path)
    _MEMORY[key] = result
    return result


def _cut(enc: dict, token_type_ids: np.ndarray) -> TokenizedPairs:
    """Tokenizer output padded to ``max_length``, cut to the longest real sequence."""
    lengths = enc["attention_mask"].sum(1).astype(np.int32)
    width = int(lengths.max()) if len(lengths) else 1
    return TokenizedPairs(enc["input_ids"][:, :width].astype(np.int32),
                          token_type_ids[:, :width].astype(np.int8), lengths)


def tokenize_pairs(
    queries: list[str],
    texts: list[str],
    *,
    model_dir: str | Path,
    max_length: int,
    cache_dir: Path | None = None,
    cache: bool = True,
) -> TokenizedPairs:
    """``[CLS] query [SEP] product text [SEP]`` for every pair, truncated to ``max_length``."""
    model_dir = Path(model_dir)

    def compute() -> TokenizedPairs:
        enc = load_tokenizer(model_dir)(queries, texts, truncation="longest_first", max_length=max_length,
                                        padding="max_length", return_tensors="np", return_token_type_ids=True,
                                        return_attention_mask=True)
        return _cut(enc, enc["token_type_ids"])

    return _cached(cache_key(model_dir, max_length, queries, texts), compute, cache_dir=cache_dir,
                   cache=cache)


def tokenize_texts(texts: list[str], *, model_dir: str | Path, max_length: int,
                   cache_dir: Path | None = None, cache: bool = True) -> TokenizedPairs:
    """``[CLS] text [SEP]`` for every text alone (the two-tower model's query and product sides)."""
    model_dir = Path(model_dir)

    def compute() -> TokenizedPairs:
        enc = load_tokenizer(model_dir)(texts, truncation=True, max_length=max_length, padding="max_length",
                                        return_tensors="np", return_attention_mask=True)
        return _cut(enc, np.zeros_like(enc["input_ids"]))

    key = "single-" + cache_key(model_dir, max_length, [""] * len(texts), texts)
    return _cached(key, compute, cache_dir=cache_dir, cache=cache)
