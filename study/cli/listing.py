"""``study list``: one line per study in the storage: trial counts by state, best value, data, last
activity. No torch."""

from __future__ import annotations

import argparse

from study.cli.base import Command, add_storage


class Listing(Command):
    name = "list"
    help = "One line per study: trial counts by state, best value, data, last activity."
    example = "study list\n  study list --storage postgresql://user:pass@db-host/studies"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        add_storage(parser)

    def take_action(self, args: argparse.Namespace) -> int:
        import optuna  # optuna: on use, never for --help

        from study.runtime.attrs import study_attr
        from study.runtime.trials import best_trial, counts
        from study.storage.database import StorageConfig, open_storage
        from study.storage.urls import redact

        storage = open_storage(StorageConfig(url=args.storage), must_exist=True, writes=False)
        summaries = optuna.get_all_study_summaries(storage, include_best_trial=False)
        if not summaries:
            print(f"no studies in {redact(args.storage)}")
            return 0
        print(f"{'study':<24} {'complete':>8} {'pruned':>6} {'failed':>6} {'running':>7}  {'best':>8}  "
              f"{'data':<18} last activity")
        for summary in summaries:
            study = optuna.load_study(study_name=summary.study_name, storage=storage)
            trials = study.get_trials(deepcopy=False)
            c = counts(study)
            best = best_trial(study)
            data = (study_attr(study, "data_summary") or {}).get("name", "?")
            times = [t for tr in trials for t in (tr.datetime_complete, tr.datetime_start) if t is not None]
            last = f"{max(times):%Y-%m-%d %H:%M}" if times else "-"
            print(f"{summary.study_name:<24} {c['COMPLETE']:>8} {c['PRUNED']:>6} {c['FAIL']:>6} "
                  f"{c['RUNNING']:>7}  {(f'{best.values[0]:.4f}' if best else '-'):>8}  {str(data)[:18]:<18} "
                  f"{last}")
        return 0


COMMAND = Listing()
