"""``study status``: trial counts by state and fail reason, the best value and params, running trials and
their age, the stored test comparison; without ``--name``, ``study list``. No torch."""

from __future__ import annotations

import argparse

from study.cli.base import Command, add_storage, add_study_name


class Status(Command):
    name = "status"
    help = "Trial counts by state, the best value and params, running trials and their age."
    example = "study status shoes-v3\n  study status                      # every study in the storage"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        add_study_name(parser, default=None, help_="the study (default: list every study in the storage)")
        add_storage(parser)

    def take_action(self, args: argparse.Namespace) -> int:
        from optuna.trial import TrialState  # optuna: on use, never for --help

        from study.cli.listing import COMMAND as listing
        from study.runtime.attrs import trial_attr
        from study.runtime.liveness import process_gone
        from study.runtime.studies import load_existing, stored_config
        from study.runtime.trials import best_trial, counts
        from study.storage.urls import redact
        from study.views import age, metric_names, stored_comparison, values_line

        if not args.name:
            return listing.take_action(args)
        study = load_existing(args.name, args.storage)
        config = stored_config(study)
        c = counts(study)
        print(f"study {args.name!r} in {redact(args.storage)}")
        print(f"finished {c['FINISHED']}/{config.study.n_trials}: " + ", ".join(
            f"{s.lower()} {c[s]}" for s in ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")))
        reasons: dict[str, list[int]] = {}
        for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)):
            reasons.setdefault(str(t.user_attrs.get("fail_reason", "unknown")), []).append(t.number)
        for reason, numbers in sorted(reasons.items()):
            shown = ", ".join(map(str, numbers[:8])) + (", ..." if len(numbers) > 8 else "")
            print(f"  failed ({reason}): {len(numbers)} (trial {shown})")
        best = best_trial(study)
        if best is not None:
            print(f"best: trial {best.number}, val "
                  f"{values_line(best, metric_names(study, config.study.metric))}")
            for key, value in best.params.items():
                print(f"  {key} = {value!r}")
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            host, pid = trial_attr(t, "host", "?"), trial_attr(t, "pid", "?")
            gone = ("; its process is gone: the next run or worker marks it FAIL and retries it"
                    if process_gone(t) else "")
            print(f"running: trial {t.number} for {age(t.datetime_start)} on {host} (pid {pid}), "
                  f"epoch {max(len(t.intermediate_values) - 1, 0)}/"  # epoch 0 is the check before training
                  f"{t.params.get('train.epochs', config.train.epochs)}{gone}")
        comparison = stored_comparison(study)
        if comparison is not None:
            print(comparison.to_text())
        return 0


COMMAND = Status()
