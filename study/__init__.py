"""The Optuna side: config, search space, objective, storage, workers, CLI, report, export."""

__version__ = "0.1.0"
