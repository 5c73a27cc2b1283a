"""Checkpoints as plain dicts, written atomically and loaded with ``weights_only=True``."""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path
from typing import Any

import torch
from study.data.errors import UserInputError

DISK_FULL_REASON = "disk_full"  # a trial's fail_reason when its checkpoint could not be written for lack of space


class DiskFullError(UserInputError):
    """No space (or quota) left for a checkpoint. The trial is failed with reason ``disk_full``, queued for a
    retry once there is space again, and the run stops with this message and exit 2."""


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """Write to a temporary file in the same folder, then rename: a kill never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)  # never leave a half-written file that keeps the disk full
        if _is_disk_full(exc):
            raise DiskFullError(
                f"The disk is full: the checkpoint {path} could not be written ({exc.__class__.__name__}: "
                f"{exc}). Nothing was lost: the trial is queued again and resumes from its last complete "
                "checkpoint. Free some space (or move study.runs_dir) and run the same command again."
            ) from exc
        raise


def _is_disk_full(exc: BaseException) -> bool:
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "No space left on device" in str(exc) or "file write failed" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def load_checkpoint(path: Path, *, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    return torch.load(Path(path), map_location=map_location, weights_only=True)


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
    is stored as given: values nobody updates in place, such as a kept best state) and returns; ``wait``
    blocks until the file is renamed into place and re-raises a failed write. The rename stays atomic: a
    kill during a write leaves the previous checkpoint. Serialising ~360 MB (MiniLM-L6 with AdamW state)
    took 0.7 s per epoch on 2 CPU cores; the copy that remains on the training path takes ~0.1 s.
    """

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def submit(self, live: dict[str, Any], path: Path, *, keep: dict[str, Any] | None = None) -> None:
        self.wait()
        state = {**snapshot(live), **(keep or {})}

        def write() -> None:
            try:
                save_checkpoint(state, path)
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
