"""ListNet (Cao et al. 2007): softmax cross-entropy between a target distribution over the list and
``softmax(scores)``.

The default target is the normalised NDCG gain ``(2^g - 1) / sum(2^g - 1)``: the same gain as the
metric, and irrelevant items (g = 0) get no target mass. ``target="softmax"`` uses ``softmax(g)``,
the original ListNet top-one probability (as in allRank).
"""

from __future__ import annotations

import torch
from study.models.losses.pointwise import mean_where, prepare_inputs

TARGETS = ("gain", "softmax")


def listnet(
    scores: torch.Tensor,
    labels: torch.Tensor,
    mask: torch.Tensor,
    *,
    target: str = "gain",
    max_label: float | None = None,
) -> torch.Tensor:
    """``-sum_i p_i log softmax(s)_i`` over the valid items of each list, mean over lists.

    scores, labels, mask: (Q, N). ``p`` is ``(2^g - 1) / sum(2^g - 1)`` (``target="gain"``) or
    ``softmax(g)`` (``target="softmax"``), both over valid items only. Lists with fewer than two valid
    items or no positive label contribute nothing. ``max_label`` is accepted and ignored.
    Returns a float32 scalar.
    """
    del max_label
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; expected one of {TARGETS}")
    scores, labels = prepare_inputs(scores, labels, mask)
    very_negative = torch.finfo(torch.float32).min
    log_p_model = torch.log_softmax(torch.where(mask, scores, very_negative), dim=1)  # (Q, N)
    gains = torch.where(mask, torch.exp2(labels) - 1.0, 0.0)  # (Q, N)
    gain_sum = gains.sum(dim=1, keepdim=True)  # (Q, 1)
    if target == "gain":
        p_target = gains / torch.where(gain_sum > 0, gain_sum, 1.0)  # (Q, N)
    else:
        p_target = torch.softmax(torch.where(mask, labels, very_negative), dim=1)  # (Q, N)
    per_list = -torch.where(mask, p_target * log_p_model, 0.0).sum(dim=1)  # (Q,)
    contributes = (mask.sum(dim=1) >= 2) & (gain_sum[:, 0] > 0)
    return mean_where(per_list, contributes)
