"""``study export``: the best trial as a self-contained model directory (``study.export``)."""

from __future__ import annotations

import argparse

from study.cli.base import Command, add_storage, add_study_name


class Export(Command):
    name = "export"
    help = ("Write the best trial as a self-contained model directory: safetensors weights, tokenizer, "
            "feature scaler, config, metrics and a model card.")
    example = ("study export shoes-v3 --out models/shoes-v3\n"
               "  study export shoes-v3 --out models/shoes-v3-full --retrain   # refit on train + "
               "validation")
    training = True

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        add_study_name(parser)
        add_storage(parser)
        parser.add_argument("--out", required=True,
                            help="directory to write (it must not exist, unless --force)")
        parser.add_argument("--retrain", action="store_true",
                            help="first refit the best config on train + validation for its best epoch count")
        parser.add_argument("--device", default="auto", help="device for --retrain (default: %(default)s)")
        parser.add_argument("--force", action="store_true",
                            help="replace an existing exported model at --out")

    def take_action(self, args: argparse.Namespace) -> int:
        from pathlib import Path  # torch: on use, never for --help

        from study.export.model_dir import export_best
        from study.runtime.studies import load_existing

        study = load_existing(args.name, args.storage)
        metrics = export_best(study, out=Path(args.out), retrain=args.retrain, device=args.device,
                              force=args.force)
        metric = metrics["objective"]
        splits = (("validation", metrics.get("validation")), ("test", metrics.get("test")))
        shown = [f"{split} {metric} {m[metric]:.4f}" for split, m in splits if m]
        if metrics.get("retrained"):
            shown.append(f"test after retraining {metrics['retrained']['test'][metric]:.4f}")
        print(f"exported trial {metrics['trial']} of {args.name!r} to {args.out}"
              + (f" ({', '.join(shown)})" if shown else ""))
        print(f"use it: study rank --model {args.out} --input candidates.csv --output ranked.csv")
        return 0


COMMAND = Export()
