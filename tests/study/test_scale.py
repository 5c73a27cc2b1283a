"""``bench/scale.py`` in small: four workers of the project's real loop (``run_worker``, stub objective of 3
epochs of 0.5 s) on a PostgreSQL server the test starts, then through ``study proxy`` (Optuna's gRPC storage
proxy). Exact totals, no worker quits, at most one database connection per worker."""

from __future__ import annotations

import importlib.util

import pytest

from bench.fleet import run_fleet
from bench.postgres import NoPostgres, pgbouncer, postgres
from bench.scale import start_proxy

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture(scope="module")
def db_url():
    try:
        with postgres(max_connections=40) as url:
            yield url
    except NoPostgres as exc:
        pytest.skip(str(exc))


def _exact(row: dict) -> None:
    assert row["quit"] == 0 and row["errors"] == 0, row["error_samples"]
    assert row["finished"] == row["n_trials"] and row["exact"], row
    assert row["running"] == 0 and row["waiting"] == 0


def test_four_workers_on_postgresql_reach_the_exact_total_with_one_connection_each(db_url) -> None:
    import study.runtime.worker  # noqa: F401 - loaded once here, shared by the forked workers

    row = run_fleet(db_url, db_url, 4, 10)
    _exact(row)
    assert row["fail"] == 0  # nothing claimed past the target: no surplus trial
    assert 1 <= row["max_connections_seen"] <= 4, row  # one connection per worker, never two


@pytest.mark.skipif(importlib.util.find_spec("grpc") is None, reason="grpcio is not installed (extra: grpc)")
def test_four_workers_through_the_grpc_proxy_reach_the_exact_total(db_url) -> None:
    import study.runtime.worker  # noqa: F401

    proxy, url = start_proxy(db_url)
    try:
        row = run_fleet(db_url, url, 4, 8)
    finally:
        proxy.terminate()
        proxy.wait(timeout=30)
    _exact(row)


def test_four_workers_behind_pgbouncer_in_transaction_mode_share_two_server_connections(db_url) -> None:
    import study.runtime.worker  # noqa: F401

    try:
        with pgbouncer(db_url, pool_size=2) as pooled:
            row = run_fleet(db_url, pooled, 4, 10)
    except NoPostgres as exc:
        pytest.skip(str(exc))
    _exact(row)
    assert row["max_connections_seen"] <= 2 + 1, row  # the pool's two, and PgBouncer's own check
