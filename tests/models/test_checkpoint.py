"""The background checkpoint writer: what it writes is the state at submit time, and a failed write
surfaces."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from study.models.checkpoint import CheckpointWriter, load_checkpoint


def test_written_state_is_the_state_at_submit_time(tmp_path: Path) -> None:
    weight = torch.zeros(1000)
    best = {"w": torch.full((3,), 7.0)}
    writer = CheckpointWriter()
    writer.submit({"model": {"w": weight}, "step": [torch.tensor(1)]}, tmp_path / "last.ckpt",
                  keep={"epoch": 1, "best_state": best})
    weight += 5.0  # training goes on and updates the live tensor in place while the file is written
    writer.wait()
    ckpt = load_checkpoint(tmp_path / "last.ckpt")
    assert torch.equal(ckpt["model"]["w"], torch.zeros(1000)) and ckpt["epoch"] == 1
    assert torch.equal(ckpt["best_state"]["w"], best["w"]) and int(ckpt["step"][0]) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # no temporary file left behind


def test_next_submit_replaces_the_file_atomically(tmp_path: Path) -> None:
    writer = CheckpointWriter()
    for epoch in (1, 2, 3):
        writer.submit({"w": torch.full((10,), float(epoch))}, tmp_path / "last.ckpt", keep={"epoch": epoch})
    writer.wait()
    ckpt = load_checkpoint(tmp_path / "last.ckpt")
    assert ckpt["epoch"] == 3 and float(ckpt["w"][0]) == 3.0


def test_a_failed_write_is_raised_by_wait(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the checkpoint folder should be")
    writer = CheckpointWriter()
    writer.submit({"w": torch.zeros(2)}, blocker / "last.ckpt")
    with pytest.raises(OSError):
        writer.wait()
    writer.wait()  # reported once
