"""Reading user files: formats, column mapping, label maps, and errors that name the file."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pandas as pd
import pytest
from study.data.loaders import infer_format, load_file

from study.errors import UserInputError
from tests.messages import assert_says

RAW = pd.DataFrame({
    "qid": ["007", "007", "008", "008"],
    "search_term": ["red shoe", "red shoe", "sofa", "sofa"],
    "sku": ["0001", "0002", "0003", "0001"],
    "name": ["Red running shoe", "Blue boot", "Grey couch", "Red running shoe"],
    "grade": ["E", "I", "S", "C"],
    "price": [10.0, 20.0, 300.0, 10.0],
})
COLUMNS = {"query_id": "qid", "query": "search_term", "product_id": "sku", "title": "name", "label": "grade"}
LABEL_MAP = {"E": 3, "S": 2, "C": 1, "I": 0}


def _write(frame: pd.DataFrame, path: Path) -> Path:
    fmt = infer_format(path)
    if fmt == "csv":
        frame.to_csv(path, index=False)
    elif fmt == "tsv":
        frame.to_csv(path, index=False, sep="\t")
    elif fmt == "parquet":
        frame.to_parquet(path, index=False)
    elif fmt in ("jsonl", "json"):
        frame.to_json(path, orient="records", lines=True)
    elif fmt == "zip":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("pairs.csv", frame.to_csv(index=False))
    return path


@pytest.mark.parametrize("name", ["pairs.csv", "pairs.tsv", "pairs.parquet", "pairs.jsonl", "pairs.json",
                                  "pairs.zip", "pairs.csv.gz"])
def test_each_format_maps_columns_and_labels(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    if name.endswith(".gz"):
        RAW.to_csv(path, index=False)
    else:
        _write(RAW, path)
    frame = load_file(path, columns=COLUMNS, label_map=LABEL_MAP)
    assert {"query_id", "query", "product_id", "title", "label", "price"} <= set(frame.columns)
    assert frame["label"].tolist() == [3.0, 0.0, 2.0, 1.0]
    assert frame["query"].tolist() == RAW["search_term"].tolist()
    if name.endswith((".csv", ".tsv", ".zip", ".jsonl", ".json", ".gz")):
        # Identifiers are read as text: leading zeros survive.
        assert frame["product_id"].tolist() == ["0001", "0002", "0003", "0001"]
        assert frame["query_id"].tolist() == ["007", "007", "008", "008"]


def test_json_array_of_records(tmp_path: Path) -> None:
    path = tmp_path / "pairs.json"
    RAW.to_json(path, orient="records")
    frame = load_file(path, columns=COLUMNS, label_map=LABEL_MAP)
    assert len(frame) == 4 and frame["label"].tolist() == [3.0, 0.0, 2.0, 1.0]


def test_explicit_format_overrides_suffix(tmp_path: Path) -> None:
    path = tmp_path / "pairs.data"
    RAW.to_csv(path, index=False, sep="\t")
    frame = load_file(path, format="tsv", columns=COLUMNS, label_map=LABEL_MAP)
    assert len(frame) == 4


def test_esci_letters_map_without_label_map_and_numbers_stay(tmp_path: Path) -> None:
    path = _write(RAW.rename(columns={"grade": "label"}), tmp_path / "letters.csv")
    assert load_file(path)["label"].tolist() == [3.0, 0.0, 2.0, 1.0]
    numeric = _write(RAW.assign(grade=[2, 0, 1, 1]).rename(columns={"grade": "label"}), tmp_path / "num.csv")
    assert load_file(numeric)["label"].tolist() == [2, 0, 1, 1]


def test_label_outside_the_map_is_named_with_its_row(tmp_path: Path) -> None:
    path = _write(RAW.assign(grade=["E", "X", "S", "C"]), tmp_path / "bad.csv")
    with pytest.raises(UserInputError) as info:
        load_file(path, columns=COLUMNS, label_map=LABEL_MAP)
    assert_says(info.value, str(path), "'label'", "'X'", "row 3")


def test_mapping_to_a_missing_column_names_it_and_the_file(tmp_path: Path) -> None:
    path = _write(RAW, tmp_path / "pairs.csv")
    with pytest.raises(UserInputError) as info:
        load_file(path, columns={"query": "searchterm"})
    assert_says(info.value, str(path), "'searchterm'", "search_term")


def test_mapping_onto_an_existing_column_is_refused(tmp_path: Path) -> None:
    path = _write(RAW.assign(query="x"), tmp_path / "pairs.csv")
    with pytest.raises(UserInputError) as info:
        load_file(path, columns={"query": "search_term"})
    assert_says(info.value, "'query'")


def test_missing_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "nope.csv"
    with pytest.raises(UserInputError) as info:
        load_file(path)
    assert_says(info.value, "nope.csv", "does not exist")


def test_unknown_suffix_is_named(tmp_path: Path) -> None:
    path = tmp_path / "pairs.xlsx"
    path.write_bytes(b"whatever")
    with pytest.raises(UserInputError) as info:
        load_file(path)
    assert_says(info.value, "pairs.xlsx")


def test_unreadable_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"this is not parquet at all")
    with pytest.raises(UserInputError) as info:
        load_file(path)
    assert_says(info.value, "broken.parquet")


def test_wrong_encoding_suggests_data_encoding(tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"  # UTF-8 on one line, Latin-1 on the next: no single reading is right
    path.write_bytes("query,product_id,title,label\ncafé,1,x,1\n".encode()
                     + "crème,2,y,0\n".encode("latin-1"))
    with pytest.raises(UserInputError) as info:
        load_file(path)
    assert_says(info.value, "encoding")
    latin = tmp_path / "latin.csv"
    latin.write_bytes("query,product_id,title,label\ncaf\xe9,1,x,1\n".encode("latin-1"))
    assert load_file(latin, encoding="latin-1")["query"].tolist() == ["café"]


def test_zip_with_several_members_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "two.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a.csv", "x\n1\n")
        archive.writestr("b.csv", "x\n1\n")
    with pytest.raises(UserInputError) as info:
        load_file(path)
    assert_says(info.value, "two.zip", "exactly one")


def test_empty_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(UserInputError) as info:
        load_file(path)
    assert_says(info.value, "empty.csv")
