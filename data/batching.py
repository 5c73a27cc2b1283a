"""Device-resident split tensors and query-grouped batches with dynamic padding and length bucketing.

A split is moved to the device once; a batch is a gather of whole queries (listwise losses need every
judged item of a query together), cut to the longest real pair in it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from data.schema import LABEL, JudgedPairs, product_text
from data.tokenize import TokenizedPairs, tokenize_pairs


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

    @property
    def n_pairs(self) -> int:
        return len(self.labels_np)

    @property
    def n_queries(self) -> int:
        return len(self.query_ids)


@dataclass
class Batch:
    input_ids: torch.Tensor | None  # (B, L)
    attention_mask: torch.Tensor | None  # (B, L)
    token_type_ids: torch.Tensor | None  # (B, L)
    features: torch.Tensor  # (B, F)
    labels: torch.Tensor  # (B,)
    list_index: torch.Tensor  # (Q, N) row of each list slot within the batch, -1 = padding
    real_tokens: int

    def model_inputs(self) -> dict[str, torch.Tensor | None]:
        return {
            "input_ids": self.input_ids,
            "attention_mask": self.attention_mask,
            "token_type_ids": self.token_type_ids,
            "features": self.features,
        }


def build_split_tensors(
    pairs: JudgedPairs,
    features: np.ndarray,
    *,
    device: torch.device,
    model_dir: "str | None",
    max_length: int,
    tokens: TokenizedPairs | None = None,
) -> SplitTensors:
    """Sort rows by query, tokenise (cached) when ``model_dir`` is given, and move everything to the device."""
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
    if model_dir is not None:
        if tokens is None:
            queries = frame["query"].astype(str).tolist()
            texts = product_text(frame, pairs.text_fields)
            tokens = tokenize_pairs(queries, texts, model_dir=model_dir, max_length=max_length)
        else:
            tokens = TokenizedPairs(tokens.input_ids[order], tokens.token_type_ids[order], tokens.lengths[order])
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
    )


def make_batch(split: SplitTensors, query_positions: np.ndarray) -> Batch:
    """Gather whole queries; pad tokens to the longest real pair of the batch."""
    starts = split.query_offsets[query_positions]
    ends = split.query_offsets[query_positions + 1]
    sizes = ends - starts
    rows = np.concatenate([np.arange(s, e) for s, e in zip(starts, ends)])
    n_max = int(sizes.max())
    list_index = np.full((len(sizes), n_max), -1, dtype=np.int64)
    cursor = 0
    for q, size in enumerate(sizes):
        list_index[q, :size] = np.arange(cursor, cursor + size)
        cursor += size
    device = split.labels.device
    rows_t = torch.from_numpy(rows).to(device, non_blocking=True)
    input_ids = attention_mask = token_type_ids = None
    real_tokens = 0
    if split.input_ids is not None:
        lengths = split.lengths[rows]
        width = int(lengths.max())
        real_tokens = int(lengths.sum())
        input_ids = split.input_ids[rows_t, :width]
        token_type_ids = split.token_type_ids[rows_t, :width]
        attention_mask = (
            torch.arange(width, device=device)[None, :] < torch.from_numpy(lengths).to(device)[:, None]
        ).long()
    return Batch(
        input_ids=input_ids,
        attention_mask=attention_mask,
        token_type_ids=token_type_ids,
        features=split.features[rows_t],
        labels=split.labels[rows_t],
        list_index=torch.from_numpy(list_index).to(device, non_blocking=True),
        real_tokens=real_tokens,
    )


def training_batches(
    split: SplitTensors, *, batch_size: int, rng: np.random.Generator, bucket: bool = True
) -> list[np.ndarray]:
    """Query positions per batch, about ``batch_size`` pairs each, in a random order.

    With ``bucket``, queries are shuffled, cut into chunks of 50 batches and sorted by length within a
    chunk, so that a batch holds pairs of similar length (little padding) while epochs stay random.
    """
    n = split.n_queries
    perm = rng.permutation(n)
    sizes = np.diff(split.query_offsets)
    if bucket and split.input_ids is not None:
        q_len = np.maximum.reduceat(split.lengths, split.query_offsets[:-1]) if split.n_pairs else np.zeros(n)
        mean_size = max(float(sizes.mean()), 1.0)
        chunk = max(int(50 * batch_size / mean_size), 1)
        parts = []
        for i in range(0, n, chunk):
            block = perm[i : i + chunk]
            parts.append(block[np.argsort(q_len[block], kind="stable")])
        perm = np.concatenate(parts) if parts else perm
    batches: list[np.ndarray] = []
    current: list[int] = []
    count = 0
    for q in perm:
        current.append(int(q))
        count += int(sizes[q])
        if count >= batch_size:
            batches.append(np.array(current))
            current, count = [], 0
    if current:
        batches.append(np.array(current))
    order = rng.permutation(len(batches))
    return [batches[i] for i in order]


def inference_batches(split: SplitTensors, *, batch_size: int) -> list[np.ndarray]:
    """Row indices sorted by length, in chunks: little padding, no grouping needed for scoring."""
    order = np.argsort(split.lengths, kind="stable") if split.input_ids is not None else np.arange(split.n_pairs)
    return [order[i : i + batch_size] for i in range(0, split.n_pairs, batch_size)]


def rows_batch(split: SplitTensors, rows: np.ndarray) -> dict[str, torch.Tensor | None]:
    device = split.labels.device
    rows_t = torch.from_numpy(rows).to(device, non_blocking=True)
    inputs: dict[str, torch.Tensor | None] = {"features": split.features[rows_t]}
    if split.input_ids is not None:
        lengths = split.lengths[rows]
        width = int(lengths.max())
        inputs["input_ids"] = split.input_ids[rows_t, :width]
        inputs["token_type_ids"] = split.token_type_ids[rows_t, :width]
        inputs["attention_mask"] = (
            torch.arange(width, device=device)[None, :] < torch.from_numpy(lengths).to(device)[:, None]
        ).long()
    return inputs
