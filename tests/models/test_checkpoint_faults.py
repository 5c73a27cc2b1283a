"""Checkpoints that survive faults: synced before and after the rename, damaged files refused by name, a full
disk reported from the background writer, and weights stored as what differs from the pretrained encoder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from study.models.checkpoint import (
    CheckpointWriter,
    DamagedCheckpointError,
    DiskFullError,
    load_checkpoint,
    pack_optimizer,
    pack_state,
    save_checkpoint,
    unpack_optimizer,
    unpack_state,
)

from tests.messages import assert_says


def test_the_file_and_its_folder_are_synced_around_the_rename(tmp_path: Path, monkeypatch) -> None:
    events: list[tuple[str, int]] = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync",
                        lambda fd: (events.append(("fsync", os.fstat(fd).st_ino)), real_fsync(fd)))
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append(("replace", os.stat(a).st_ino)),
                                                     real_replace(a, b)))
    path = tmp_path / "trial" / "last.ckpt"
    save_checkpoint({"w": torch.ones(4)}, path)
    file_ino, folder_ino, parent_ino = path.stat().st_ino, path.parent.stat().st_ino, tmp_path.stat().st_ino
    # the bytes reach the disk before the name points at them, then the rename (and the new folder) is durable
    assert events == [("fsync", file_ino), ("replace", file_ino), ("fsync", folder_ino),
                      ("fsync", parent_ino)]
    events.clear()
    save_checkpoint({"w": torch.zeros(4)}, path)  # the folder exists now: only it is synced after the rename
    assert [e[0] for e in events] == ["fsync", "replace", "fsync"] and events[-1] == ("fsync", folder_ino)
    assert torch.equal(load_checkpoint(path)["w"], torch.zeros(4))


def _saved(tmp_path: Path) -> Path:
    path = tmp_path / "last.ckpt"
    save_checkpoint({"model": {"w": torch.arange(200_000, dtype=torch.float32)}, "epoch": 3}, path)
    return path


@pytest.mark.parametrize("damage", ["empty", "garbage", "truncated", "flipped"])
def test_a_damaged_checkpoint_is_refused_by_name(tmp_path: Path, damage: str) -> None:
    path = _saved(tmp_path)
    data = path.read_bytes()
    if damage == "empty":
        path.write_bytes(b"")
    elif damage == "garbage":
        path.write_bytes(b"not a checkpoint\n" * 100)
    elif damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    else:  # one byte in the middle of the tensor data: torch.load alone does not notice
        middle = len(data) // 2
        path.write_bytes(data[:middle] + bytes([data[middle] ^ 0x40]) + data[middle + 1:])
        assert torch.load(path, weights_only=True)["epoch"] == 3
    with pytest.raises(DamagedCheckpointError) as info:
        load_checkpoint(path)
    assert info.value.path == path
    assert_says(info.value, str(path))
    assert_says(info.value.reason, {"empty": "empty", "garbage": "not a checkpoint", "truncated": "truncated",
                                    "flipped": "digest"}[damage])


def test_a_missing_checkpoint_is_not_called_damaged(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "absent.ckpt")


def test_a_full_disk_in_the_background_writer_surfaces_in_wait(tmp_path: Path) -> None:
    """The kernel's own ENOSPC: the writer's temporary file is a link to /dev/full."""
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full on this system")
    path = tmp_path / "last.ckpt"
    save_checkpoint({"w": torch.zeros(3), "epoch": 1}, path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.symlink_to("/dev/full")
    writer = CheckpointWriter()
    writer.submit({"w": torch.ones(100_000)}, path, keep={"epoch": 2})
    with pytest.raises(DiskFullError) as info:
        writer.wait()
    assert_says(info.value, "disk is full", str(path))
    assert isinstance(info.value.__cause__, OSError)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]  # the link is gone, no half file
    assert load_checkpoint(path)["epoch"] == 1  # the previous checkpoint is untouched


def test_weights_are_stored_as_the_rows_that_differ_from_the_reference(tmp_path: Path) -> None:
    torch.manual_seed(0)
    reference = {"emb": torch.randn(5000, 16), "frozen": torch.randn(64, 64), "bias": torch.randn(64)}
    state = {k: v.clone() for k, v in reference.items()}
    state["emb"][[3, 17, 4000]] += 0.5  # three rows trained; the other 4997 never seen
    state["bias"] += 1.0  # all changed: stored whole
    state["head"] = torch.randn(8, 4)  # not in the reference: stored whole
    packed = pack_state(state, reference)
    save_checkpoint({"model": packed}, tmp_path / "packed.ckpt")
    save_checkpoint({"model": state}, tmp_path / "dense.ckpt")
    assert (tmp_path / "packed.ckpt").stat().st_size < (tmp_path / "dense.ckpt").stat().st_size / 10
    back = unpack_state(load_checkpoint(tmp_path / "packed.ckpt")["model"], reference)
    assert set(back) == set(state) and all(torch.equal(back[k], state[k]) for k in state)
    assert back["frozen"] is not reference["frozen"]  # unchanged: rebuilt from the reference (a copy)
    assert packed["tensors"]["frozen"][1].numel() == 0 and torch.equal(back["frozen"], reference["frozen"])
    # the reference changed since (another encoder directory under the same name): refused, not mixed
    other = {**reference, "emb": reference["emb"] + 1e-3}
    with pytest.raises(DamagedCheckpointError) as info:
        unpack_state(packed, other, path=tmp_path / "packed.ckpt")
    assert_says(info.value, "other pretrained encoder weights")


def test_optimizer_moments_keep_only_their_non_zero_rows() -> None:
    moments = torch.zeros(1000, 8)
    moments[[1, 500]] = 2.0
    state = {"state": {0: {"step": torch.tensor(5.0), "exp_avg": moments, "exp_avg_sq": moments.clone() ** 2},
                       1: {"step": torch.tensor(5.0), "exp_avg": torch.ones(4), "exp_avg_sq": torch.ones(4)}},
             "param_groups": [{"lr": 1e-3, "params": [0, 1]}]}
    packed = pack_optimizer(state)
    n_rows, index, rows = packed["state"][0]["exp_avg"]
    assert n_rows == 1000 and index.tolist() == [1, 500] and rows.shape == (2, 8)
    back = unpack_optimizer(packed)
    assert torch.equal(back["state"][0]["exp_avg"], moments)
    assert torch.equal(back["state"][1]["exp_avg"], torch.ones(4))
    assert back["param_groups"] == state["param_groups"]
