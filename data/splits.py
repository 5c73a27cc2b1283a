"""Train / validation / test splits by query (no query on two sides), seeded; optional k-fold by query.

Both functions carve the same test set for the same ``seed`` and ``test_fraction``, so a k-fold study
and a plain one are scored on identical held-out queries. ``check_splits`` says whether the split a config
asks for leaves a study anything to measure.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from study.data.config import DataConfig
from study.data.schema import JudgedPairs

from study.errors import UserInputError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Splits:
    train: JudgedPairs
    val: JudgedPairs
    test: JudgedPairs


def _shuffled_queries(pairs: JudgedPairs, seed: int) -> np.ndarray:
    # Sorted first, so the split depends on the set of queries and the seed, not on the row order.
    queries = np.array(sorted(pairs.frame["query_id"].astype(str).unique()), dtype=object)
    return queries[np.random.default_rng(seed).permutation(len(queries))]


def _n_of(n: int, fraction: float, name: str) -> int:
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"{name} must be strictly between 0 and 1, got {fraction!r}")
    return max(1, round(n * fraction))


def split_by_query(pairs: JudgedPairs, *, val_fraction: float = 0.2, test_fraction: float = 0.2,
                   seed: int = 0) -> Splits:
    """Seeded split of the queries into train / val / test; every side gets at least one query."""
    queries = _shuffled_queries(pairs, seed)
    n = len(queries)
    n_test = _n_of(n, test_fraction, "test_fraction")
    n_val = _n_of(n, val_fraction, "val_fraction")
    if n - n_test - n_val < 1:
        raise UserInputError(
            f"{pairs.name}: {n} queries are too few to split into train, validation and test with "
            f"val_fraction={val_fraction} and test_fraction={test_fraction}; at least 3 queries are needed "
            "(and enough that training keeps some)."
        )
    test, val, train = queries[:n_test], queries[n_test:n_test + n_val], queries[n_test + n_val:]
    return Splits(train=pairs.subset(train), val=pairs.subset(val), test=pairs.subset(test))


def kfold_by_query(pairs: JudgedPairs, *, n_folds: int, fold: int, test_fraction: float = 0.2,
                   seed: int = 0) -> Splits:
    """A fixed test set, and fold ``fold`` of a k-fold split of the remaining queries as validation."""
    if n_folds < 2:
        raise ValueError(f"n_folds must be >= 2, got {n_folds=}")
    if not 0 <= fold < n_folds:
        raise ValueError(f"fold must be in [0, {n_folds - 1}], got {fold=}")
    queries = _shuffled_queries(pairs, seed)
    n_test = _n_of(len(queries), test_fraction, "test_fraction")
    rest = queries[n_test:]
    if len(rest) < n_folds:
        raise UserInputError(
            f"{pairs.name}: {len(queries)} queries leave {len(rest)} after the test set, too few for "
            f"{n_folds} folds; lower data.n_folds or use more queries."
        )
    folds = np.array_split(rest, n_folds)
    train = np.concatenate([f for i, f in enumerate(folds) if i != fold])
    return Splits(train=pairs.subset(train), val=pairs.subset(folds[fold]),
                  test=pairs.subset(queries[:n_test]))


def make_splits(pairs: JudgedPairs, cfg: DataConfig) -> Splits:
    """The split a config asks for: k-fold when ``cfg.n_folds`` else one seeded split."""
    if cfg.n_folds:
        return kfold_by_query(pairs, n_folds=cfg.n_folds, fold=cfg.fold, test_fraction=cfg.test_fraction,
                              seed=cfg.seed)
    return split_by_query(pairs, val_fraction=cfg.val_fraction, test_fraction=cfg.test_fraction,
                          seed=cfg.seed)



def _rankable(pairs: JudgedPairs) -> int:
    """Queries whose products carry at least two different labels: the only ones an order can score on."""
    return int((pairs.frame.groupby("query_id")["label"].nunique() > 1).sum())


FEW_QUERIES = 20  # rankable validation or test queries below which a study's differences are noise


def check_splits(pairs: JudgedPairs, cfg: DataConfig, *, source: str) -> list[str]:
    """Warnings about the split ``cfg`` asks for; a ``UserInputError`` when a study on it would be
    meaningless: too few queries to split, or no validation query that two orders could score differently."""
    n = pairs.n_queries
    if n < 3:
        first = pairs.frame.drop_duplicates("query_id")["query"].head(2).tolist()
        raise UserInputError(
            f"{source}: the data holds {'a single query' if n == 1 else f'only {n} queries'} "
            f"({', '.join(map(repr, first))}, column 'query'): a study trains on some queries, compares its "
            "trials on others (validation) and scores the best on yet others (test), so it needs at least 3 "
            "queries, and realistically dozens. Add judged queries."
        )
    splits = make_splits(pairs, cfg)
    notes = []
    val, test = _rankable(splits.val), _rankable(splits.test)
    if val == 0:
        raise UserInputError(
            f"{source}: none of the {splits.val.n_queries} validation queries has products judged at two "
            "different levels (column 'label'), so every trial would get the same validation score and the "
            "study would tune nothing. Add queries with graded judgements, or raise data.val_fraction."
        )
    if test == 0:
        notes.append(f"none of the {splits.test.n_queries} test queries has products judged at two different "
                     "levels: the best trial's test score will mean nothing. Add judged queries.")
    elif min(val, test) < FEW_QUERIES:
        # logged, not one of the data's warnings: a toy file is fine for trying the tool
        logger.warning("warning: %s: only %d validation and %d test queries can be ranked (products judged "
                       "at two levels or more): trials will score nearly alike and the test comparison "
                       "will be noise; a study needs at least %d of each, realistically hundreds of judged "
                       "queries.",
                       source, val, test, FEW_QUERIES)
    return notes
