"""Many workers on one study: the project's real worker loop (``run_worker``) against its own PostgreSQL.

Each worker is a process forked from this one, running ``run_worker`` with a stub objective: the ``cpu-demo``
search space, TPE multivariate with the median pruner, 3 epochs of 0.5 s each reported and checked with
``should_prune``. Beside it, plain Optuna (``ask``/``tell``, no lock) on the same database. Printed per fleet
(the fleet itself is ``bench/fleet.py``): exact totals, claim latency (median, p95, max; the slot claim alone
and the whole `claim_trial`), lock wait and hold, finished trials per second, connections per worker
(the most seen in ``pg_stat_activity``), errors, workers that quit, memory per worker (RSS and its private
part).

    python bench/scale.py          # 8, 32, 100, 200 workers, plain Optuna at 8, a 3,000-trial join
    python bench/scale.py --workers 4 --trials 12 --plain '' --join 0
    python bench/scale.py --workers 100 --grpc  # through `study proxy` (Optuna's gRPC storage proxy)
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python bench/scale.py` from the repository root
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import optuna

from bench.fleet import bench_config, fits_in_memory, run_fleet, worker_process
from bench.postgres import postgres


def join_large_study(db_url: str, n_existing: int) -> dict[str, Any]:
    """One worker joins a study that already has ``n_existing`` finished trials: its first claim (the slot
    alone, and the whole `claim_trial`), and its start up to that claim."""
    from study.space import suggest

    name = f"join-{n_existing}-{time.time_ns()}"
    config = bench_config(db_url, name, n_existing + 1, tempfile.mkdtemp(prefix="study-scale-"))
    storage = optuna.storages.RDBStorage(db_url.replace("postgresql://", "postgresql+psycopg://"))
    target = optuna.create_study(study_name=name, storage=storage, direction="maximize")
    memory = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    fixed = {"model.architecture": config.model.architecture, "model.variant": config.model.variant}
    memory.optimize(lambda t: len(json.dumps(suggest(t, config.search, fixed=fixed))) / 100,
                    n_trials=n_existing)
    start = time.time()
    target.add_trials(memory.trials)
    print(f"  {n_existing} finished trials written in {time.time() - start:.0f} s", flush=True)
    storage.engine.dispose()
    out = Path(tempfile.mkdtemp(prefix="study-scale-")) / "join.json"
    proc = mp.get_context("fork").Process(target=worker_process,
                                          args=(db_url, name, 0, n_existing + 1, str(out), False))
    begun = time.time()
    proc.start()
    proc.join()
    result = json.loads(out.read_text())
    return {"existing": n_existing, "first_slot_claim_s": result["slots"][0] if result["slots"] else None,
            "first_whole_claim_s": result["claims"][0] if result["claims"] else None,
            "process_wall_s": time.time() - begun, "errors": result["errors"]}


def start_proxy(db_url: str) -> tuple[subprocess.Popen, str]:
    """``study proxy`` in a process of its own; its grpc:// URL once it answers."""
    from bench.postgres import free_port

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "study", "proxy", "--storage", db_url, "--host",
                             "127.0.0.1", "--port", str(port)], cwd=ROOT)
    url = f"grpc://127.0.0.1:{port}"
    storage = optuna.storages.GrpcStorageProxy(host="127.0.0.1", port=port)
    storage.wait_server_ready(timeout=60)
    storage.close()
    return proc, url


ROW = ("{mode:<13} {workers:>4} {exact!s:>5} {finished:>4}/{n_trials:<4} {fail:>3} {claim_median_s:>7.3f} "
       "{claim_p95_s:>7.3f} {claim_max_s:>7.2f} {slot_median_s:>7.3f} {slot_p95_s:>7.3f} "
       "{lock_hold_median_s:>7.4f} {finished_per_s:>6.2f} {connections_per_worker:>5.2f} {errors:>3} "
       "{quit:>3} {rss_mb_median:>6.0f} {uss_mb_median:>6.0f} {worker_cpu_s_per_trial:>5.2f}")
HEAD = ("mode          N    exact  done  fail claim50 claim95 claimmx  slot50  slot95 lockhold  fin/s "
        "conn/w err quit RSSMB USSMB cpu/t")


def _show(row: dict[str, Any]) -> None:
    print(ROW.format(**{k: (float("nan") if v is None else v) for k, v in row.items()}), flush=True)
    if row["error_samples"]:
        print("   errors:", row["error_samples"], flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", default="8,32,100,200", help="fleet sizes, comma-separated")
    parser.add_argument("--trials", type=int, default=0, help="trials per study (default: 3 per worker, "
                                                              "at least 48)")
    parser.add_argument("--plain", default="8", help="fleet sizes for plain Optuna ('' for none)")
    parser.add_argument("--join", type=int, default=3000, help="trials of the study a worker joins (0: skip)")
    parser.add_argument("--grpc", action="store_true", help="through `study proxy` instead of PostgreSQL")
    parser.add_argument("--json", help="write every result here too")
    args = parser.parse_args(argv)
    sizes = [int(n) for n in args.workers.split(",") if n]
    plain = {int(n) for n in args.plain.split(",") if n}
    rows: list[dict[str, Any]] = []
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    import study.runtime.worker  # noqa: F401 - torch and the rest loaded once, shared by every fork

    machine()

    with postgres(max_connections=max(sizes) + 30) as db_url:
        proxy, worker_url = start_proxy(db_url) if args.grpc else (None, db_url)
        print(HEAD, flush=True)
        uss = 150.0  # until measured
        try:
            for n in sizes:
                n_trials = args.trials or max(48, 3 * n)
                for is_plain in ([False, True] if n in plain else [False]):
                    if not fits_in_memory(n, uss):
                        continue
                    row = run_fleet(db_url, worker_url, n, n_trials, plain=is_plain)
                    row["backend"] = "grpc proxy" if args.grpc else "postgresql"
                    uss = max(uss if rows else 0, row["uss_mb_median"] or uss)
                    rows.append(row)
                    _show(row)
            if args.join:
                row = join_large_study(db_url, args.join)
                print(f"joining a {args.join}-trial study: first slot claim {row['first_slot_claim_s']:.3f} "
                      f"s, first whole claim {row['first_whole_claim_s']:.3f} s, process "
                      f"{row['process_wall_s']:.1f} s, errors {row['errors']}", flush=True)
                rows.append(row)
        finally:
            if proxy is not None:
                proxy.terminate()
                proxy.wait(timeout=30)
    machine()
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1, default=str))
    ours = [r for r in rows if r.get("mode") != "plain optuna"]
    return 0 if all(r.get("exact", True) and not r.get("quit") for r in ours) else 1


def machine() -> None:
    """The machine and its load, as bench/RESULTS.md records them."""
    for cmd in (["uptime"], ["nproc"], ["free", "-g"]):
        shown = subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.strip()
        print("$", " ".join(cmd), "\n" + shown, flush=True)


if __name__ == "__main__":
    sys.exit(main())
