"""Pointwise losses (BCE on normalised gain, MSE on gain) and the input handling every loss shares.

Every loss in this package is a pure function ``loss(scores, labels, mask, **kwargs) -> scalar``:

- ``scores``: (Q, N) float tensor, any float dtype (bf16/fp16 are upcast to float32 inside);
- ``labels``: (Q, N) graded gain levels ``g >= 0`` (float or int);
- ``mask``:   (Q, N) bool, True where a real item sits; padded entries may hold anything (inf, NaN)
  and affect neither the value nor the gradients.

Every loss accepts ``max_label`` so the trainer can pass one set of keyword arguments to any of them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def prepare_inputs(
    scores: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Check shapes and return float32 ``(scores, labels)``, both (Q, N), with padded entries set to 0.

    ``torch.where`` (not multiplication by the mask) keeps NaN/inf in padding out of the forward
    pass and gives padded scores an exact zero gradient.
    """
    if scores.ndim != 2 or scores.shape != labels.shape or scores.shape != mask.shape:
        raise ValueError(
            "scores, labels and mask must share one (Q, N) shape, got "
            f"scores {tuple(scores.shape)}, labels {tuple(labels.shape)}, mask {tuple(mask.shape)}"
        )
    if mask.dtype != torch.bool:
        raise TypeError(f"mask must be a bool tensor, got {mask.dtype=}")
    if not scores.is_floating_point():
        raise TypeError(f"scores must be a float tensor, got {scores.dtype=}")
    scores = torch.where(mask, scores.float(), 0.0)  # (Q, N)
    labels = torch.where(mask, labels.float(), 0.0)  # (Q, N)
    return scores, labels


def mean_where(values: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` where ``keep``; 0 (still attached to the graph) when nothing is kept.

    ``values`` must be finite everywhere, kept or not, so that the zero gradient of dropped
    entries stays zero on its way back.
    """
    total = torch.where(keep, values, 0.0).sum()
    return total / keep.sum().clamp_min(1)


def normalised_gain(labels: torch.Tensor, mask: torch.Tensor, max_label: float | None) -> torch.Tensor:
    """Target ``g / max_label`` in [0, 1], (Q, N); ``max_label`` defaults to the batch maximum, at least 1.

    Labels above ``max_label`` are clipped to 1 rather than rejected (a validation split may hold a
    grade the training split lacks).
    """
    if max_label is None:
        top = torch.where(mask, labels, 0.0).amax().clamp_min(1.0)  # no host sync
    elif not max_label > 0:
        raise ValueError(f"max_label must be > 0, got {max_label=}")
    else:
        top = float(max_label)  # a Python number: no host-to-device copy (and on CUDA no sync) per step
    return (labels / top).clamp(0.0, 1.0)


def bce(
    scores: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor, *, max_label: float | None = None
) -> torch.Tensor:
    """Binary cross-entropy of ``sigmoid(score)`` against ``g / max_label``, mean over valid items.

    scores, labels, mask: (Q, N). Returns a float32 scalar.
    """
    scores, labels = prepare_inputs(scores, labels, mask)
    target = normalised_gain(labels, mask, max_label)  # (Q, N)
    per_item = F.binary_cross_entropy_with_logits(scores, target, reduction="none")  # (Q, N)
    return mean_where(per_item, mask)


def mse(
    scores: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor, *, max_label: float | None = None
) -> torch.Tensor:
    """Squared error between the score and the gain level ``g`` itself, mean over valid items.

    scores, labels, mask: (Q, N). ``max_label`` is accepted and ignored. Returns a float32 scalar.
    """
    del max_label
    scores, labels = prepare_inputs(scores, labels, mask)
    return mean_where((scores - labels) ** 2, mask)
