"""validate_pairs: one clear paragraph naming the file, the column and the rows for every bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from study.data.loaders import load_file
from study.data.summary import check_file_report
from study.data.validate import product_ids_from_text, query_ids_from_text, validate_pairs

from study.errors import UserInputError
from tests.messages import assert_says

GOOD = """query_id,query,product_id,title,brand,price,clicks,label
q1,red shoe,p1,Red running shoe,Acme,10.5,3,2
q1,red shoe,p2,Blue boot,Acme,20,,0
q2,grey sofa,p3,Grey couch,Home,300,1,1
q2,grey sofa,p1,Red running shoe,Acme,10.5,0,0
"""


def _frame(tmp_path: Path, text: str, name: str = "pairs.csv") -> tuple[pd.DataFrame, str]:
    path = tmp_path / name
    path.write_text(text)
    return load_file(path), str(path)


def _error(tmp_path: Path, text: str, **kwargs: object) -> str:
    frame, source = _frame(tmp_path, text)
    with pytest.raises(UserInputError) as info:
        validate_pairs(frame, source=source, **kwargs)
    message = str(info.value)
    assert message.startswith(source), message  # names the file first
    assert "\n" not in message  # one paragraph
    return message


def test_good_file_becomes_canonical(tmp_path: Path) -> None:
    frame, source = _frame(tmp_path, GOOD)
    pairs = validate_pairs(frame, source=source)
    assert pairs.text_fields == ("title", "brand")
    assert pairs.feature_fields == ("price", "clicks")
    assert pairs.name == source
    out = pairs.frame
    assert list(out.columns) == ["query_id", "query", "product_id", "title", "brand", "price", "clicks",
                                 "label"]
    assert out["label"].dtype == np.float64 and out["price"].dtype == np.float64
    assert np.isnan(out.loc[1, "clicks"])  # an empty feature cell is missing, not an error
    assert pairs.n_queries == 2


def test_ids_are_strings_even_when_numeric() -> None:
    frame = pd.DataFrame({"query_id": [1, 1], "query": ["a", "a"], "product_id": [10, 11],
                          "title": ["x", "y"],
                          "label": [1, 0]})
    out = validate_pairs(frame, source="mem").frame
    assert out["query_id"].tolist() == ["1", "1"] and out["product_id"].tolist() == ["10", "11"]


def test_query_id_is_derived_from_the_query_when_absent(tmp_path: Path) -> None:
    text = "query,product_id,title,label\nred shoe,p1,a,1\nred shoe,p2,b,0\nsofa,p1,a,0\nsofa,p3,c,2\n"
    frame, source = _frame(tmp_path, text)
    out = validate_pairs(frame, source=source).frame
    assert out["query_id"].nunique() == 2
    assert out.loc[0, "query_id"] == out.loc[1, "query_id"] != out.loc[2, "query_id"]
    # Stable: the same text gets the same id whatever else is in the file.
    assert out.loc[0, "query_id"] == query_ids_from_text(pd.Series(["red shoe"]))[0]


def test_inference_skips_id_like_columns_and_falls_back_to_string_columns() -> None:
    frame = pd.DataFrame({"id": [1, 2, 3, 4], "query": ["a", "a", "b", "b"],
                          "product_id": ["1", "2", "3", "4"], "name": ["w", "x", "y", "z"],
                          "store_id": [5, 5, 6, 6], "score": [0.1, 0.2, 0.3, 0.4],
                          "label": [1, 0, 1, 0]})
    pairs = validate_pairs(frame, source="mem")
    assert pairs.text_fields == ("name",)
    assert pairs.feature_fields == ("score",)


def test_missing_required_column(tmp_path: Path) -> None:
    message = _error(tmp_path, "typed,title,label\na,x,1\na,y,0\n")
    assert_says(message, "'query'", "data.columns", "query_id and product_id are optional")


def test_no_text_field(tmp_path: Path) -> None:
    message = _error(tmp_path, "query,product_id,price,label\na,p1,1,1\na,p2,2,0\n")
    assert_says(message, "no product text column", "title")


def test_named_text_field_not_in_file(tmp_path: Path) -> None:
    message = _error(tmp_path, GOOD, text_fields=("title", "colour"))
    assert_says(message, "'colour'", "text_fields")


def test_non_numeric_label(tmp_path: Path) -> None:
    message = _error(tmp_path, GOOD.replace("Acme,20,,0", "Acme,20,,high"))
    assert_says(message, "'label'", "'high'", "row 3", "label_map")


def test_nan_label(tmp_path: Path) -> None:
    message = _error(tmp_path, GOOD.replace("Home,300,1,1", "Home,300,1,"))
    assert_says(message, "'label'", "row 4", "empty")


def test_negative_label(tmp_path: Path) -> None:
    message = _error(tmp_path, GOOD.replace("Acme,20,,0", "Acme,20,,-1"))
    assert_says(message, "'label'", "negative", "row 3")


def test_empty_query_text(tmp_path: Path) -> None:
    message = _error(tmp_path, GOOD.replace("q2,grey sofa,p3", "q2,  ,p3"))
    assert_says(message, "'query'", "empty query text", "row 4")


def test_duplicate_pairs_are_refused_with_data_duplicates_error(tmp_path: Path) -> None:
    message = _error(tmp_path, GOOD + "q1,red shoe,p1,Red running shoe,Acme,10.5,3,1\n", duplicates="error")
    assert_says(message, "duplicate", "'product_id'", "rows 2, 6", "'p1'", 'data.duplicates = "mean"')
    merged = validate_pairs(_frame(tmp_path, GOOD + "q1,red shoe,p1,Red running shoe,Acme,10.5,3,1\n")[0],
                            source="pairs.csv")  # the default: merged, their mean label
    assert len(merged) == 4 and merged.frame["label"].tolist() == [1.5, 0, 1, 0]


def test_single_item_query(tmp_path: Path) -> None:
    message = _error(tmp_path, GOOD + "q3,lamp,p9,Desk lamp,Lumo,25,1,2\n")
    assert_says(message, "single judged product", "'lamp'", "row 6", "'query_id'")


def test_non_numeric_feature(tmp_path: Path) -> None:
    message = _error(tmp_path, GOOD.replace("Home,300,1,1", "Home,ask us,1,1"))
    assert_says(message, "'price'", "'ask us'", "row 4")


def test_non_numeric_named_feature(tmp_path: Path) -> None:
    message = _error(tmp_path, GOOD, feature_fields=("brand",))
    assert_says(message, "'brand'", "rows 2, 3, 4, 5")


def test_one_query_id_with_two_texts(tmp_path: Path) -> None:
    message = _error(tmp_path, GOOD.replace("q2,grey sofa,p1", "q2,gray sofa,p1"))
    assert_says(message, "'q2'", "rows 4, 5")


def test_many_bad_rows_are_summarised() -> None:
    frame = pd.DataFrame({"query": ["a"] * 12, "product_id": [str(i) for i in range(12)], "title": ["t"] * 12,
                          "label": ["bad"] * 12})
    with pytest.raises(UserInputError) as info:
        validate_pairs(frame, source="mem")
    assert_says(info.value, "rows 2, 3, 4, 5, 6 and 7 more")


def test_candidates_without_labels_for_ranking() -> None:
    frame = pd.DataFrame({"query": ["a", "b"], "product_id": ["1", "2"], "title": ["x", "y"]})
    pairs = validate_pairs(frame, source="candidates.csv", require_label=False)
    assert pairs.frame["label"].isna().all() and len(pairs) == 2


def test_report_summarises(tmp_path: Path) -> None:
    frame, source = _frame(tmp_path, GOOD)
    report = check_file_report(validate_pairs(frame, source=source, name="mine"))
    assert report.splitlines()[0] == "mine: OK"
    assert_says(report, "pairs 4, queries 2, products 3", "text fields: title, brand",
                "feature fields: price, clicks", "missing clicks: 25.0%", "0: 2 (50%)")


def test_every_independent_problem_is_reported_at_once(tmp_path: Path) -> None:
    bad = (GOOD.replace("q1,red shoe,p2,Blue boot,Acme,20,,0", "q1,red shoe,p2,Blue boot,Acme,20,lots,x")
           + "q2,grey sofa,p3,Grey couch,Home,300,1,1\nq3,lamp,p4,Desk lamp,Lux,15,2,1\n")
    frame, source = _frame(tmp_path, bad)
    with pytest.raises(UserInputError) as info:
        validate_pairs(frame, source=source, duplicates="error")
    head, *problems = str(info.value).split("\n")
    assert head == f"{source}: 4 problems."
    assert [p[:3] for p in problems] == ["1. ", "2. ", "3. ", "4. "]  # one paragraph per problem
    assert_says(problems[0], "feature column 'clicks'", "('lots') in row 3")
    assert_says(problems[1], "column 'label' has non-numeric values ('x') in row 3")
    assert_says(problems[2], "duplicate (query_id, product_id) pairs in rows 4, 6")
    assert_says(problems[3], "single judged product", "'q3' ('lamp') in row 7")


def test_query_title_label_is_a_complete_file(tmp_path: Path) -> None:
    text = ("query,title,label\nred shoe,Red shoe,2\nred shoe,Blue boot,0\nsofa,Grey couch,1\n"
            "sofa,Red shoe,0\n")
    frame, source = _frame(tmp_path, text)
    pairs = validate_pairs(frame, source=source)
    out = pairs.frame
    assert pairs.text_fields == ("title",) and pairs.feature_fields == ()
    ids = out["product_id"].tolist()
    assert all(i.startswith("p") and len(i) == 13 for i in ids)
    assert ids[0] == ids[3] and len(set(ids)) == 3  # the same text is the same product, in any query
    again = validate_pairs(load_file(tmp_path / "pairs.csv").iloc[::-1], source=source).frame
    assert set(again["product_id"]) == set(ids)  # stable: from the text, not the row order


def test_derived_product_ids_join_every_text_field() -> None:
    frame = pd.DataFrame({"query": ["a", "a"], "title": ["Mug", "Mug"], "brand": ["Acme", "Home"],
                          "label": [1, 0]})
    assert product_ids_from_text(frame, ("title", "brand")).nunique() == 2
    assert product_ids_from_text(frame, ("title",)).nunique() == 1
    with pytest.raises(UserInputError) as info:
        validate_pairs(frame[["query", "title", "label"]], source="mem", duplicates="error")
    assert_says(info.value, "no product_id column", "title 'Mug'")
    with pytest.raises(UserInputError) as info:  # merged, 'a' has one judged product left
        validate_pairs(frame[["query", "title", "label"]], source="mem")
    assert_says(info.value, "1 query has a single judged product", "rows 2, 3")
