"""The checkpoint file on disk: a plain dict saved with ``torch.save`` and loaded with ``weights_only=True``,
written to a temporary file, fsynced, renamed over the old one and the rename fsynced in its folder; a CRC-32
``digest`` over every tensor and value written with it; the errors a full disk or a damaged file become.
What the dict holds is described in ``models.checkpoint``."""

from __future__ import annotations

import errno
import os
import pickle
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from study.errors import UserInputError

FORMAT = "study-checkpoint"
FORMAT_VERSION = 2  # 2: packed weights (rows that differ from the pretrained encoder), digest, kind
DISK_FULL_REASON = "disk_full"  # fail_reason: the trial's checkpoint could not be written for lack of space
LAST_KEYS = ("model", "optimizer", "scheduler", "scaler", "rng", "epoch", "history", "best_value",
             "best_epoch", "best_metrics", "best_state")  # what a resume reads from last.ckpt
BEST_KEYS = ("model", "config", "scaler", "n_features", "epoch", "metrics")  # what loading a trial reads


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
            torch.save({**state, "digest": digest(state)}, f)
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
    stored = state.pop("digest", None)
    if stored is not None and stored != digest(state):
        raise DamagedCheckpointError(path, "its contents changed after it was written (digest mismatch)")
    return state


def require(state: Mapping[str, Any], keys: tuple[str, ...], path: Path) -> None:
    """Refuse a checkpoint without ``keys`` (an older or foreign file under a checkpoint's name)."""
    missing = [k for k in keys if k not in state]
    if missing:
        raise DamagedCheckpointError(path, f"it lacks {', '.join(missing)}")


def digest(value: Any, crc: int = 0) -> int:
    """CRC-32 over tensors' bytes, dtypes and shapes and every other value's repr, in a fixed order."""
    if isinstance(value, torch.Tensor):
        crc = zlib.crc32(f"{value.dtype}{tuple(value.shape)}".encode(), crc)
        return zlib.crc32(_bytes(value), crc)
    if isinstance(value, Mapping):
        for key in sorted(value, key=repr):
            crc = digest(value[key], zlib.crc32(repr(key).encode(), crc))
        return crc
    if isinstance(value, (list, tuple)):
        for item in value:
            crc = digest(item, zlib.crc32(b",", crc))
        return crc
    return zlib.crc32(repr(value).encode(), crc)


def _bytes(t: torch.Tensor) -> memoryview:
    flat = t.detach().to("cpu").contiguous().reshape(-1)
    return memoryview(flat.view(torch.uint8).numpy()) if flat.numel() else memoryview(b"")
