"""``study run``, ``study worker`` and ``study data check``: the commands that read data (the run itself is
``study.runtime.session``; the read-only commands are ``study.show``)."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import shlex
import sys
from typing import Any

from study.data.config import DataConfig
from study.data.sources import load_dataset
from study.data.summary import check_file_report
from study.errors import UserInputError
from study.models.device import enable_fast_math
from study.runtime.attrs import study_attr
from study.runtime.preflight import device_for
from study.runtime.session import RunRequest, parse_column_maps, resolve_config, run_study, work
from study.runtime.studies import load_existing, stored_config
from study.runtime.trials import counts
from study.runtime.worker import worker_index_for_this_process
from study.toml_out import config_to_toml, toml_value
from study.workspace import prepare_workspace

logger = logging.getLogger(__name__)


def cmd_run(args: argparse.Namespace) -> int:
    request = RunRequest(**{f.name: getattr(args, f.name) for f in dataclasses.fields(RunRequest)})
    config, cuts = resolve_config(request)
    if args.print_config:
        print(config_to_toml(config), end="")
        return 0
    run_study(config, cuts=cuts, new=args.new, quiet=args.quiet)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    study = load_existing(args.name, args.storage)
    config = stored_config(study)
    changes: dict[str, Any] = {}
    if args.timeout is not None:
        changes["timeout"] = args.timeout
    if args.device is not None:
        changes["device"] = args.device
    config = dataclasses.replace(
        config,
        study=dataclasses.replace(config.study, **changes),
        storage=dataclasses.replace(config.storage, url=args.storage),
    )
    c = counts(study)
    if c["FINISHED"] >= config.study.n_trials and c["WAITING"] == 0:
        print(f"study {args.name!r} already has {c['FINISHED']}/{config.study.n_trials} finished trials: "
              f"nothing to do here (raise the target with `study run --name {args.name} --n-trials N`)",
              file=sys.stderr)
        return 0
    device = device_for(config.study.device)  # no CUDA here: one paragraph, exit 2
    enable_fast_math(device)  # TF32 matmuls on CUDA; nothing on the CPU
    ws = prepare_workspace(config, device)
    fingerprint = ws.pairs.fingerprint()
    if study_attr(study, "dataset_fingerprint") not in (None, fingerprint):
        raise UserInputError(
            f"This machine's copy of the data for study {args.name!r} differs from the one the study was "
            f"created with (fingerprint {fingerprint} vs {study_attr(study, 'dataset_fingerprint')}); "
            "not joining."
        )
    work(config, ws, worker_index=args.worker_index or worker_index_for_this_process(), quiet=args.quiet)
    return 0





def cmd_data(args: argparse.Namespace) -> int:
    columns = parse_column_maps(args.map)
    cfg = DataConfig.from_dict({"source": args.source or "auto", "path": args.path,
                                "products_path": args.products, "columns": columns})
    # the same checks as `study run`; the report lists the warnings
    pairs = load_dataset(cfg, log_warnings=False)
    print(check_file_report(pairs))
    print(f"run a study on it:\n  {_run_command(args, columns)}")
    return 0


def _run_command(args: argparse.Namespace, columns: dict[str, str]) -> str:
    """The ``study run`` command for the file ``study data check`` just read, with its --source and --map."""
    parts = ["study", "run", "--data", args.path]
    if args.source:
        parts += ["--source", args.source]
    for canonical, column in columns.items():
        parts += ["--map", f"{canonical}={column}"]
    if args.products:
        parts += ["--set", f"data.products_path={toml_value(args.products)}"]
    return " ".join(shlex.quote(p) for p in parts)
