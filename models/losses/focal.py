"""Binary focal loss (Lin et al. 2017) on the soft target ``g / max_label``.

It down-weights items the model already gets right, so that the many easy irrelevant items of a
catalogue do not drown the few hard ones.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from study.models.losses.pointwise import mean_where, normalised_gain, prepare_inputs

_EPS = 1e-12


def focal(
    scores: torch.Tensor,
    labels: torch.Tensor,
    mask: torch.Tensor,
    *,
    gamma: float = 2.0,
    alpha: float | None = None,
    max_label: float | None = None,
) -> torch.Tensor:
    """``alpha_t * (1 - p_t) ** gamma * BCE(score, t)``, mean over valid items, ``t = g / max_label``.

    scores, labels, mask: (Q, N). ``p_t = p t + (1 - p)(1 - t)`` with ``p = sigmoid(score)``;
    ``alpha_t = alpha t + (1 - alpha)(1 - t)``, or 1 when ``alpha`` is None (the default; RetinaNet
    used 0.25). ``gamma = 0`` and ``alpha = None`` give :func:`bce`. Returns a float32 scalar.
    """
    if gamma < 0:
        raise ValueError(f"gamma must be >= 0, got {gamma=}")
    if alpha is not None and not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1] or None, got {alpha=}")
    scores, labels = prepare_inputs(scores, labels, mask)
    target = normalised_gain(labels, mask, max_label)  # (Q, N)
    ce = F.binary_cross_entropy_with_logits(scores, target, reduction="none")  # (Q, N)
    # 1 - p_t written without the cancellation of 1 - (...): exact for large |scores|.
    one_minus_pt = target * torch.sigmoid(-scores) + (1.0 - target) * torch.sigmoid(scores)
    # The clamp keeps d/dx x**gamma finite at x = 0 when gamma < 1.
    per_item = one_minus_pt.clamp_min(_EPS) ** gamma * ce
    if alpha is not None:
        per_item = (alpha * target + (1.0 - alpha) * (1.0 - target)) * per_item
    return mean_where(per_item, mask)
