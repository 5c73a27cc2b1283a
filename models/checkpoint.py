"""The checkpoint file format, for a trial's ``last.ckpt`` (resume) and ``best.ckpt`` (its best weights).

A checkpoint is a plain dict, saved with ``torch.save`` and loaded with ``weights_only=True``. It is written
to a temporary file, fsynced, renamed over the old one, and the rename fsynced in its folder: neither a kill
nor a host crash leaves half a file or an empty one behind the name. A CRC-32 ``digest`` over every tensor and
value turns a damaged file (empty, truncated, overwritten, bit rot) into a :class:`DamagedCheckpointError` on
load, never into wrong weights.

Weights are stored against their *reference*, the pretrained encoder weights a fresh network is built from
(:func:`pretrained_reference`): of an encoder tensor only the rows that differ are kept, so frozen layers and
the embedding rows of tokens the training data never contains cost nothing; AdamW moments keep only their
non-zero rows. :func:`unpack_state` rebuilds the rest from the same pretrained weights, after checking (by
their CRC) that they are still the ones the checkpoint was written against.
"""

from __future__ import annotations

import errno
import os
import pickle
import threading
import weakref
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from study.models.encoder import _pretrained, resolve_encoder_dir

from study.errors import UserInputError

FORMAT = "study-checkpoint"
FORMAT_VERSION = 2  # 2: packed weights (rows that differ from the pretrained encoder), digest, kind
DISK_FULL_REASON = "disk_full"  # fail_reason: the trial's checkpoint could not be written for lack of space
PACKED = "__packed__"
_INT_OF_SIZE = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


class DiskFullError(UserInputError):
    """No space (or quota) left for a checkpoint. The trial is failed with reason ``disk_full``, queued for a
    retry once there is space again, and the run stops with this message and exit 2."""


class DamagedCheckpointError(UserInputError):
    """A checkpoint that cannot be used: empty, truncated, overwritten, its digest does not match, or the
    pretrained weights it was stored against have changed. ``path`` and ``reason`` say which and why."""

    def __init__(self, path: Path | None, reason: str, *, advice: str = "") -> None:
        self.path, self.reason = path, reason
        message = f"The checkpoint {path} cannot be used: {reason}."
        super().__init__(f"{message} {advice}" if advice else message)


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """Write to a temporary file in the same folder, fsync it, rename it over ``path``, fsync the folder."""
    path = Path(path)
    created = not path.parent.is_dir()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save({**state, "digest": _digest(state)}, f)
            f.flush()
            os.fsync(f.fileno())  # the bytes are on disk before the name points at them
        os.replace(tmp, path)
        _fsync_dir(path.parent)  # ... and the rename itself survives a crash
        if created:
            _fsync_dir(path.parent.parent)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)  # never leave a half-written file that keeps the disk full
        if _is_disk_full(exc):
            raise DiskFullError(
                f"The disk is full: the checkpoint {path} could not be written ({exc.__class__.__name__}: "
                f"{exc}). Nothing was lost: the trial is queued again and resumes from its last complete "
                "checkpoint. Free some space (or move study.runs_dir) and run the same command again."
            ) from exc
        raise


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as exc:  # some file systems cannot sync a directory; the file itself is synced
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def _is_disk_full(exc: BaseException) -> bool:
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "No space left on device" in str(exc) or "file write failed" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def load_checkpoint(path: Path, *, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The checkpoint's dict. ``FileNotFoundError`` when absent; :class:`DamagedCheckpointError` when
    unreadable or when its contents no longer match the digest written with them."""
    path = Path(path)
    size = path.stat().st_size
    if size == 0:
        raise DamagedCheckpointError(path, "the file is empty (0 bytes)")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except PermissionError:
        raise
    except (RuntimeError, EOFError, ValueError, pickle.UnpicklingError, KeyError, IndexError, TypeError,
            AttributeError, OSError) as exc:  # what torch.load raises for a file that is not (all) there
        first = str(exc).strip().split("\n")[0].split(". ")[0][:120]  # torch's first sentence
        raise DamagedCheckpointError(path, f"it is truncated or not a checkpoint ({size:,} bytes; "
                                           f"{type(exc).__name__}: {first})") from exc
    if not isinstance(state, dict):
        raise DamagedCheckpointError(path, f"it holds a {type(state).__name__}, not a checkpoint")
    digest = state.pop("digest", None)
    if digest is not None and digest != _digest(state):
        raise DamagedCheckpointError(path, "its contents changed after it was written (digest mismatch)")
    return state


def require(state: Mapping[str, Any], keys: tuple[str, ...], path: Path) -> None:
    """Refuse a checkpoint without ``keys`` (an older or foreign file under a checkpoint's name)."""
    missing = [k for k in keys if k not in state]
    if missing:
        raise DamagedCheckpointError(path, f"it lacks {', '.join(missing)}")


def _digest(value: Any, crc: int = 0) -> int:
    """CRC-32 over tensors' bytes, dtypes and shapes and every other value's repr, in a fixed order."""
    if isinstance(value, torch.Tensor):
        crc = zlib.crc32(f"{value.dtype}{tuple(value.shape)}".encode(), crc)
        return zlib.crc32(_bytes(value), crc)
    if isinstance(value, Mapping):
        for key in sorted(value, key=repr):
            crc = _digest(value[key], zlib.crc32(repr(key).encode(), crc))
        return crc
    if isinstance(value, (list, tuple)):
        for item in value:
            crc = _digest(item, zlib.crc32(b",", crc))
        return crc
    return zlib.crc32(repr(value).encode(), crc)


def _bytes(t: torch.Tensor) -> memoryview:
    flat = t.detach().to("cpu").contiguous().reshape(-1)
    return memoryview(flat.view(torch.uint8).numpy()) if flat.numel() else memoryview(b"")


_CRC_CACHE: dict[int, tuple[weakref.ref, int, int]] = {}


def _tensor_crc(t: torch.Tensor) -> int:
    """The CRC of a reference tensor, cached while it lives unchanged (the pretrained weights of a worker)."""
    # an inference tensor (weights cached while scoring under torch.inference_mode) has no version counter,
    # and cannot be changed in place outside inference mode: its version is fixed
    version = 0 if t.is_inference() else t._version
    hit = _CRC_CACHE.get(id(t))
    if hit is not None and hit[0]() is t and hit[1] == version:
        return hit[2]
    crc, key = _digest(t), id(t)
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


LAST_KEYS = ("model", "optimizer", "scheduler", "scaler", "rng", "epoch", "history", "best_value",
             "best_epoch", "best_metrics", "best_state")  # what a resume reads from last.ckpt
BEST_KEYS = ("model", "config", "scaler", "n_features", "epoch", "metrics")  # what loading a trial reads


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


def cpu_state_dict(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return snapshot(module.state_dict())


def snapshot(state: Any) -> Any:
    """A copy of ``state`` on the CPU that later in-place updates of the live tensors cannot reach."""
    if isinstance(state, torch.Tensor):
        return state.detach().to("cpu", copy=True)
    if isinstance(state, dict):
        return {k: snapshot(v) for k, v in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(snapshot(v) for v in state)
    return state


class CheckpointWriter:
    """Writes epoch checkpoints from a background thread while the next epoch trains.

    ``submit`` waits for the previous write (at most one in flight), copies the tensors of ``live`` (``keep``
    is stored as given: values nobody updates in place, such as a kept best state) and returns; in the
    background ``encode`` (packing) runs on the copy, the file is written and renamed into place, then
    ``after(path)`` runs. ``wait`` blocks until that is done and re-raises a failed write (a full disk as
    :class:`DiskFullError`). The rename stays atomic: a kill during a write leaves the previous checkpoint.
    """

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def submit(self, live: dict[str, Any], path: Path, *, keep: dict[str, Any] | None = None,
               encode: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
               after: Callable[[Path], None] | None = None) -> None:
        self.wait()
        state = {**snapshot(live), **(keep or {})}

        def write() -> None:
            try:
                save_checkpoint(encode(state) if encode is not None else state, path)
                if after is not None:
                    after(path)
            except BaseException as exc:  # noqa: BLE001 - surfaced by wait() on the training thread
                self._error = exc

        self._thread = threading.Thread(target=write, name="checkpoint-writer", daemon=True)
        self._thread.start()

    def wait(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            error, self._error = self._error, None
            raise error
