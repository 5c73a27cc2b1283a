"""Query-grouped batches with dynamic padding and length bucketing, cut from a device-resident split.

A split is moved to the device once (``data.split_tensors``, whose names are re-exported here); a batch is a
gather of whole queries (listwise losses need every judged item of a query together), cut to the longest real
pair in it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from study.data.split_tensors import QUERY_MAX_LENGTH, SplitTensors, build_split_tensors

__all__ = ["QUERY_MAX_LENGTH", "Batch", "EpochPlan", "SplitTensors", "build_split_tensors", "gather_hidden",
           "inference_batches", "make_batch", "plan_epoch", "rows_batch", "training_batches"]


@dataclass
class Batch:
    input_ids: torch.Tensor | None  # (B, L)
    attention_mask: torch.Tensor | None  # (B, L)
    token_type_ids: torch.Tensor | None  # (B, L)
    features: torch.Tensor  # (B, F)
    labels: torch.Tensor  # (B,)
    list_index: torch.Tensor  # (Q, N) row of each list slot within the batch, -1 = padding
    real_tokens: int
    query_ids: torch.Tensor | None = None  # (B, Lq) two-tower query tokens
    query_mask: torch.Tensor | None = None  # (B, Lq)
    hidden_states: torch.Tensor | None = None  # (B, L, H) output of the frozen lower layers, when cached

    def model_inputs(self) -> dict[str, torch.Tensor | None]:
        inputs = {
            "input_ids": self.input_ids,
            "attention_mask": self.attention_mask,
            "token_type_ids": self.token_type_ids,
            "features": self.features,
        }
        if self.query_ids is not None:
            inputs["query_ids"], inputs["query_mask"] = self.query_ids, self.query_mask
        if self.hidden_states is not None:
            inputs["hidden_states"] = self.hidden_states
        return inputs


def gather_hidden(split: SplitTensors, rows: torch.Tensor, lengths: torch.Tensor, width: int) -> torch.Tensor:
    """``(B, width, H)`` cached lower-layer states of ``rows`` (device tensors), zero past each row's
    length."""
    positions = torch.arange(width, device=rows.device)  # (L,)
    valid = positions[None, :] < lengths[:, None]  # (B, L)
    index = torch.where(valid, split.hidden_offsets[rows][:, None] + positions[None, :], 0)  # (B, L)
    return split.hidden[index] * valid[..., None].to(split.hidden.dtype)


@dataclass
class EpochPlan:
    """The batches of one epoch with their index tensors uploaded to the device in one copy.

    Per step, ``batch(i)`` only slices device tensors and gathers: no host-to-device copy (which for
    pageable memory synchronises the host with the GPU) and no Python loop over queries.
    """

    split: SplitTensors
    rows: torch.Tensor  # (R,) split rows of every batch, batch after batch, on the device
    lengths: torch.Tensor  # (R,) real tokens of those rows, on the device
    list_index: torch.Tensor  # (Qe, N) row within its batch of each list slot, -1 = padding, on the device
    row_bounds: np.ndarray  # (n_batches + 1,) batch i holds rows[row_bounds[i]:row_bounds[i + 1]]
    query_bounds: np.ndarray  # (n_batches + 1,) and lists list_index[query_bounds[i]:query_bounds[i + 1]]
    widths: np.ndarray  # (n_batches,) longest real pair of each batch (the padded width)
    list_widths: np.ndarray  # (n_batches,) largest query of each batch
    real_tokens: np.ndarray  # (n_batches,) unpadded tokens of each batch
    query_lengths: torch.Tensor | None = None  # (R,) two-tower query tokens of those rows, on the device
    query_widths: np.ndarray | None = None  # (n_batches,) longest query of each batch

    def __len__(self) -> int:
        return len(self.widths)

    def batch(self, i: int) -> Batch:
        split = self.split
        r0, r1 = int(self.row_bounds[i]), int(self.row_bounds[i + 1])
        q0, q1 = int(self.query_bounds[i]), int(self.query_bounds[i + 1])
        rows = self.rows[r0:r1]
        input_ids = attention_mask = token_type_ids = None
        if split.input_ids is not None:
            width = int(self.widths[i])
            input_ids = split.input_ids[rows, :width]  # (B, L)
            token_type_ids = split.token_type_ids[rows, :width]
            positions = torch.arange(width, device=rows.device)
            attention_mask = (positions[None, :] < self.lengths[r0:r1, None]).long()
        hidden_states = (gather_hidden(split, rows, self.lengths[r0:r1], int(self.widths[i]))
                         if split.hidden is not None else None)
        query_ids = query_mask = None
        if split.query_input_ids is not None:
            q_width = int(self.query_widths[i])
            query_ids = split.query_input_ids[rows, :q_width]  # (B, Lq)
            positions = torch.arange(q_width, device=rows.device)
            query_mask = (positions[None, :] < self.query_lengths[r0:r1, None]).long()
        return Batch(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            features=split.features[rows],
            labels=split.labels[rows],
            list_index=self.list_index[q0:q1, : int(self.list_widths[i])],
            real_tokens=int(self.real_tokens[i]),
            query_ids=query_ids,
            query_mask=query_mask,
            hidden_states=hidden_states,
        )


def plan_epoch(split: SplitTensors, batches: list[np.ndarray]) -> EpochPlan:
    """Vectorised index bookkeeping for ``batches`` (query positions per batch, as from
    ``training_batches``)."""
    queries = np.concatenate(batches).astype(np.int64) if batches else np.zeros(0, dtype=np.int64)
    n_queries = np.array([len(b) for b in batches], dtype=np.int64)
    query_bounds = np.r_[0, np.cumsum(n_queries)]
    starts = split.query_offsets[queries]
    sizes = split.query_offsets[queries + 1] - starts  # (Qe,)
    list_start = np.r_[0, np.cumsum(sizes)][:-1]  # first row of each list in the concatenation
    rows = np.arange(int(sizes.sum()), dtype=np.int64) + np.repeat(starts - list_start, sizes)
    row_bounds = list_start[query_bounds[:-1]] if len(batches) else np.zeros(0, dtype=np.int64)
    row_bounds = np.r_[row_bounds, len(rows)]
    batch_of_list = np.repeat(np.arange(len(batches)), n_queries)
    slot = np.arange(int(sizes.max(initial=1)))[None, :]  # (1, N)
    list_index = np.where(slot < sizes[:, None], (list_start - row_bounds[batch_of_list])[:, None] + slot, -1)
    lengths = split.lengths[rows].astype(np.int64)
    nonempty = len(rows) > 0
    cuts = row_bounds[:-1]
    device = split.labels.device
    q_lengths = q_widths = None
    if split.query_lengths is not None:
        host = split.query_lengths[rows].astype(np.int64)
        q_lengths = torch.from_numpy(host).to(device)
        q_widths = np.maximum.reduceat(host, cuts) if nonempty else np.zeros(0, dtype=np.int64)
    return EpochPlan(
        split=split,
        rows=torch.from_numpy(rows).to(device),
        lengths=torch.from_numpy(lengths).to(device),
        list_index=torch.from_numpy(list_index.astype(np.int64)).to(device),
        row_bounds=row_bounds,
        query_bounds=query_bounds,
        widths=np.maximum.reduceat(lengths, cuts) if nonempty else np.zeros(0, dtype=np.int64),
        list_widths=(np.maximum.reduceat(sizes, query_bounds[:-1]) if nonempty
                     else np.zeros(0, dtype=np.int64)),
        real_tokens=np.add.reduceat(lengths, cuts) if nonempty else np.zeros(0, dtype=np.int64),
        query_lengths=q_lengths,
        query_widths=q_widths,
    )


def make_batch(split: SplitTensors, query_positions: np.ndarray) -> Batch:
    """Gather whole queries; pad tokens to the longest real pair of the batch."""
    return plan_epoch(split, [np.asarray(query_positions)]).batch(0)


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
    order = (np.argsort(split.lengths, kind="stable") if split.input_ids is not None
             else np.arange(split.n_pairs))
    return [order[i : i + batch_size] for i in range(0, split.n_pairs, batch_size)]


def rows_batch(split: SplitTensors, rows: np.ndarray | torch.Tensor, *, width: int | None = None,
               lengths: torch.Tensor | None = None) -> dict[str, torch.Tensor | None]:
    """Model inputs for ``rows`` of the split. Pass ``rows`` as a device tensor with its ``width`` (longest
    real pair) and device ``lengths`` to skip every host-to-device copy."""
    device = split.labels.device
    if isinstance(rows, np.ndarray):
        if split.input_ids is not None:
            width = int(split.lengths[rows].max())
            lengths = torch.from_numpy(split.lengths[rows]).to(device)
        rows = torch.from_numpy(rows).to(device)
    inputs: dict[str, torch.Tensor | None] = {"features": split.features[rows]}
    if split.input_ids is not None:
        if width is None or lengths is None:
            raise ValueError("rows given as a tensor need width= and lengths= for a text model")
        inputs["input_ids"] = split.input_ids[rows, :width]
        inputs["token_type_ids"] = split.token_type_ids[rows, :width]
        inputs["attention_mask"] = (torch.arange(width, device=device)[None, :] < lengths[:, None]).long()
        if split.hidden is not None:
            inputs["hidden_states"] = gather_hidden(split, rows, lengths, width)
    if split.query_input_ids is not None:
        rows_host = rows.cpu().numpy()  # scoring only: one small copy per batch
        q_len = split.query_lengths[rows_host]
        q_width = max(int(q_len.max()), 1) if len(q_len) else 1
        inputs["query_ids"] = split.query_input_ids[rows, :q_width]
        inputs["query_mask"] = (torch.arange(q_width, device=device)[None, :]
                                < torch.from_numpy(q_len.astype(np.int64)).to(device)[:, None]).long()
    return inputs
