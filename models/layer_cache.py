"""The frozen lower encoder layers, run once per dataset: their output is cached so trials train only the top.

When ``model.trainable_layers = k`` keeps all but the top k layers frozen, everything below them (the
embeddings and the first ``n_frozen`` layers) computes the same function in every trial, epoch and worker. It
runs once here, under inference mode, and the result is stored *packed*: the real (unpadded) tokens of every
pair one after another, ``(T, H)`` in float16, with row offsets ``(P + 1,)``. A batch gathers its rows back
into a padded ``(B, L, H)`` block (``study.data.batching.gather_hidden``), and ``RankingNet`` runs only its
top layers on it.

Key: the token ids of the split (themselves keyed by tokenizer, max length and texts), the encoder's files,
and ``n_frozen``. Cached in memory for the trials of one worker and on disk (``<cache>/hidden``) for every
later process and for the other workers, written atomically; the disk folder is kept under
``STUDY_HIDDEN_CACHE_GB`` (default 20) by deleting the least recently used files. Home Depot's 72,668 pairs
at 64 tokens take about 1.4 GB.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import numpy as np
import torch
from study.data.tokenize import default_cache_dir, write_cache_file
from study.models.encoder import load_encoder
from study.models.zero_shot import _encoder_identity

logger = logging.getLogger(__name__)

_MEMORY: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
ROWS_PER_BATCH = 128  # forward only, rows sorted by length (as models.train.predict on the CPU)


def frozen_layers(n_layers_total: int, trainable_layers: int) -> int:
    """How many bottom layers stay frozen (0: the whole encoder trains)."""
    return n_layers_total - trainable_layers if 0 < trainable_layers < n_layers_total else 0


def _key(input_ids: np.ndarray, lengths: np.ndarray, token_type_ids: np.ndarray, model_dir: Path,
         n_frozen: int) -> str:
    h = hashlib.sha256(_encoder_identity(model_dir).encode())
    h.update(f"frozen={n_frozen};width={input_ids.shape[1]}".encode())
    for a in (input_ids, token_type_ids, lengths):
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:24]


def _limit_disk(folder: Path, keep: Path) -> None:
    """Delete the least recently used cache files beyond ``STUDY_HIDDEN_CACHE_GB``."""
    budget = float(os.environ.get("STUDY_HIDDEN_CACHE_GB", "20")) * 1e9
    files = sorted((f for f in folder.glob("*.npz") if f != keep), key=lambda f: f.stat().st_atime,
                   reverse=True)
    used = keep.stat().st_size if keep.is_file() else 0
    for f in files:
        used += f.stat().st_size
        if used > budget:
            f.unlink(missing_ok=True)
            logger.info("hidden-state cache over %.0f GB: removed %s", budget / 1e9, f.name)


@torch.inference_mode()
def _compute(input_ids: np.ndarray, token_type_ids: np.ndarray, lengths: np.ndarray, *, model_dir: Path,
             n_frozen: int, device: torch.device) -> tuple[np.ndarray, np.ndarray]:
    encoder = load_encoder(model_dir, n_layers=n_frozen).to(device).eval()  # embeddings + the frozen layers
    offsets = np.r_[0, np.cumsum(lengths, dtype=np.int64)]
    packed = np.empty((int(offsets[-1]), int(encoder.config.hidden_size)), dtype=np.float16)  # (T, H)
    order = np.argsort(lengths, kind="stable")
    for i in range(0, len(order), ROWS_PER_BATCH):
        rows = order[i : i + ROWS_PER_BATCH]  # similar lengths: little padding
        width = max(int(lengths[rows].max()), 1)
        ids = torch.from_numpy(input_ids[rows, :width].astype(np.int64)).to(device)
        types = torch.from_numpy(token_type_ids[rows, :width].astype(np.int64)).to(device)
        mask = (torch.arange(width, device=device)[None, :]
                < torch.from_numpy(lengths[rows].astype(np.int64)).to(device)[:, None]).long()
        # (B, L, H)
        hidden = encoder(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
        hidden = hidden.float().cpu().numpy().astype(np.float16)
        for j, r in enumerate(rows):
            packed[offsets[r] : offsets[r + 1]] = hidden[j, : lengths[r]]
    return packed, offsets


def lower_hidden_states(input_ids: np.ndarray, token_type_ids: np.ndarray, lengths: np.ndarray, *,
                        model_dir: Path, n_frozen: int, device: torch.device, cache_dir: Path | None = None,
                        cache: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """``(T, H)`` float16 packed output of the embeddings and the first ``n_frozen`` layers for every pair,
    and the ``(P + 1,)`` int64 row offsets, both on ``device``. Rows are in the order given."""
    lengths = np.asarray(lengths, dtype=np.int64)
    key = _key(input_ids, lengths, token_type_ids, model_dir, n_frozen)
    if cache and key in _MEMORY:
        return _MEMORY[key]
    folder = (default_cache_dir() if cache_dir is None else cache_dir) / "hidden"
    path = folder / f"{key}.npz"
    loaded = None
    if cache and path.is_file():
        try:
            with np.load(path) as z:
                loaded = z["packed"], z["offsets"]
            os.utime(path)  # least recently used goes first
        except (OSError, ValueError, KeyError) as exc:  # a damaged file is recomputed
            logger.warning("hidden-state cache %s unreadable (%s): recomputing", path, exc)
    if loaded is None:
        loaded = _compute(input_ids, token_type_ids, lengths, model_dir=model_dir, n_frozen=n_frozen,
                          device=device)
        packed, offsets = loaded
        # a full or read-only cache costs speed, not the trial (one warning, from write_cache_file)
        if cache and write_cache_file(path, lambda tmp: np.savez(tmp, packed=packed, offsets=offsets)):
            _limit_disk(folder, path)
    packed, offsets = loaded
    result = (torch.from_numpy(packed).to(device), torch.from_numpy(offsets).to(device))
    if cache:
        _MEMORY[key] = result
    logger.info("frozen layers 1-%d: %d pairs, %d tokens, %.0f MB", n_frozen, len(lengths), len(packed),
                packed.nbytes / 1e6)
    return result

