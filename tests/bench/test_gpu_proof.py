"""``bench/gpu_proof.py --smoke``: every step of the GPU proof runs on the CPU and ends in one table."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_gpu_proof_smoke_prints_one_row_per_step(tmp_path: Path) -> None:
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    proc = subprocess.run([sys.executable, "bench/gpu_proof.py", "--smoke", "--out", str(tmp_path / "proof")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    table = proc.stdout[proc.stdout.index("| step | status |"):]
    rows = {line.split(" | ")[0].lstrip("| "): line.split(" | ")[1] for line in table.splitlines()[2:]
            if line.startswith("| ")}
    assert rows["a. pytest -m cuda"] == "ok" and "skipped" in table  # the cuda tests skip on the CPU
    assert rows["b. throughput"] == "ok" and "ratio " in table
    assert rows["b. throughput --compile"] == "skipped"
    assert rows["c. study"] == "ok" and "trials/min" in table
    homedepot = ROOT.parent / "shared" / "data" / "homedepot" / "train.csv.zip"
    assert rows["d. quality (Home Depot)"] == ("ok" if homedepot.is_file() else "skipped")
    assert (tmp_path / "proof" / "c_study.log").is_file() and "total " in table
