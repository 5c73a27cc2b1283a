"""ApproxNDCG (Qin, Liu and Li 2010): NDCG with each item's rank replaced by a smooth estimate.

``rank_i ~ 1 + sum_{j != i} sigmoid(alpha (s_j - s_i))``. ``alpha`` multiplies score differences
(an inverse temperature, as in allRank): larger values give a sharper, closer but less smooth
approximation of the true rank.
"""

from __future__ import annotations

import torch
from study.models.losses.pointwise import mean_where, prepare_inputs


def approxndcg(
    scores: torch.Tensor,
    labels: torch.Tensor,
    mask: torch.Tensor,
    *,
    alpha: float = 1.0,
    max_label: float | None = None,
) -> torch.Tensor:
    """``1 - approxNDCG`` per list (gain ``2^g - 1``, ideal DCG over all valid items), mean over lists.

    scores, labels, mask: (Q, N). Lists with fewer than two valid items or no positive label
    contribute nothing. ``max_label`` is accepted and ignored. Returns a float32 scalar in [0, 1].
    """
    del max_label
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0, got {alpha=}")
    scores, labels = prepare_inputs(scores, labels, mask)
    n = scores.shape[1]
    eye = torch.eye(n, dtype=torch.bool, device=scores.device)
    others = mask[:, :, None] & mask[:, None, :] & ~eye  # (Q, N, N)
    beaten_by = torch.sigmoid(alpha * (scores[:, None, :] - scores[:, :, None]))  # (Q, N, N): s_j - s_i
    approx_rank = 1.0 + torch.where(others, beaten_by, 0.0).sum(dim=2)  # (Q, N)

    gains = torch.where(mask, torch.exp2(labels) - 1.0, 0.0)  # (Q, N)
    positions = torch.arange(1, n + 1, device=scores.device, dtype=torch.float32)  # (N,)
    ideal = torch.sort(gains, dim=1, descending=True).values  # (Q, N)
    ideal_dcg = (ideal / torch.log2(1.0 + positions)).sum(dim=1)  # (Q,)
    approx_dcg = (gains / torch.log2(1.0 + approx_rank)).sum(dim=1)  # (Q,)
    per_list = 1.0 - approx_dcg / torch.where(ideal_dcg > 0, ideal_dcg, 1.0)  # (Q,)
    contributes = (mask.sum(dim=1) >= 2) & (ideal_dcg > 0)
    return mean_where(per_list, contributes)
