"""`study data check` and `study run` refuse the same files with the same paragraph and exit code 2: a file
that check calls OK is one run accepts."""

from __future__ import annotations

import re

import pytest

from study.cli import main
from tests.messages import assert_not_says, assert_says

REFUSED = {
    "single-query": "query,title,label\nred shoe,Red shoe,3\nred shoe,Blue boot,0\nred shoe,Red sock,1\n",
    "one-label": "query,title,label\nshoe,Shoe,1\nshoe,Boot,1\nsofa,Sofa,1\nsofa,Boot,1\nlamp,Lamp,1\n"
                 "lamp,Boot,1\n",
    "one-label-per-query": "query,title,label\nshoe,Shoe,2\nshoe,Boot,2\nsofa,Sofa,0\nsofa,Boot,0\n"
                           "lamp,Lamp,1\nlamp,Boot,1\n",
    "percent-scale": "query,title,label\nshoe,Shoe,100\nshoe,Boot,0\nsofa,Sofa,40\nsofa,Boot,10\n"
                     "lamp,Lamp,70\nlamp,Boot,5\n",
    "no-text": "query,product_id,title,label\nshoe,1,,2\nshoe,2,,0\nsofa,3,,1\nsofa,4,,0\nlamp,5,,2\n"
               "lamp,6,,0\n",
}


def _error(err: str) -> str:
    assert_not_says(err, "Traceback")
    return re.sub(r"\s+", " ", err[err.index("error: "):]).strip()


@pytest.mark.parametrize("name", list(REFUSED))
def test_run_and_data_check_refuse_the_same_file_alike(tmp_path, capsys, name: str) -> None:
    path = tmp_path / f"{name}.csv"
    path.write_text(REFUSED[name])
    assert main(["data", "check", str(path)]) == 2
    checked = _error(capsys.readouterr().err)
    database = tmp_path / "s.db"
    assert main(["run", "--data", str(path), "--storage", f"sqlite:///{database}", "--n-trials", "1",
                 "--device", "cpu"]) == 2
    assert _error(capsys.readouterr().err) == checked
    assert_says(checked, str(path))
    assert not database.exists()  # refused before any study was created


def test_run_and_data_check_merge_repeated_judgments_with_the_same_warning(tmp_path, capsys,
                                                                           tiny_bert) -> None:
    words = ["red", "blue", "green", "shoe", "boot", "sofa", "lamp", "table", "chair", "mug", "cup", "desk"]
    rows = [f"{words[q % 12]} {words[(q * 5 + 3) % 12]} {q},{words[(q + i) % 12]} {words[(q + 2 * i) % 12]} "
            f"{i},{(6 - i) % 4}" for q in range(24) for i in range(6)]
    path = tmp_path / "pairs.csv"
    path.write_text("query,title,label\n" + "\n".join([*rows, rows[0][:-1] + "0", rows[7]]) + "\n")
    assert main(["data", "check", str(path)]) == 0
    report = capsys.readouterr().out
    assert_says(report, "pairs 144, queries 24")  # 146 rows, two of them repeats
    start = report.index("warning: 2 (query, product) pair(s) judged more than once")
    warning = report[start:].split("\nrun a study on it:")[0].split("\nwarning: ")[0]
    warning = warning.removeprefix("warning: ")
    assert main(["run", "--data", str(path), "--storage", f"sqlite:///{tmp_path / 's.db'}", "--n-trials", "1",
                 "--device", "cpu", "--set", "train.epochs=1", "--set", f"model.encoder={str(tiny_bert)!r}",
                 "--set", "model.max_length=24", "--set", "study.baselines=false",
                 "--set", f"study.runs_dir={str(tmp_path / 'runs')!r}"]) == 0
    assert_says(capsys.readouterr().err, f"warning: {path}: {warning}")
