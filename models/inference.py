"""Scoring a split with a model: ``predict`` (the scores, in the split's row order) and ``evaluate`` (the
scores and their ranking metrics). The training loop validates with these; export, reports and the test
comparison score with them too."""

from __future__ import annotations

import numpy as np
import torch
from study.data.batching import SplitTensors, inference_batches, rows_batch
from study.models.config import TrainConfig
from study.models.device import autocast
from study.models.metrics import evaluate_ranking
from study.models.ranker import RankingNet

# Scoring on the CPU: batches beyond ~4k tokens spill the activations out of cache and score ~20% slower
# (MiniLM, 2 cores: 64-128 rows of 30 tokens beat 512 rows). GPUs keep ``eval_batch_size`` as given.
CPU_TOKENS_PER_BATCH = 4096


@torch.inference_mode()
def predict(model: RankingNet, split: SplitTensors, *, batch_size: int, dtype: torch.dtype) -> np.ndarray:
    """Scores for every row of the split, in the split's row order.

    Rows are scored in length order (little padding); the order and lengths go to the device once and
    the scores come back in one copy at the end.
    """
    model.eval()
    device = split.labels.device
    if device.type == "cpu" and split.input_ids is not None and split.n_pairs:
        batch_size = min(batch_size, max(CPU_TOKENS_PER_BATCH // max(int(split.lengths.max()), 1), 16))
    chunks = inference_batches(split, batch_size=batch_size)
    order = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int64)
    order_t = torch.from_numpy(order.astype(np.int64)).to(device)
    lengths_t = torch.from_numpy(split.lengths[order].astype(np.int64)).to(device)
    outs: list[torch.Tensor] = []
    start = 0
    for rows in chunks:
        end = start + len(rows)
        width = int(split.lengths[rows].max()) if split.input_ids is not None else None
        with autocast(device, dtype):
            out = model(**rows_batch(split, order_t[start:end], width=width, lengths=lengths_t[start:end]))
        outs.append(out.float())
        start = end
    scores = torch.empty(split.n_pairs, dtype=torch.float32, device=device)
    if outs:
        scores[order_t] = torch.cat(outs)
    return scores.cpu().numpy()


def evaluate(
    model: RankingNet, split: SplitTensors, *, config: TrainConfig, dtype: torch.dtype,
    score_threshold: float | None = None,
) -> tuple[dict[str, float], np.ndarray]:
    """Scores and metrics of ``split``. The classification metrics' score threshold is fitted on the split
    (validation) unless given (test: the threshold fitted on validation)."""
    scores = predict(model, split, batch_size=config.eval_batch_size, dtype=dtype)
    metrics = evaluate_ranking(
        scores, split.labels_np, split.row_query, k=config.ndcg_k,
        relevance_threshold=config.relevance_threshold, score_threshold=score_threshold,
    )
    return metrics, scores
