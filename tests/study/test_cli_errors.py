"""The CLI turns bad input into one paragraph and exit code 2, never a traceback."""

from __future__ import annotations

import shlex
import subprocess
import sys

import optuna
import pytest

from study.cli import main
from tests.messages import assert_not_says, assert_says

GOOD = "query_id,query,product_id,title,price,label\n" + "\n".join(
    f"q{q},query {q},p{q}{i},title {q} {i},{10 + i},{i % 3}" for q in range(4) for i in range(3)
)


def write(tmp_path, text: str, name: str = "pairs.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_data_check_summarises_a_good_file(tmp_path, capsys) -> None:
    # 4 queries judging 3, 3, 4 and 5 products; label 0 four times, 1 eight times, 3 three times, no 2
    label_of_position = {0: 0, 1: 1, 2: 1, 3: 3, 4: 3}
    rows = [(q, i) for q, n in enumerate([3, 3, 4, 5]) for i in range(n)]
    text = "query_id,query,product_id,title,price,label\n" + "\n".join(
        f"q{q},query {q},p{q}{i},title {q} {i},{10 + i},{label_of_position[i]}" for q, i in rows)
    (tmp_path / "my data").mkdir()
    path = write(tmp_path / "my data", text, "judged pairs.csv")
    assert main(["data", "check", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith(": OK")
    assert lines[1:7] == [
        "  pairs 15, queries 4, products 15",
        "  judged products per query: min 3, median 3.5, max 5",
        "  labels: 0: 4 (27%), 1: 8 (53%), 3: 3 (20%)",
        "  text fields: title",
        "  feature fields: price",
        "run a study on it:",
    ]
    # the command to copy names this very file, quoted for the shell (its folder has a space)
    assert len(lines) == 8 and shlex.split(lines[7]) == ["study", "run", "--data", str(path)]


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        (GOOD.replace(",label", ",stars"), ["label"]),
        (GOOD.replace("q1,query 1,p10,title 1 0,10,0", "q1,query 1,p10,title 1 0,10,"), ["label", "row"]),
        (GOOD.replace("q2,query 2,p21,title 2 1,11,1", "q2,query 2,p21,title 2 1,11,high"), ["label", "row"]),
        (GOOD.replace("q3,query 3,p30", "q3,,p30"), ["query", "row"]),
        (GOOD + "\nq9,query 9,p90,title 9,10,1", ["single", "q9"]),
    ],
    ids=["missing-label-column", "nan-label", "non-numeric-label", "empty-query", "single-item"],
)
def test_bad_files_exit_2_with_a_message_naming_column_and_rows(tmp_path, capsys, text, needles) -> None:
    path = write(tmp_path, text)
    assert main(["data", "check", str(path)]) == 2
    err = capsys.readouterr().err
    assert_says(err, str(path))
    assert_says(err.lower(), *(needle.lower() for needle in needles))
    assert_not_says(err, "Traceback")


def test_unreadable_file_and_unknown_adapter(tmp_path, capsys) -> None:
    assert main(["data", "check", str(tmp_path / "nope.csv")]) == 2
    assert_says(capsys.readouterr().err, "nope.csv")
    assert main(["data", "check", str(write(tmp_path, GOOD)), "--source", "bogus"]) == 2
    assert_says(capsys.readouterr().err, "bogus")


def test_run_with_a_bad_file_exits_2_from_a_real_process(tmp_path, repo_root) -> None:
    path = write(tmp_path, GOOD.replace(",label", ",stars"))
    proc = subprocess.run(
        [sys.executable, "-m", "study", "run", "--storage", f"sqlite:///{tmp_path / 's.db'}",
         "--set", "data.source=file", "--set", f"data.path={str(path)!r}", "--quiet"],
        check=False, capture_output=True, text=True, cwd=tmp_path,
        env={"PYTHONPATH": str(repo_root), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 2, proc.stderr
    assert_says(proc.stderr, "label")
    assert_not_says(proc.stderr, "Traceback")


def test_bad_config_key_and_missing_study(tmp_path, capsys) -> None:
    assert main(["run", "--set", "train.epochz=3", "--storage", f"sqlite:///{tmp_path / 's.db'}"]) == 2
    assert_says(capsys.readouterr().err, "epochz")
    optuna.create_study(study_name="other", storage=f"sqlite:///{tmp_path / 's.db'}")
    assert main(["status", "--name", "nope", "--storage", f"sqlite:///{tmp_path / 's.db'}"]) == 2
    err = capsys.readouterr().err
    assert_says(err, "no study named 'nope'", "other")


@pytest.mark.parametrize("command", [["status"], ["status", "--name", "x"], ["best", "--name", "x"]])
def test_a_mistyped_database_is_named_and_not_created(tmp_path, capsys, command) -> None:
    typo = tmp_path / "typo.db"
    assert main([*command, "--storage", f"sqlite:///{typo}"]) == 2
    err = capsys.readouterr().err
    assert_says(err, "There is no study database", str(typo))
    assert not typo.exists()


def test_every_command_and_option_has_help_and_an_example(capsys) -> None:
    from study.cli import HANDLERS, build_parser

    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    assert set(commands) == set(HANDLERS)  # every command has a handler, and every handler a parser
    check = commands["data"]._subparsers._group_actions[0].choices["check"]
    for name, sub in [*commands.items(), ("data check", check)]:
        undocumented = [a.dest for a in sub._actions
                        if a.help is None and a.dest not in ("help", "data_command")]
        assert undocumented == [], (name, undocumented)
        with pytest.raises(SystemExit) as exc:
            main([*name.split(), "--help"])
        assert exc.value.code == 0
        assert "example:\n  study " in capsys.readouterr().out, name


def test_version_and_a_bad_option_shows_the_commands_own_usage(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.startswith("study 0.")
    for args, usage in ((["run", "--bogus"], "usage: study run "),
                        (["status", "--bogus"], "usage: study status "),
                        (["data", "check", "x.csv", "--bogus"], "usage: study data check ")):
        with pytest.raises(SystemExit) as exc:
            main(args)
        err = capsys.readouterr().err
        assert exc.value.code == 2 and err.startswith(usage)
        assert_says(err, "unrecognized arguments: --bogus")


def test_log_file_keeps_every_message_and_quiet_keeps_the_console_short(tmp_path, capsys) -> None:
    log = tmp_path / "run.log"
    path = write(tmp_path, GOOD)
    assert main(["data", "check", str(path), "--log-file", str(log), "-q"]) == 0
    console = capsys.readouterr()
    assert_says(console.out, "OK")
    info = [line for line in log.read_text().splitlines() if " INFO study.data" in line]
    assert info  # what -q kept off the console is in the file, with times and the logger's name
    assert_not_says(console.err, *(line.split(": ", 1)[1] for line in info))


def test_data_check_lists_several_problems_one_paragraph_each(tmp_path, capsys) -> None:
    text = (GOOD.replace("q2,query 2,p21,title 2 1,11,1", "q2,query 2,p21,title 2 1,11,high")
            + "\nq9,query 9,p90,title 9,10,1")
    assert main(["data", "check", str(write(tmp_path, text))]) == 2
    err = capsys.readouterr().err
    lines = err.strip().split("\n")
    starts = [i for i, line in enumerate(lines) if line[:3] in ("1. ", "2. ")]
    assert err.startswith("error: ") and len(starts) == 2
    assert_says("\n".join(lines[:starts[0]]), f"{tmp_path / 'pairs.csv'}: 2 problems.")
    assert_says("\n".join(lines[starts[0]:starts[1]]), "label")
    assert_says("\n".join(lines[starts[1]:]), "single")
    # each problem wrapped, its lines after the first indented
    assert all(line.startswith("   ") for line in lines[starts[0]:] if line[:3] not in ("1. ", "2. "))
    assert_not_says(err, "Traceback")
