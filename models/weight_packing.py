"""Weights stored against their *reference*, the pretrained encoder weights a fresh network is built from
(:func:`pretrained_reference`): of an encoder tensor only the rows that differ are kept, so frozen layers and
the embedding rows of tokens the training data never contains cost nothing; AdamW moments keep only their
non-zero rows. :func:`unpack_state` rebuilds the rest from the same pretrained weights, after checking (by
their CRC) that they are still the ones the checkpoint was written against."""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from study.models.checkpoint_file import FORMAT, FORMAT_VERSION, DamagedCheckpointError, digest
from study.models.encoder import _pretrained, resolve_encoder_dir

PACKED = "__packed__"
_INT_OF_SIZE = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}

_CRC_CACHE: dict[int, tuple[weakref.ref, int, int]] = {}


def _tensor_crc(t: torch.Tensor) -> int:
    """The CRC of a reference tensor, cached while it lives unchanged (the pretrained weights of a worker)."""
    # an inference tensor (weights cached while scoring under torch.inference_mode) has no version counter,
    # and cannot be changed in place outside inference mode: its version is fixed
    version = 0 if t.is_inference() else t._version
    hit = _CRC_CACHE.get(id(t))
    if hit is not None and hit[0]() is t and hit[1] == version:
        return hit[2]
    crc, key = digest(t), id(t)
    _CRC_CACHE[key] = (weakref.ref(t, lambda _: _CRC_CACHE.pop(key, None)), version, crc)
    return crc


def pretrained_reference(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """What a freshly built network holds before training, by state-dict key: its encoder's pretrained weights
    (shared with the worker's weight cache, never copied). Empty for a network without an encoder."""
    encoder = getattr(model, "encoder", None)
    if encoder is None:
        return {}
    _, weights = _pretrained(resolve_encoder_dir(model.config.encoder))
    return {f"encoder.{k}": v for k, v in weights.items()}


def _changed_rows(t: torch.Tensor, base: torch.Tensor | None) -> torch.Tensor | None:
    """(rows,) True where ``t`` differs bit for bit from ``base`` (zeros when None); None if not packable."""
    if t.ndim == 0 or t.numel() == 0 or t.element_size() not in _INT_OF_SIZE or t.is_complex():
        return None
    bits = t.contiguous().view(_INT_OF_SIZE[t.element_size()])
    if base is None:
        differs = bits != 0
    elif base.shape == t.shape and base.dtype == t.dtype:
        differs = bits != base.to(t.device).contiguous().view(bits.dtype)
    else:
        return None
    return differs.reshape(t.shape[0], -1).any(dim=1)


def _pack_tensor(t: torch.Tensor, base: torch.Tensor | None) -> torch.Tensor | tuple:
    """``t``, or ``(n_rows, indices, rows)`` when only the rows that differ from ``base`` take fewer bytes."""
    changed = _changed_rows(t, base)
    if changed is None:
        return t
    index = changed.nonzero().squeeze(1)
    row_bytes = t[0].numel() * t.element_size()
    if index.numel() * (row_bytes + 8) >= 0.75 * t.shape[0] * row_bytes:
        return t
    return int(t.shape[0]), index, t.index_select(0, index)


def _unpack_tensor(stored: torch.Tensor | tuple, base: torch.Tensor | None) -> torch.Tensor:
    if isinstance(stored, torch.Tensor):
        return stored
    n_rows, index, rows = stored
    if base is None:
        return torch.zeros((n_rows, *rows.shape[1:]), dtype=rows.dtype).index_copy_(0, index, rows)
    return base.clone().index_copy_(0, index, rows.to(base.dtype))  # a copy: the reference is shared


def pack_state(state: Mapping[str, torch.Tensor], reference: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """A module's state dict with its reference tensors stored as the rows that differ (none when frozen)."""
    tensors = {k: _pack_tensor(v, reference.get(k)) if k in reference else v for k, v in state.items()}
    crcs = {k: _tensor_crc(reference[k]) for k, v in tensors.items() if isinstance(v, tuple)}
    return {PACKED: 1, "tensors": tensors, "reference": crcs}


def unpack_state(packed: Mapping[str, Any], reference: Mapping[str, torch.Tensor], *,
                 path: Path | None = None) -> dict[str, torch.Tensor]:
    """The full state dict back (a state written before packing is returned as it is)."""
    if PACKED not in packed:
        return dict(packed)
    verify_reference(packed, reference, path=path)
    return {k: _unpack_tensor(v, reference.get(k) if k in packed["reference"] else None)
            for k, v in packed["tensors"].items()}


def pack_weights(state: dict[str, Any], reference: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """A ``last`` or ``best`` checkpoint's dict with its weights packed against ``reference``."""
    out = {**state, "format": FORMAT, "version": FORMAT_VERSION}
    for key in ("model", "best_state"):
        if out.get(key) is not None:
            out[key] = pack_state(out[key], reference)
    if "optimizer" in out:
        out["optimizer"] = pack_optimizer(out["optimizer"])
    return out


def verify_reference(packed: Mapping[str, Any], reference: Mapping[str, torch.Tensor], *,
                     path: Path | None = None) -> None:
    """Refuse to rebuild weights on other pretrained weights than the ones they were stored against."""
    crcs = packed.get("reference", {}) if PACKED in packed else {}
    changed = [k for k, crc in crcs.items() if k not in reference or _tensor_crc(reference[k]) != crc]
    if changed:
        raise DamagedCheckpointError(
            path, f"it was stored against other pretrained encoder weights than the ones found now "
                  f"({len(changed)} tensor(s) differ, e.g. {changed[0]}): the configured encoder changed")


def pack_optimizer(state: Mapping[str, Any]) -> dict[str, Any]:
    """An optimizer state dict with its moment tensors stored as their non-zero rows (embedding rows of tokens
    never seen in training have zero moments)."""
    per_param = {i: {k: _pack_tensor(v, None) if isinstance(v, torch.Tensor) and v.ndim >= 2 else v
                     for k, v in s.items()} for i, s in state["state"].items()}
    return {**state, "state": per_param}


def unpack_optimizer(state: Mapping[str, Any]) -> dict[str, Any]:
    per_param = {i: {k: _unpack_tensor(v, None) if isinstance(v, tuple) else v for k, v in s.items()}
                 for i, s in state["state"].items()}
    return {**state, "state": per_param}
