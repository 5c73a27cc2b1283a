"""A file is read as what it says, or refused naming what is wrong: columns of the same name, infinite
numbers, cells that hold lists, a 0-byte file. ``study data check`` says each of them; none is a
traceback."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from study.cli import main
from tests.messages import assert_not_says, assert_says

PAIRS = [("red shoe", "Red running shoe", "Acme", 3), ("red shoe", "Blue boot", "Bolt", 0),
         ("grey sofa", "Grey sofa", "Home", 3), ("grey sofa", "Sofa cover", "Home", 1)]


def _check(path, capsys) -> str:
    assert main(["data", "check", str(path)]) == 2
    captured = capsys.readouterr()
    assert_not_says(captured.out + captured.err, "Traceback")
    return captured.err


@pytest.mark.parametrize("repeated", ["label", "title"])
def test_two_columns_of_one_name_are_refused_by_name(tmp_path, capsys, repeated) -> None:
    path = tmp_path / "pairs.csv"
    header = ["query", "title", "label", repeated]
    rows = [",".join(map(str, (q, t, g, g if repeated == "label" else b))) for q, t, b, g in PAIRS]
    path.write_text(",".join(header) + "\n" + "\n".join(rows) + "\n")
    err = _check(path, capsys)
    where = "columns 3, 4" if repeated == "label" else "columns 2, 4"
    assert_says(err, "several columns of the same name", f"'{repeated}' ({where})", str(path))


def test_two_columns_of_one_name_in_parquet_are_refused(tmp_path, capsys) -> None:
    path = tmp_path / "pairs.parquet"
    columns = list(zip(*PAIRS, strict=True))
    table = pa.Table.from_arrays([pa.array(columns[0]), pa.array(columns[1]), pa.array(columns[3]),
                                  pa.array(columns[3])], names=["query", "title", "label", "label"])
    pq.write_table(table, path)
    assert_says(_check(path, capsys), "several columns of the same name", "'label' (columns 3, 4)")


@pytest.mark.parametrize("name", ["pairs.jsonl", "pairs.json", "pairs.jsonl.gz"])
def test_a_json_key_given_twice_in_a_record_is_refused_by_name(tmp_path, capsys, name) -> None:
    import gzip
    import json

    records = [json.dumps({"query": q, "title": t, "label": g}) for q, t, _, g in PAIRS]
    records[2] = records[2][:-1] + ', "label": 0}'  # the third record grades twice; a reader keeps the 0
    text = ("[" + ",\n".join(records) + "]" if name == "pairs.json" else "\n".join(records)) + "\n"
    path = tmp_path / name
    path.write_bytes(gzip.compress(text.encode()) if name.endswith(".gz") else text.encode())
    where = "record 3" if name == "pairs.json" else "line 3"
    assert_says(_check(path, capsys), "has a record with the same key twice: 'label'", f"({where})",
                str(path))
    clean = tmp_path / f"clean_{name.replace('.gz', '')}"
    records[2] = json.dumps({"query": "grey sofa", "title": "Grey sofa", "label": 3})
    clean.write_text(("[" + ",".join(records) + "]" if name == "pairs.json" else "\n".join(records)) + "\n")
    from study.data.loaders import read_raw

    assert read_raw(clean)["label"].tolist() == [3, 0, 3, 1]  # a file without repeats reads as before


def test_infinite_feature_values_are_named_with_their_rows(tmp_path, capsys) -> None:
    path = tmp_path / "pairs.csv"
    prices = ["9.5", "inf", "12", "-inf"]
    path.write_text("query,title,price,label\n" + "\n".join(
        f"{q},{t},{p},{g}" for (q, t, _, g), p in zip(PAIRS, prices, strict=True)) + "\n")
    assert_says(_check(path, capsys), "feature column 'price' has infinite values", "rows 3, 5")


def test_list_valued_cells_are_named_with_their_columns_and_rows(tmp_path, capsys) -> None:
    path = tmp_path / "pairs.parquet"
    frame = pd.DataFrame({"query": [p[0] for p in PAIRS],
                          "title": [p[1].split() for p in PAIRS], "brand": [p[2] for p in PAIRS],
                          "price": [[1.0, 2.0], [3.0], [4.0], [5.0]],
                          "label": [p[3] for p in PAIRS]})
    frame.to_parquet(path)
    assert_says(_check(path, capsys), "cells hold lists", "'title' in rows 2, 3, 4, 5",
                "'price' in rows 2, 3, 4, 5")


@pytest.mark.parametrize("name", ["pairs.csv", "pairs.parquet", "pairs.jsonl"])
def test_a_0_byte_file_is_one_paragraph(tmp_path, capsys, name) -> None:
    path = tmp_path / name
    path.write_bytes(b"")
    assert_says(_check(path, capsys), f"The data file {path} is empty (0 bytes)")
