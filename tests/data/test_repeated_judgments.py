"""Repeated judgments of one (query, product) pair (several raters, the same title from two sellers) are
merged into one row with one warning that counts them, by the rule ``data.duplicates`` names; ``error``
refuses such a file, naming the rows."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from study.data.config import DataConfig
from study.data.sources import check_file, load_dataset
from study.data.validate import validate_pairs

from study.cli import main
from study.errors import UserInputError
from tests.messages import assert_not_says, assert_says, says

# shoe/1 judged three times (3, 3, 1), sofa/2 twice alike (0, 0); clicks 4, 6, missing for shoe/1
TEXT = ("query,product_id,title,clicks,label\n"
        "shoe,1,Red shoe,4,3\nshoe,2,Boot,1,0\nsofa,3,Sofa,2,1\nsofa,2,Boot,1,0\nlamp,4,Lamp,5,2\n"
        "lamp,2,Boot,1,0\nshoe,1,Red shoe (seller B),6,3\nsofa,2,Boot,1,0\nshoe,1,Red shoe,,1\n")


def _write(tmp_path: Path, text: str = TEXT, name: str = "pairs.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _load(path: Path, **options: object):
    return load_dataset(DataConfig.from_dict({"path": str(path), **options}), log_warnings=False)


def _merge_warning(pairs) -> str:
    [warning] = [w for w in pairs.warnings if says(w, "judged more than once")]
    return warning


def test_repeats_are_merged_into_the_first_rows_place_with_one_warning_that_counts_them(tmp_path) -> None:
    pairs = _load(_write(tmp_path))
    frame = pairs.frame
    assert len(pairs) == 6 and not frame.duplicated(["query_id", "product_id"]).any()
    assert frame["product_id"].tolist() == ["1", "2", "3", "2", "4", "2"]  # where each pair first stood
    shoe = frame.iloc[0]
    assert shoe["label"] == pytest.approx(7 / 3)  # the mean of 3, 3 and 1
    assert shoe["clicks"] == 5.0  # the mean of 4 and 6, the missing value left out
    assert shoe["title"] == "Red shoe"  # the first row's text
    assert frame.iloc[3]["label"] == 0.0  # sofa/2: two rows that agree
    assert_says(_merge_warning(pairs), "2 (query, product) pair(s) judged more than once",
                "(rows 2, 5, 8, 9, 10;", "e.g. query 'shoe' with product '1'", "3 row(s) merged away",
                "1 of the repeated pairs had different labels", "data.duplicates = 'mean' (the mean label",
                "Behaviour features are averaged, the text is the first row's.")
    assert_not_says(_merge_warning(pairs), "no product_id column")


def test_agreeing_repeats_are_merged_and_counted_as_agreeing(tmp_path) -> None:
    text = "query,product_id,title,label\nshoe,1,Shoe,2\nshoe,2,Boot,0\nsofa,3,Sofa,1\nsofa,2,Boot,0\n" \
           "lamp,4,Lamp,1\nlamp,2,Boot,0\nshoe,1,Shoe,2\nshoe,2,Boot,0\n"
    pairs = _load(_write(tmp_path, text))
    assert len(pairs) == 6 and pairs.frame["label"].tolist() == [2, 0, 1, 0, 1, 0]
    assert_says(_merge_warning(pairs), "2 (query, product) pair(s) judged more than once",
                "2 row(s) merged away", "0 of the repeated pairs had different labels")


@pytest.mark.parametrize(("rule", "label", "says_how"), [
    ("mean", 7 / 3, "the mean label"), ("max", 3.0, "the highest label"),
    ("first", 3.0, "the first row's label"),
])
def test_disagreeing_labels_are_combined_by_the_rule(tmp_path, rule, label, says_how) -> None:
    pairs = _load(_write(tmp_path), duplicates=rule)
    assert pairs.frame.iloc[0]["label"] == pytest.approx(label)
    assert pairs.frame.iloc[0]["clicks"] == 5.0  # features are averaged whatever the label rule
    assert_says(_merge_warning(pairs), f"data.duplicates = {rule!r} ({says_how};")
    last = TEXT.replace("shoe,1,Red shoe,4,3", "shoe,1,Red shoe,4,0")  # 0, 3, 1: first 0, max 3, mean 4/3
    pairs = _load(_write(tmp_path, last, "last.csv"), duplicates=rule)
    assert pairs.frame.iloc[0]["label"] == pytest.approx({"mean": 4 / 3, "max": 3.0, "first": 0.0}[rule])


def test_the_error_rule_refuses_the_file_naming_the_rows_from_the_cli(tmp_path, capsys) -> None:
    path = _write(tmp_path)
    database = tmp_path / "s.db"
    assert main(["run", "--data", str(path), "--set", 'data.duplicates="error"', "--storage",
                 f"sqlite:///{database}", "--n-trials", "1", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert_says(err, f"{path}: duplicate (query_id, product_id) pairs in rows 2, 5, 8, 9, 10",
                "2 pair(s) judged more than once, 1 of them with conflicting labels",
                'data.duplicates = "error" refuses them')
    assert_not_says(err, "Traceback")
    assert not database.exists()  # refused before any study was created


def test_a_bad_rule_is_named(tmp_path, capsys) -> None:
    with pytest.raises(UserInputError) as info:
        DataConfig(duplicates="median")
    assert_says(info.value, "data.duplicates must be one of mean, max, first, error", "got 'median'")
    assert main(["run", "--data", str(_write(tmp_path)), "--set", 'data.duplicates="average"',
                 "--storage", f"sqlite:///{tmp_path / 's.db'}"]) == 2
    assert_says(capsys.readouterr().err, "data.duplicates must be one of", "got 'average'")


def test_a_three_column_file_with_a_title_judged_twice_passes_data_check_with_the_warning(tmp_path,
                                                                                           capsys) -> None:
    text = ("query,title,label\nred shoe,Acme red running shoe,3\nred shoe,Blue leather boot,0\n"
            "red shoe,Acme red running shoe,2\ngrey sofa,Grey three-seat sofa,3\ngrey sofa,Sofa cover,1\n"
            "coffee mug,Stoneware coffee mug,3\ncoffee mug,Travel cup,1\n")
    path = _write(tmp_path, text)
    assert main(["data", "check", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("pairs: OK with")
    assert_says(out, "pairs 6, queries 3, products 6",  # the merged rows are what a study uses
                "warning: 1 (query, product) pair(s) judged more than once (rows 2, 4;",
                "e.g. query 'red shoe' with title 'Acme red running shoe'", "1 row(s) merged away",
                "1 of the repeated pairs had different labels",
                "no product_id column, so the same product text is the same product")
    assert out.startswith(check_file(path) + "\n")  # the one check `run` makes too, then the command
    pairs = _load(path)
    assert pairs.frame.iloc[0]["label"] == 2.5
    assert_not_says(out, "between whole grades", "Behaviour features")  # 2.5 is a mean, not a typo


def test_a_query_whose_only_product_is_judged_twice_is_a_single_item_query(tmp_path) -> None:
    text = "query,title,label\nshoe,Shoe,3\nshoe,Boot,0\nsofa,Sofa,1\nsofa,Boot,0\nlamp,Lamp,2\nlamp,Lamp,1\n"
    with pytest.raises(UserInputError) as info:
        _load(_write(tmp_path, text))
    assert_says(info.value, "1 query has a single judged product", "'lamp'", "rows 6, 7")


def test_candidates_to_rank_keep_their_repeats() -> None:
    frame = pd.DataFrame({"query": ["a", "a", "a"], "title": ["x", "x", "y"]})
    pairs = validate_pairs(frame, source="candidates.csv", require_label=False)
    assert len(pairs) == 3 and pairs.warnings == ()


def test_a_merged_mean_between_whole_grades_is_no_typo_but_a_stray_grade_still_is(tmp_path) -> None:
    body = "".join(f"q{q},Title {q} {i},{(q + i) % 4}\n" for q in range(7) for i in range(3))
    repeated = "query,title,label\n" + body + "q0,Title 0 0,1\n"  # q0's first product: 0 and 1, mean 0.5
    pairs = _load(_write(tmp_path, repeated))
    assert pairs.frame.iloc[0]["label"] == 0.5
    assert not any(says(w, "between whole grades") for w in pairs.warnings), pairs.warnings
    stray = repeated.replace("q3,Title 3 1,0", "q3,Title 3 1,2.5")
    [warning] = [w for w in _load(_write(tmp_path, stray, "stray.csv")).warnings
                 if says(w, "between whole grades")]
    assert_says(warning, "1 value(s) between whole grades (2.5) in row 12")
