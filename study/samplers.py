"""Samplers and pruners, built in one place with every option written out (Optuna 4 -> 5 changed defaults)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import optuna

from study.space import grid_values

SAMPLERS = ("tpe", "random", "grid", "qmc", "gp", "cmaes")
PRUNERS = ("median", "successive_halving", "hyperband", "patient", "none")


@dataclass(frozen=True)
class SamplerConfig:
    name: str = "tpe"
    n_startup_trials: int = 8
    multivariate: bool = True
    constant_liar: bool = True  # parallel workers do not all pick the same point

    def __post_init__(self) -> None:
        if self.name not in SAMPLERS:
            raise ValueError(f"unknown sampler {self.name!r}; expected one of {SAMPLERS}")


@dataclass(frozen=True)
class PrunerConfig:
    name: str = "median"
    n_startup_trials: int = 4
    n_warmup_steps: int = 1
    min_resource: int = 1
    reduction_factor: int = 3
    patience: int = 1  # for 'patient': epochs without improvement tolerated before median pruning applies

    def __post_init__(self) -> None:
        if self.name not in PRUNERS:
            raise ValueError(f"unknown pruner {self.name!r}; expected one of {PRUNERS}")


def build_sampler(
    config: SamplerConfig, *, seed: int, search_space: dict[str, dict[str, Any]] | None = None
) -> optuna.samplers.BaseSampler:
    """``seed`` must differ between workers of one study, or they propose the same points."""
    if config.name == "tpe":
        return optuna.samplers.TPESampler(
            n_startup_trials=config.n_startup_trials,
            multivariate=config.multivariate,
            # the space is conditional (study.space.ONLY_FOR): one model per branch; group needs multivariate
            group=config.multivariate,
            constant_liar=config.constant_liar,
            seed=seed,
        )
    if config.name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if config.name == "qmc":
        return optuna.samplers.QMCSampler(qmc_type="sobol", scramble=True, seed=seed,
                                          warn_independent_sampling=False)
    if config.name == "gp":
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=config.n_startup_trials,
                                         warn_independent_sampling=False)
    if config.name == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed, n_startup_trials=config.n_startup_trials,
                                            warn_independent_sampling=False)
    if not search_space:
        raise ValueError("the grid sampler needs a search space")
    return optuna.samplers.GridSampler(grid_values(search_space), seed=seed)


def build_pruner(config: PrunerConfig, *, max_epochs: int) -> optuna.pruners.BasePruner:
    if config.name == "none":
        return optuna.pruners.NopPruner()
    median = optuna.pruners.MedianPruner(
        n_startup_trials=config.n_startup_trials, n_warmup_steps=config.n_warmup_steps, interval_steps=1
    )
    if config.name == "median":
        return median
    if config.name == "patient":
        return optuna.pruners.PatientPruner(median, patience=config.patience, min_delta=0.0)
    if config.name == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=config.min_resource, reduction_factor=config.reduction_factor,
            min_early_stopping_rate=0
        )
    return optuna.pruners.HyperbandPruner(
        min_resource=config.min_resource, max_resource=max_epochs, reduction_factor=config.reduction_factor
    )
