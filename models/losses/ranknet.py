"""RankNet (Burges et al. 2005): logistic loss on every pair of items with different labels."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from study.models.losses.pointwise import mean_where, prepare_inputs

WEIGHTINGS = ("none", "gain")


def ranknet(
    scores: torch.Tensor,
    labels: torch.Tensor,
    mask: torch.Tensor,
    *,
    sigma: float = 1.0,
    weighting: str = "none",
    max_label: float | None = None,
) -> torch.Tensor:
    """``log(1 + exp(-sigma (s_i - s_j)))`` over valid pairs with ``g_i > g_j``.

    scores, labels, mask: (Q, N). Per list, the (weighted) mean over its pairs; then the mean over
    lists that have at least one such pair. ``weighting="gain"`` weighs a pair by ``|2^g_i - 2^g_j|``
    (normalised within the list, so the loss keeps its scale). ``max_label`` is accepted and ignored.
    Returns a float32 scalar.
    """
    del max_label
    if weighting not in WEIGHTINGS:
        raise ValueError(f"unknown weighting {weighting!r}; expected one of {WEIGHTINGS}")
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma=}")
    scores, labels = prepare_inputs(scores, labels, mask)
    pairs = mask[:, :, None] & mask[:, None, :] & (labels[:, :, None] > labels[:, None, :])  # (Q, N, N)
    diffs = scores[:, :, None] - scores[:, None, :]  # (Q, N, N): s_i - s_j
    pair_loss = F.softplus(-sigma * diffs)  # (Q, N, N), = -log sigmoid(sigma (s_i - s_j))
    if weighting == "gain":
        gains = torch.exp2(labels)  # (Q, N); the -1 of 2^g - 1 cancels in the difference
        weights = torch.where(pairs, (gains[:, :, None] - gains[:, None, :]).abs(), 0.0)
    else:
        weights = pairs.float()
    total_weight = weights.sum(dim=(1, 2))  # (Q,)
    per_list = (weights * pair_loss).sum(dim=(1, 2)) / total_weight.clamp_min(1e-12)  # (Q,)
    return mean_where(per_list, total_weight > 0)
