"""What the benchmarks share: the machine description, shop-length synthetic pairs and small helpers.

Benchmarks print numbers; they are not timed tests. Every result carries the machine it was taken on.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python bench/x.py` from the repository root
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from data.schema import JudgedPairs  # noqa: E402
from data.synthetic import generate_catalogue  # noqa: E402

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
    """CPU model and cores, load average, GPU name, library versions and the date: stored with every number."""
    import transformers

    info = {
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": f"{cpu_model()}, {os.cpu_count()} cores (torch threads {torch.get_num_threads()})",
        "load_average": load_average(),
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


def write_json(path: Path, payload: dict) -> None:
    path.write_text(json.dumps(payload, indent=2, default=float) + "\n")


def percent(x: float) -> str:
    return f"{100.0 * x:.1f}%"


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)
