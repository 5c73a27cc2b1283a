"""``study compare``: the stored test comparisons of several studies side by side, tuned minus tuned with a
paired interval where two studies stored per-query scores on the same test queries of the same data (their
stored ``dataset_fingerprint`` agrees); studies on different data are shown side by side, unpaired. No
torch."""

from __future__ import annotations

import argparse

from study.cli.base import Command, add_storage


class Compare(Command):
    name = "compare"
    help = ("Test metrics and baselines of several studies side by side, with paired intervals where they "
            "share test queries.")
    example = "study compare shoes-v3 shoes-v4      # test metrics side by side, paired intervals"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("names", nargs="+", metavar="NAME", help="two or more study names")
        add_storage(parser)

    def take_action(self, args: argparse.Namespace) -> int:
        # optuna: on use, never for --help
        from study.errors import UserInputError
        from study.runtime.attrs import study_attr
        from study.runtime.studies import load_existing
        from study.views import comparison_table, stored_comparison

        studies = [load_existing(name, args.storage) for name in args.names]
        for study in studies:
            if stored_comparison(study) is None:
                raise UserInputError(f"Study {study.study_name!r} has no test-split comparison yet (it is "
                                     "stored when `study run` finishes): run it to the end first.")
        metric, table = comparison_table(studies)
        per_query = {s.study_name: scores for s in studies if (scores := study_attr(s, "test_per_query"))}
        names = [s.study_name for s in studies]
        fingerprints = {s.study_name: study_attr(s, "dataset_fingerprint") for s in studies}
        print(comparison_text(metric, table, names))
        _print_pairs(names, per_query, metric, fingerprints)
        return 0


def comparison_text(metric: str, table: dict[str, dict[str, float]], names: list[str]) -> str:
    """The side-by-side table: every study's full name as a column header, ``-`` (explained below the table)
    where a study has no such row, e.g. behaviour only for a study whose data has no behaviour features."""
    first = max([len(f"test {metric}"), *map(len, table)]) + 2
    widths = [max(len(n), 6) + 2 for n in names]
    lines = [f"test {metric}".ljust(first) + "".join(n.rjust(w) for n, w in zip(names, widths, strict=True))]
    absent = False
    for label, values in table.items():
        cells = []
        for n, w in zip(names, widths, strict=True):
            absent |= n not in values
            cells.append((f"{values[n]:.4f}" if n in values else "-").rjust(w))
        lines.append(label.ljust(first) + "".join(cells))
    if absent:
        lines.append("-: not measured for that study (behaviour only needs behaviour features in the data; "
                     "an untuned default row needs trial 0 to differ from the best)")
    return "\n".join(lines)


def _print_pairs(names: list[str], per_query: dict[str, dict[str, float]], metric: str,
                 fingerprints: dict[str, str | None] | None = None) -> None:
    """One line per study after the first: the paired interval of their difference, or why there is none.
    Studies whose stored data fingerprints differ are never paired: the same query id in two data sets is
    not the same query, so their numbers stand side by side only."""
    import numpy as np  # with the metrics: on use only

    from study.models.metrics import paired_bootstrap_interval

    first = names[0]
    fingerprints = fingerprints or {}
    for other in names[1:]:
        mine, theirs = fingerprints.get(first), fingerprints.get(other)
        if mine and theirs and mine != theirs:
            print(f"{first} - {other}: no paired interval: the studies were run on different data (data "
                  f"fingerprints {mine} and {theirs}), so their test queries are not the same queries and "
                  "the numbers above are side by side, unpaired")
            continue
        if first not in per_query or other not in per_query:
            print(f"{first} - {other}: no paired interval (per-query test scores not stored for both)")
            continue
        shared = sorted(set(per_query[first]) & set(per_query[other]))
        if len(shared) < 2:
            print(f"{first} - {other}: no paired interval (the studies share {len(shared)} test queries)")
            continue
        a = np.array([per_query[first][q] for q in shared])
        b = np.array([per_query[other][q] for q in shared])
        mean, low, high = paired_bootstrap_interval(a, b, n_resamples=2000, seed=0)
        print(f"{first} - {other}: {mean:+.4f} [{low:+.4f}, {high:+.4f}] {metric} "
              f"on {len(shared)} shared test queries (95% paired bootstrap)")


COMMAND = Compare()
