"""A fleet of workers on one study, for ``bench/scale.py`` and ``tests/study/test_scale.py``: each worker a
process forked from the caller, running the project's ``run_worker`` (or plain Optuna ``ask``/``tell``) with a
stub objective; what they measured, summed up with what the database holds afterwards."""

from __future__ import annotations

import gc
import json
import math
import multiprocessing as mp
import os
import resource
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import optuna

EPOCHS, EPOCH_S = 3, 0.5


def bench_config(url: str, name: str, n_trials: int, runs_dir: str) -> Any:
    from study.config import build_config

    return build_config({"study": {"name": name, "n_trials": n_trials, "runs_dir": runs_dir},
                         "storage": {"url": url, "heartbeat_interval": 5}}, profile="cpu-demo")


def stub_objective(config: Any) -> Any:
    """The ``cpu-demo`` space sampled as the real objective samples it; 3 epochs of 0.5 s, each reported and
    checked for pruning; a value that depends on the parameters (so TPE and the pruner have work to do)."""
    from study.space import suggest

    def objective(trial: optuna.trial.Trial) -> float:
        fixed = {"model.architecture": config.model.architecture, "model.variant": config.model.variant}
        params = suggest(trial, config.search, fixed=fixed)
        value = (hash(json.dumps(params, sort_keys=True, default=str)) % 1000) / 1000
        for epoch in range(EPOCHS):
            time.sleep(EPOCH_S)
            trial.report(value * (epoch + 1) / EPOCHS, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"epoch {epoch}")
        return value

    return objective


def _memory() -> dict[str, float]:
    out = {}
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("Rss", "Pss", "Private_Clean", "Private_Dirty"):
            out[key] = int(value.split()[0]) / 1024
    return {"rss_mb": out["Rss"], "uss_mb": out["Private_Clean"] + out["Private_Dirty"]}


def _timed(samples: list[float], fn: Any) -> Any:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            samples.append(time.perf_counter() - start)
    return wrapper


def worker_process(url: str, name: str, index: int, n_trials: int, out: str, plain: bool) -> None:
    """One worker: the project's ``run_worker`` (or plain Optuna), its timings written to ``out``."""
    from study.runtime import worker
    from study.storage import claims

    result: dict[str, Any] = {"errors": [], "claims": [], "slots": []}
    try:
        config = bench_config(url, name, n_trials, str(Path(out).parent / "runs"))
        if plain:
            _plain_optuna(config, result)
        else:
            worker.claim_trial = _timed(result["claims"], worker.claim_trial)
            claims.claim_slot = _timed(result["slots"], claims.claim_slot)
            worker.run_worker(config, worker_index=index + 1, objective_factory=stub_objective)
            result.update(lock_waits=claims.TIMINGS.waits, lock_holds=claims.TIMINGS.holds)
    except BaseException as exc:  # noqa: BLE001 - reported, counted as a worker that quit
        result["errors"].append(f"{type(exc).__name__}: {str(exc)[:300]}")
    result.update(_memory())
    Path(out).write_text(json.dumps(result))
    os._exit(1 if result["errors"] else 0)


def _plain_optuna(config: Any, result: dict[str, Any]) -> None:
    from study.samplers import build_pruner, build_sampler

    storage = optuna.storages.RDBStorage(config.storage.url)
    study = optuna.load_study(study_name=config.study.name, storage=storage,
                              sampler=build_sampler(config.sampler, seed=os.getpid(),
                                                    search_space=config.search),
                              pruner=build_pruner(config.pruner, max_epochs=EPOCHS))
    objective = stub_objective(config)
    while sum(t.state.is_finished() and t.state.name != "FAIL" for t in study.get_trials(deepcopy=False)) \
            < config.study.n_trials:
        start = time.perf_counter()
        trial = study.ask()
        result["claims"].append(time.perf_counter() - start)
        try:
            study.tell(trial, objective(trial))
        except optuna.TrialPruned:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)


def _connections(url: str, stop: threading.Event, seen: list[int]) -> None:
    import sqlalchemy

    engine = sqlalchemy.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as conn:
        while not stop.wait(0.5):
            seen.append(conn.execute(sqlalchemy.text(
                "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
                "AND pid <> pg_backend_pid()")).scalar_one())
            conn.commit()
    engine.dispose()


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_fleet(db_url: str, worker_url: str, n_workers: int, n_trials: int, *, plain: bool = False,
              name: str | None = None) -> dict[str, Any]:
    """``n_workers`` processes on one new study of ``n_trials``; what they measured, summed up."""
    name = name or f"{'plain' if plain else 'scale'}-{n_workers}-{time.time_ns()}"
    storage = optuna.storages.RDBStorage(db_url.replace("postgresql://", "postgresql+psycopg://"))
    optuna.create_study(study_name=name, storage=storage, direction="maximize")
    storage.engine.dispose()
    folder = Path(tempfile.mkdtemp(prefix="study-scale-"))
    stop, seen = threading.Event(), []
    monitor = threading.Thread(target=_connections, args=(db_url, stop, seen), daemon=True)
    monitor.start()
    ctx = mp.get_context("fork")
    gc.freeze()  # what this process loaded stays shared with the forks (no collection writes to it)
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.time()
    procs = [ctx.Process(target=worker_process,
                         args=(worker_url, name, i, n_trials, str(folder / f"{i}.json"), plain))
             for i in range(n_workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    wall = time.time() - start
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    stop.set()
    monitor.join()
    results = [json.loads(f.read_text()) for f in sorted(folder.glob("*.json"))]
    row = summarise(db_url, name, n_trials, n_workers, procs, results, wall, seen, plain)
    row["worker_cpu_s_per_trial"] = cpu / max(1, row["finished"] + row["fail"])
    return row


def summarise(db_url: str, name: str, n_trials: int, n_workers: int, procs: list[Any],
              results: list[dict[str, Any]], wall: float, seen: list[int], plain: bool) -> dict[str, Any]:
    storage = optuna.storages.RDBStorage(db_url.replace("postgresql://", "postgresql+psycopg://"))
    trials = optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)
    storage.engine.dispose()
    states = {s: sum(t.state.name == s for t in trials) for s in ("COMPLETE", "PRUNED", "FAIL", "RUNNING",
                                                                      "WAITING")}
    finished = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    span = (max(t.datetime_complete for t in finished) - min(t.datetime_start for t in finished)
            ).total_seconds() if finished else float("nan")
    claims = [c for r in results for c in r["claims"]]
    slots = [c for r in results for c in r.get("slots", [])]
    holds = [c for r in results for c in r.get("lock_holds", [])]
    waits = [c for r in results for c in r.get("lock_waits", []) if not math.isnan(c)]  # NaN: in the server
    errors = [e for r in results for e in r["errors"]]
    return {
        "mode": "plain optuna" if plain else "run_worker", "workers": n_workers, "n_trials": n_trials,
        "finished": len(finished), "exact": len(finished) == n_trials and not states["RUNNING"]
        and not states["WAITING"], **{s.lower(): n for s, n in states.items()},
        "claim_median_s": _pct(claims, 0.5), "claim_p95_s": _pct(claims, 0.95),
        "claim_max_s": max(claims or [0]),
        "slot_median_s": _pct(slots, 0.5), "slot_p95_s": _pct(slots, 0.95), "slot_max_s": max(slots or [0]),
        "lock_wait_median_s": _pct(waits, 0.5), "lock_hold_median_s": _pct(holds, 0.5),
        "lock_hold_p95_s": _pct(holds, 0.95), "lock_held_share": sum(holds) / span if span else None,
        "finished_per_s": len(finished) / span if span else None, "span_s": span, "wall_s": wall,
        "max_connections_seen": max(seen or [0]), "connections_per_worker": max(seen or [0]) / n_workers,
        "errors": len(errors), "error_samples": errors[:3],
        "quit": sum(p.exitcode != 0 for p in procs) + (n_workers - len(results)),
        "rss_mb_median": statistics.median(r["rss_mb"] for r in results) if results else None,
        "uss_mb_median": statistics.median(r["uss_mb"] for r in results) if results else None,
    }


def fits_in_memory(n_workers: int, uss_mb: float) -> bool:
    """Warn (and say no) where ``n_workers`` more processes would not fit in the memory available now."""
    available = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                         if line.startswith("MemAvailable"))) / 1024
    need = n_workers * uss_mb * 1.3 + 1024  # their private memory, a margin, and the server
    if need > available:
        print(f"warning: {n_workers} workers need about {need / 1024:.1f} GiB ({uss_mb:.0f} MiB private "
              f"each, measured) and {available / 1024:.1f} GiB is available: skipped", flush=True)
        return False
    return True
