"""The pretrained encoder's zero-shot relevance: cosine between mean-pooled query and product embeddings.

all-MiniLM-L6-v2 is a bi-encoder, so this cosine is already a good ranking before any training. It is the
baseline every tuned model is compared with, and the *prior* that the ``prior`` and ``frozen`` architectures
start from (their learned part is a residual that starts at zero). Texts are embedded once each (unique,
sorted by length for little padding) and the cosines cached in memory and on disk (``zero_shot/`` in the
per-user cache, ``study.data.tokenize.default_cache_dir``), keyed by the encoder's weights and tokenizer and
the exact texts.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from study.data.batching import QUERY_MAX_LENGTH  # the two-tower's query side too: both start at this cosine
from study.data.tokenize import default_cache_dir, load_tokenizer, write_cache_file
from study.models.device import autocast, resolve_precision
from study.models.encoder import load_encoder, pool

logger = logging.getLogger(__name__)

TEXT_MAX_LENGTH = 128
_MEMORY: dict[str, np.ndarray] = {}


def _encoder_identity(model_dir: Path) -> str:
    """Name and size of every weight and tokenizer file: cheap, and changes whenever the model does."""
    h = hashlib.sha256()
    for f in sorted(model_dir.iterdir()):
        if f.is_file() and f.suffix in (".json", ".txt", ".safetensors", ".bin", ".model"):
            h.update(f"{f.name}:{f.stat().st_size}".encode())
            if f.suffix in (".json", ".txt"):
                h.update(f.read_bytes())
    return h.hexdigest()


@torch.inference_mode()
def embed_texts(texts: list[str], *, model_dir: Path, device: torch.device, max_length: int,
                batch_size: int = 128) -> torch.Tensor:
    """(N, H) L2-normalised mean-pooled embeddings of the full pretrained encoder, in the order given."""
    tokenizer = load_tokenizer(model_dir)
    model = load_encoder(model_dir).to(device).eval()
    dtype = resolve_precision("auto", device)
    lengths = np.array([len(t) for t in texts])
    order = np.argsort(lengths, kind="stable")  # similar lengths together: little padding
    out = torch.empty((len(texts), int(model.config.hidden_size)), dtype=torch.float32, device=device)
    for i in range(0, len(texts), batch_size):
        rows = order[i : i + batch_size]
        enc = tokenizer([texts[j] for j in rows], truncation=True, max_length=max_length, padding=True,
                        return_tensors="pt").to(device)
        with autocast(device, dtype):
            hidden = model(**enc).last_hidden_state  # (B, L, H)
        out[torch.from_numpy(rows).to(device)] = F.normalize(
            pool(hidden.float(), enc["attention_mask"], "mean"), dim=-1)
    return out


def zero_shot_cosine(queries: list[str], texts: list[str], *, model_dir: Path, device: torch.device,
                     cache_dir: Path | None = None, cache: bool = True) -> np.ndarray:
    """(P,) float32 cosine of each (query, product text) pair under the pretrained encoder; ``cache=False``
    (one-off candidate lists) neither reads nor writes the caches."""
    if len(queries) != len(texts):
        raise ValueError(f"queries and texts must pair up, got {len(queries)} and {len(texts)}")
    h = hashlib.sha256(_encoder_identity(model_dir).encode())
    for q, t in zip(queries, texts, strict=True):
        h.update(q.encode() + b"\x1f" + t.encode() + b"\x1e")
    key = h.hexdigest()[:24]
    if cache and key in _MEMORY:
        return _MEMORY[key]
    path = (default_cache_dir() if cache_dir is None else cache_dir) / "zero_shot" / f"{key}.npy"
    if cache and path.is_file():
        result = np.load(path)
    else:
        unique_q, q_index = np.unique(np.asarray(queries, dtype=object).astype(str), return_inverse=True)
        unique_t, t_index = np.unique(np.asarray(texts, dtype=object).astype(str), return_inverse=True)
        logger.info("zero-shot encoder: embedding %d queries and %d product texts", len(unique_q),
                    len(unique_t))
        q_emb = embed_texts(unique_q.tolist(), model_dir=model_dir, device=device,
                            max_length=QUERY_MAX_LENGTH)
        t_emb = embed_texts(unique_t.tolist(), model_dir=model_dir, device=device, max_length=TEXT_MAX_LENGTH)
        qi = torch.from_numpy(q_index.astype(np.int64)).to(device)
        ti = torch.from_numpy(t_index.astype(np.int64)).to(device)
        result = (q_emb[qi] * t_emb[ti]).sum(-1).cpu().numpy().astype(np.float32)
        if not cache:
            return result
        write_cache_file(path, lambda tmp: np.save(tmp, result))
    _MEMORY[key] = result
    return result
