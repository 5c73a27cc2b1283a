"""Data that would make a study meaningless is refused, data that would make part of it doubtful is warned
about, by the one check `study data check` and `study run` share (``load_dataset``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from study.data.config import DataConfig
from study.data.sources import check_file, load_dataset
from study.data.splits import split_by_query
from study.data.validate import validate_pairs

from study.errors import UserInputError
from tests.messages import assert_says, says


def _write(tmp_path: Path, text: str, name: str = "pairs.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _load(path: Path):
    return load_dataset(DataConfig(path=str(path)), log_warnings=False)


def _refusal(path: Path) -> str:
    with pytest.raises(UserInputError) as info:
        _load(path)
    return str(info.value)


def test_a_single_query_is_refused_by_the_check_data_check_runs(tmp_path: Path) -> None:
    path = _write(tmp_path,
                  "query,title,label\nred shoe,Red shoe,3\nred shoe,Blue boot,0\nred shoe,Red sock,1\n")
    with pytest.raises(UserInputError) as info:
        check_file(path)  # `study data check` called this file OK, and `study run` refused it
    assert_says(info.value, "a single query ('red shoe', column 'query'", "at least 3")
    two = _write(tmp_path, "query,title,label\nshoe,Shoe,3\nshoe,Boot,0\nsofa,Sofa,1\nsofa,Boot,0\n",
                 "two.csv")
    assert_says(_refusal(two), "only 2 queries ('shoe', 'sofa'")


def test_one_label_everywhere_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "query,title,label\nshoe,Shoe,1\nshoe,Boot,1\nsofa,Sofa,1\nsofa,Boot,1\n"
                            "lamp,Lamp,1\nlamp,Boot,1\n")
    message = _refusal(path)
    assert_says(message, "column 'label' is 1 in all 6 rows", "every trial would get the same score")


def test_one_label_within_every_query_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "query,title,label\nshoe,Shoe,2\nshoe,Boot,2\nsofa,Sofa,0\nsofa,Boot,0\n"
                            "lamp,Lamp,1\nlamp,Boot,1\n")
    message = _refusal(path)
    assert_says(message, "every query has a single label", "no query can be ranked",
                "'shoe' (all 2, rows 2, 3)")


def test_queries_with_one_label_are_counted_in_a_warning(tmp_path: Path) -> None:
    path = _write(tmp_path, "query,title,label\nshoe,Shoe,2\nshoe,Boot,0\nsofa,Sofa,1\nsofa,Boot,1\n"
                            "lamp,Lamp,2\nlamp,Boot,0\nmug,Mug,0\nmug,Cup,0\nsock,Sock,3\nsock,Shoe,1\n")
    [warning] = _load(path).warnings
    assert warning.startswith("2 of 5 queries (40%) have a single label")
    assert_says(warning, "'sofa' (all 1, rows 4, 5)", "'mug' (all 0, rows 8, 9)")


def test_a_grade_scale_above_24_is_refused_and_above_10_warned(tmp_path: Path) -> None:
    rows = ("query,title,label\nshoe,Shoe,{}\nshoe,Boot,0\nsofa,Sofa,40\nsofa,Boot,10\nlamp,Lamp,70\n"
            "lamp,Boot,5\n")
    message = _refusal(_write(tmp_path, rows.format(100)))
    assert_says(message, "column 'label' goes up to 100 (row 2)", "float32")
    [warning] = _load(_write(tmp_path, rows.format(12).replace("40", "4").replace("70", "7"),
                             "twelve.csv")).warnings
    assert_says(warning, "column 'label' goes up to 12", "scores or percentages")


def test_a_stray_label_between_whole_grades_is_warned_with_its_row(tmp_path: Path) -> None:
    body = "".join(f"q{q},Title {q} {i},{(q + i) % 4}\n"
                   for q, i in [(q, i) for q in range(7) for i in range(3)])
    stray = body.replace("q3,Title 3 1,0", "q3,Title 3 1,2.5")
    [warning] = _load(_write(tmp_path, "query,title,label\n" + stray)).warnings
    assert_says(warning,
                "column 'label' has 1 value(s) between whole grades (2.5) in row 12, among 20 whole grades")
    averaged = body.replace(",1\n", ",1.33\n").replace(",2\n", ",2.67\n")  # Home Depot style: rater averages
    assert _load(_write(tmp_path, "query,title,label\n" + averaged, "averaged.csv")).warnings == ()


def test_repeated_judgements_are_merged_and_counted_and_refused_only_on_request(tmp_path: Path) -> None:
    path = _write(tmp_path, "query,product_id,title,label\nshoe,1,Shoe,3\nshoe,2,Boot,0\nsofa,3,Sofa,1\n"
                            "sofa,2,Boot,0\nlamp,4,Lamp,2\nlamp,2,Boot,0\nshoe,1,Shoe,0\nsofa,2,Boot,0\n")
    pairs = _load(path)
    assert len(pairs) == 6 and pairs.frame["label"].tolist() == [1.5, 0, 1, 0, 2, 0]
    [warning] = [w for w in pairs.warnings if says(w, "judged more than once")]
    assert_says(warning, "2 (query, product) pair(s) judged more than once (rows 2, 5, 8, 9;",
                "2 row(s) merged away", "1 of the repeated pairs had different labels",
                "data.duplicates = 'mean'")
    with pytest.raises(UserInputError) as info:
        load_dataset(DataConfig(path=str(path), duplicates="error"), log_warnings=False)
    assert_says(info.value, "duplicate (query_id, product_id) pairs in rows 2, 5, 8, 9",
                "2 pair(s) judged more than once, 1 of them with conflicting labels")


def test_rows_without_product_text_are_warned_and_no_text_at_all_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "query,product_id,title,description,label\nshoe,1,Shoe,,2\nshoe,2,   ,,0\n"
                            "sofa,3,Sofa,,1\nsofa,4,,,0\nlamp,5,Lamp,,2\nlamp,6,Boot,,0\n")
    pairs = _load(path)
    assert pairs.text_fields == ("title",) and "description" not in pairs.frame.columns
    assert pairs.warnings == (
        "product text column(s) 'description' empty in every row: left out.",
        ("2 row(s) have no product text (column(s) 'title' empty) in rows 3, 5: the model reads only the "
         "query for them."),
    )
    blank = _write(tmp_path, "query,product_id,title,label\nshoe,1, ,2\nshoe,2,,0\nsofa,3,,1\nsofa,4,,0\n"
                             "lamp,5,,2\nlamp,6,,0\n", "blank.csv")
    assert_says(_refusal(blank), "product text column(s) 'title' are empty in every row")


def test_behaviour_columns_that_are_constant_or_empty_are_left_out(tmp_path: Path) -> None:
    path = _write(tmp_path, "query,title,price,clicks,views,label\nshoe,Shoe,10,0,,2\nshoe,Boot,25,0,,0\n"
                            "sofa,Sofa,300,0,,1\nsofa,Boot,25,0,,0\nlamp,Lamp,19,0,,2\nlamp,Boot,25,0,,0\n")
    pairs = _load(path)
    assert pairs.feature_fields == ("price",) and "clicks" not in pairs.frame.columns
    assert pairs.warnings == (
        "behaviour column 'clicks' is 0 in every row, so it cannot tell products apart: left out.",
        "behaviour column 'views' is empty in every row: left out.",
    )


def test_candidates_to_rank_keep_their_columns_whatever_they_hold() -> None:
    import pandas as pd

    frame = pd.DataFrame({"query": ["a", "a"], "title": ["x", " "], "clicks": [0, 0], "label": ["?", None]})
    pairs = validate_pairs(frame, source="candidates.csv", feature_fields=("clicks",), require_label=False)
    assert pairs.feature_fields == ("clicks",) and pairs.warnings == ()


def _queries(labels: dict[str, tuple[int, int]]) -> str:
    return "query,title,label\n" + "".join(f"{q},{q} one,{a}\n{q},{q} two,{b}\n"
                                           for q, (a, b) in labels.items())


def test_a_validation_split_no_order_can_score_differently_is_refused(tmp_path: Path) -> None:
    names = [f"query {i}" for i in range(10)]
    graded = _load(_write(tmp_path, _queries(dict.fromkeys(names, (2, 0))), "graded.csv"))
    splits = split_by_query(graded, seed=0)
    train = set(splits.train.frame["query"])
    # only the training queries are judged at two levels: every trial would score the same on validation
    path = _write(tmp_path, _queries({q: (2, 0) if q in train else (1, 1) for q in names}))
    message = _refusal(path)
    assert_says(message, f"none of the {splits.val.n_queries} validation queries",
                "every trial would get the same validation score")
    val = set(splits.val.frame["query"])
    doubtful = _write(tmp_path, _queries({q: (1, 1) if q not in train | val else (2, 0) for q in names}),
                      "t.csv")
    warnings = _load(doubtful).warnings
    assert any(w.startswith(f"none of the {splits.test.n_queries} test queries") for w in warnings)


def test_data_check_says_ok_with_warnings_and_lists_them(tmp_path: Path) -> None:
    path = _write(tmp_path, "query;title;clicks;label\nshoe;Shoe;0;2,5\nshoe;Boot;0;0\nsofa;Sofa;0;1\n"
                            "sofa;Boot;0;0\nlamp;Lamp;0;2\nlamp;Boot;0;0\n")
    report = check_file(path)
    assert report.splitlines()[0] == "pairs: OK with 2 warnings (below)"
    warnings = report[report.index("\nwarning: ") + 1:].replace("\n  ", " ").split("\n")
    assert warnings[0].startswith("warning: column 'label': 1 value(s) written with decimal commas")
    assert warnings[1] == ("warning: behaviour column 'clicks' is 0 in every row, so it cannot tell products "
                           "apart: left out.")
    assert all(len(line) <= 100 for line in report.splitlines())
