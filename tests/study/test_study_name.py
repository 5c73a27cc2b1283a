"""Every command that acts on a study takes it the same way: a positional NAME, with ``--name`` kept as an
alias; both at once must agree."""

from __future__ import annotations

import optuna
import pytest

from study.cli import HANDLERS, build_parser, main
from study.cli.base import resolve_study_name
from tests.messages import assert_says

EXTRA = {"export": ["--out", "x"]}  # what else a command requires
# compare takes several NAMEs; proxy serves a whole database
NOT_ON_A_STUDY = {"list", "dashboard", "data", "rank", "compare", "cache", "proxy"}


def _parse(argv: list[str]):
    args, extra = build_parser(argv).parse_known_args(argv)
    assert not extra, extra
    resolve_study_name(args, args.own_parser)
    return args


@pytest.mark.parametrize("command", sorted(set(HANDLERS) - NOT_ON_A_STUDY))
def test_the_study_is_a_positional_name_or_the_name_option(command) -> None:
    extra = EXTRA.get(command, [])
    assert _parse([command, "shoes-v3", *extra]).name == "shoes-v3"
    assert _parse([command, "--name", "shoes-v3", *extra]).name == "shoes-v3"
    assert _parse([command, "shoes-v3", "--name", "shoes-v3", *extra]).name == "shoes-v3"
    with pytest.raises(SystemExit):
        _parse([command, "a", "--name", "b", *extra])


def test_compare_takes_names_positionally_too() -> None:
    assert _parse(["compare", "a", "b"]).names == ["a", "b"]


def test_best_and_status_answer_to_a_positional_name(tmp_path, capsys) -> None:
    db = f"sqlite:///{tmp_path / 'studies.db'}"
    study = optuna.create_study(study_name="s", storage=db, direction="maximize")
    study.set_user_attr("config", {"study": {"n_trials": 2, "metric": "ndcg@10"}})
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    assert main(["best", "s", "--storage", db]) == 0
    assert_says(capsys.readouterr().out, "best trial")
    assert main(["status", "s", "--storage", db]) == 0
    assert_says(capsys.readouterr().out, "study 's'", "finished 2/2")


def test_a_file_given_as_the_run_name_is_refused_pointing_at_data(tmp_path, capsys) -> None:
    path = tmp_path / "pairs.csv"
    path.write_text("query,title,label\n")
    assert main(["run", str(path)]) == 2
    assert_says(capsys.readouterr().err, "is a file", f"study run --data {path}")
