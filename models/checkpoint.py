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

Where each part lives: the file (atomic write, digest, load, the errors) in ``models.checkpoint_file``; the
packing against the pretrained weights in ``models.weight_packing``; here the :class:`CheckpointWriter` that
writes an epoch's checkpoint in the background, and every public name of the three.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from study.models.checkpoint_file import (
    BEST_KEYS,
    DISK_FULL_REASON,
    FORMAT,
    FORMAT_VERSION,
    LAST_KEYS,
    DamagedCheckpointError,
    DiskFullError,
    load_checkpoint,
    require,
    save_checkpoint,
)
from study.models.weight_packing import (
    PACKED,
    pack_optimizer,
    pack_state,
    pack_weights,
    pretrained_reference,
    unpack_optimizer,
    unpack_state,
    verify_reference,
)

__all__ = [
    "BEST_KEYS", "DISK_FULL_REASON", "FORMAT", "FORMAT_VERSION", "LAST_KEYS", "PACKED", "CheckpointWriter",
    "DamagedCheckpointError", "DiskFullError", "cpu_state_dict", "load_checkpoint", "pack_optimizer",
    "pack_state", "pack_weights", "pretrained_reference", "require", "save_checkpoint", "snapshot",
    "unpack_optimizer", "unpack_state", "verify_reference",
]


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
