"""A split on the device: its rows sorted by query, tokenised (cached) and moved to the device once, with the
host-side copies that batching decides on (query offsets, lengths, labels). Batches are cut from it by
``data.batching``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from study.data.schema import LABEL, JudgedPairs, product_text
from study.data.tokenize import tokenize_pairs, tokenize_texts

QUERY_MAX_LENGTH = 32  # two-tower query side


@dataclass
class SplitTensors:
    """One split, rows grouped by query, on the device."""

    query_ids: np.ndarray  # (Q,) query id per list
    query_offsets: np.ndarray  # (Q + 1,) row range of each query
    lengths: np.ndarray  # (P,) real tokens per pair (host copy for padding decisions)
    labels_np: np.ndarray  # (P,)
    row_query: np.ndarray  # (P,) query id per row
    input_ids: torch.Tensor | None  # (P, L) long
    token_type_ids: torch.Tensor | None  # (P, L) long
    features: torch.Tensor  # (P, F) float
    labels: torch.Tensor  # (P,) float
    frame: object  # the split's frame in the same row order (for reports and ranking output)
    query_input_ids: torch.Tensor | None = None  # (P, Lq) query tokens alone (two-tower); input_ids = product
    query_lengths: np.ndarray | None = None  # (P,)
    # the frozen lower encoder layers' output (models.layer_cache): real tokens of every row packed (T, H),
    # float16, and each row's start (P + 1,); batches then carry ``hidden_states`` for the top layers
    hidden: torch.Tensor | None = None
    hidden_offsets: torch.Tensor | None = None

    @property
    def n_pairs(self) -> int:
        return len(self.labels_np)

    @property
    def n_queries(self) -> int:
        return len(self.query_ids)


def build_split_tensors(
    pairs: JudgedPairs,
    features: np.ndarray,
    *,
    device: torch.device,
    model_dir: str | None,
    max_length: int,
    separate_query: bool = False,
    cache: bool = True,
) -> SplitTensors:
    """Sort rows by query, tokenise (cached) when ``model_dir`` is given, and move everything to the device.

    ``separate_query`` (two-tower): ``input_ids`` hold the product text alone and ``query_input_ids`` the
    query. ``cache=False`` (one-off candidate lists) neither reads nor writes the token caches.
    """
    frame = pairs.frame
    order = np.argsort(frame["query_id"].to_numpy(dtype=str), kind="stable")
    frame = frame.iloc[order].reset_index(drop=True)
    features = np.asarray(features, dtype=np.float32)[order]
    row_query = frame["query_id"].to_numpy(dtype=str)
    starts = np.flatnonzero(np.r_[True, row_query[1:] != row_query[:-1]])
    offsets = np.r_[starts, len(frame)].astype(np.int64)
    labels = frame[LABEL].to_numpy(dtype=np.float32)
    input_ids = token_type_ids = None
    lengths = np.zeros(len(frame), dtype=np.int32)
    query_input_ids = query_lengths = None
    if model_dir is not None:
        if separate_query:
            q_tokens = tokenize_texts(frame["query"].astype(str).tolist(), model_dir=model_dir,
                                      max_length=min(QUERY_MAX_LENGTH, max_length), cache=cache)
            query_input_ids = torch.from_numpy(q_tokens.input_ids.astype(np.int64)).to(device)
            query_lengths = q_tokens.lengths
            tokens = tokenize_texts(product_text(frame, pairs.text_fields), model_dir=model_dir,
                                    max_length=max_length, cache=cache)
        else:
            tokens = tokenize_pairs(frame["query"].astype(str).tolist(),
                                    product_text(frame, pairs.text_fields), model_dir=model_dir,
                                    max_length=max_length, cache=cache)
        input_ids = torch.from_numpy(tokens.input_ids.astype(np.int64)).to(device)
        token_type_ids = torch.from_numpy(tokens.token_type_ids.astype(np.int64)).to(device)
        lengths = tokens.lengths
    return SplitTensors(
        query_ids=row_query[starts],
        query_offsets=offsets,
        lengths=lengths,
        labels_np=labels,
        row_query=row_query,
        input_ids=input_ids,
        token_type_ids=token_type_ids,
        features=torch.from_numpy(features).to(device),
        labels=torch.from_numpy(labels).to(device),
        frame=frame,
        query_input_ids=query_input_ids,
        query_lengths=query_lengths,
    )
