"""What the benchmarks share: the machine description, shop-length synthetic pairs and small helpers.

Benchmarks print numbers; they are not timed tests. Every result carries the machine it was taken on.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import sys
from dataclasses import dataclass, field
from pathlib import Path

# Import this module before torch. On a CPU shared with other jobs, OpenMP threads that spin at every
# barrier lose their core to the other jobs and a step takes 3-5x longer; passive waiting avoids that.
# It applies to every pipeline of a benchmark alike (they share the process).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python bench/x.py` from the repository root
    sys.path.insert(0, str(ROOT))

from study.data.schema import JudgedPairs
from study.data.synthetic import generate_catalogue

WARM_STEPS = 5  # steps left out of the steady rate (torch.compile, cuBLAS / oneDNN set-up)
# Shop-length text: the query is about 5 tokens, these fields about 22 (title ~12, brand, category,
# colour with their field markers), a pair about 30 tokens with [CLS]/[SEP]. Description is left out:
# it would make every pair 60+ tokens, which is not what shop titles look like.
SHOP_TEXT_FIELDS = ("title", "brand", "category", "colour")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def load_average() -> str:
    try:
        one, five, fifteen = os.getloadavg()
        return f"{one:.2f} {five:.2f} {fifteen:.2f}"
    except OSError:
        return "n/a"


def machine(device: torch.device | None = None) -> dict[str, str]:
    """CPU model and cores, load average, GPU name, library versions and the date: stored with every
    number."""
    import transformers

    info = {
        "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": f"{cpu_model()}, {os.cpu_count()} cores (torch threads {torch.get_num_threads()})",
        "load_average": load_average(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
    }
    if device is not None and device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def print_machine(info: dict[str, str]) -> None:
    print("machine: " + "; ".join(f"{k} {v}" for k, v in info.items()))
    print("command: " + " ".join(["python", *sys.argv]))


def shop_pairs(*, n_queries: int, items_per_query: int = 10, seed: int = 0) -> JudgedPairs:
    """The synthetic catalogue with shop-length text only (see ``SHOP_TEXT_FIELDS``)."""
    pairs = generate_catalogue(n_queries=n_queries, items_per_query=items_per_query, seed=seed)
    return JudgedPairs(pairs.frame, SHOP_TEXT_FIELDS, pairs.feature_fields, name="synthetic-shop")


def steady_window(n_steps: int) -> tuple[int, int]:
    """The 1-based steps whose ends bound the steady window: after ``WARM_STEPS`` (at most a quarter)."""
    return min(WARM_STEPS, max(n_steps // 4, 1)), n_steps


def write_json(path: Path, payload: dict) -> None:
    path.write_text(json.dumps(payload, indent=2, default=float) + "\n")


def percent(x: float) -> str:
    return f"{100.0 * x:.1f}%"


@dataclass
class Run:
    """One pipeline's measured epoch and scoring pass over the same pairs."""

    name: str
    train_pairs: int
    train_real_tokens: int
    train_padded_tokens: int
    train_time_s: float  # the epoch's step loop
    score_pairs: int
    score_time_s: float
    step_pairs: list[int] = field(default_factory=list)  # pairs of each step after the first
    step_times: list[float] = field(default_factory=list)  # end-to-end seconds of those steps
    steady_pairs: int = 0  # pairs of the steps after the first few (compilation, allocator warm-up) ...
    steady_time_s: float = 0.0  # ... and their time, measured with a device sync at both ends

    @property
    def epoch_pairs_per_s(self) -> float:
        return self.train_pairs / self.train_time_s

    @property
    def median_step_pairs_per_s(self) -> float:
        """Median over steps of pairs/s: robust to other jobs taking the CPU for a few steps."""
        if not self.step_times:
            return self.epoch_pairs_per_s
        return float(np.median(np.asarray(self.step_pairs) / np.asarray(self.step_times)))

    @property
    def steady_pairs_per_s(self) -> float:
        """Pairs/s after the first few steps: what a long trial sees once compiled and warm (CUDA)."""
        return self.steady_pairs / self.steady_time_s if self.steady_time_s else self.epoch_pairs_per_s

    @property
    def score_pairs_per_s(self) -> float:
        return self.score_pairs / self.score_time_s
