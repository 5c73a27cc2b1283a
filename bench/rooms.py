"""How many "rooms" (modules of the package) one ``study run`` walks through: a call trace of a tiny run.

A *room* is a module of the ``study`` package; a *stay* is an unbroken run of calls inside one room (the
trace, reduced to the room of each Python function called, with consecutive repeats merged); a *return* is a
stay in a room already left once. Counted on the Optuna side (``study.*`` without ``study.data`` and
``study.models``, whose layout is not the question here), over the whole package, and by folder (a module
at the top of ``study/`` counts as its own folder). Only function calls count: module and class bodies that
run at import do not, nor other threads (heartbeats, the checkpoint writer).

    python bench/rooms.py            # a tiny study: 2 trials, 1 epoch, 24 queries, a 2-layer random BERT
    python bench/rooms.py --json     # the numbers as JSON
    python bench/rooms.py --trace    # also the sequence of stays (Optuna side)
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import sys
import tempfile
from collections import Counter
from itertools import pairwise
from pathlib import Path

TOML = """
[study]
name = "rooms"
n_trials = 2
runs_dir = "{folder}/runs"
device = "cpu"
[storage]
url = "sqlite:///{folder}/studies.db"
[sampler]
name = "random"
[pruner]
name = "none"
[data]
n_queries = 24
items_per_query = 6
[model]
encoder = "{encoder}"
max_length = 32
[train]
epochs = 1
batch_size = 16
[search]
"train.head_lr" = {{ low = 1e-3, high = 1e-2, log = true }}
"""


def trace_run(argv: list[str]) -> list[str]:
    """The room of every Python function called (main thread) while ``study`` runs ``argv``."""
    from study.cli import main

    rooms: list[str] = []

    def profile(frame, event, arg) -> None:
        if event != "call" or not frame.f_code.co_flags & inspect.CO_OPTIMIZED:
            return  # module and class bodies run at import: definitions, not calls
        name = frame.f_globals.get("__name__", "")
        if name == "study" or name.startswith("study."):
            rooms.append(name)

    sys.setprofile(profile)
    try:
        code = main(argv)
    finally:
        sys.setprofile(None)
    if code:
        raise SystemExit(f"study {' '.join(argv)} exited with {code}")
    return rooms


def stays(rooms: list[str]) -> list[str]:
    out: list[str] = []
    for room in rooms:
        if not out or out[-1] != room:
            out.append(room)
    return out


def count(rooms: list[str]) -> dict[str, object]:
    walk = stays(rooms)
    seen: set[str] = set()
    returns = 0
    for room in walk:
        returns += room in seen
        seen.add(room)
    top = Counter(room for i, room in enumerate(walk) if room in walk[:i])
    return {"rooms": len(seen), "stays": len(walk), "returns": returns,
            "moves": len({(a, b) for a, b in pairwise(walk)}),  # distinct doors walked through
            "most_returned": dict(top.most_common(8))}


def floor(room: str) -> str:
    """The folder a module lives in (``study.runtime.worker`` -> ``study.runtime``); a module at the top of
    ``study/`` is its own."""
    return ".".join(room.split(".")[:2])


def optuna_side(room: str) -> bool:
    return not room.startswith(("study.data", "study.models"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print the counts as JSON")
    parser.add_argument("--trace", action="store_true", help="also print the Optuna side's stays")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ["STUDY_CACHE_DIR"] = str(folder / "cache")
        from study.models.encoder import build_tiny_bert

        encoder = build_tiny_bert(folder / "bert", hidden_size=32, n_layers=2, n_heads=2,
                                  intermediate_size=64, seed=0)
        toml = folder / "rooms.toml"
        toml.write_text(TOML.format(folder=folder, encoder=encoder))
        rooms = trace_run(["run", "--config", str(toml), "-q"])
    side = [r for r in rooms if optuna_side(r)]
    result = {"optuna_side": count(side), "package": count(rooms), "optuna_side_folders": count(
        [floor(r) for r in side])}
    if args.trace:
        print(" -> ".join(r.removeprefix("study.") for r in stays([r for r in rooms if optuna_side(r)])))
    if args.json:
        print(json.dumps(result, indent=1))
        return
    for part, c in result.items():
        print(f"{part}: {c['rooms']} rooms, {c['stays']} stays, {c['returns']} returns, "
              f"{c['moves']} distinct moves; most returned to: {c['most_returned']}")


if __name__ == "__main__":
    main()
