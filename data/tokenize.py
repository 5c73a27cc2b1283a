"""Tokenisation of (query, product text) pairs, done once and cached.

Key: the tokenizer's files, the maximum length and the exact texts. Cached in memory for the trials of
one worker and on disk (``tokens/`` in the per-user cache, ``default_cache_dir``) for every later process.
"""

from __future__ import annotations

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
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(tmp, input_ids=result.input_ids, token_type_ids=result.token_type_ids,
                 lengths=result.lengths)
        os.replace(tmp, path)
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
