"""Messy exports a shop engineer is handed: each one is read right (with a warning where the reader changed
something), or refused with one paragraph naming the column, the count and the rows. Never a silent change."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from study.data.config import DataConfig
from study.data.sources import load_dataset

from study.errors import UserInputError
from tests.messages import assert_says, flatten, says


def _write(tmp_path: Path, content: str | bytes, name: str = "export.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def _load(path: Path, **options: object):
    return load_dataset(DataConfig.from_dict({"path": str(path), **options}), log_warnings=False)


def _refusal(path: Path, **options: object) -> str:
    with pytest.raises(UserInputError) as info:
        _load(path, **options)
    return str(info.value)


def test_a_semicolon_csv_with_decimal_commas_reads_as_numbers_with_a_warning(tmp_path: Path) -> None:
    path = _write(tmp_path, "query;title;price;label\n"
                            "red shoe;Red shoe;1.299,00;3\nred shoe;Blue boot;12,50;0\n"
                            "sofa;Grey couch;450;2\nsofa;Red shoe;1.299,00;0\n"
                            "lamp;Desk lamp;19,99;3\nlamp;Grey couch;450;1\n")
    pairs = _load(path)
    assert pairs.frame["price"].tolist() == [1299.0, 12.5, 450.0, 1299.0, 19.99, 450.0]
    assert pairs.frame["label"].tolist() == [3, 0, 2, 0, 3, 1]
    [warning] = pairs.warnings
    assert_says(warning, "'price'", "4 value(s)", "decimal commas", "'1.299,00' -> 1299 (row 2)")


def test_a_tab_separated_csv_reads_right_without_a_warning(tmp_path: Path) -> None:
    path = _write(tmp_path, "query\ttitle\tlabel\nred shoe\tRed shoe, size 9\t2\nred shoe\tBlue boot\t0\n"
                            "sofa\tGrey couch\t1\nsofa\tRed shoe, size 9\t0\nlamp\tDesk lamp\t2\n"
                            "lamp\tSofa\t0\n")
    pairs = _load(path)
    assert pairs.text_fields == ("title",) and pairs.frame["title"][0] == "Red shoe, size 9"
    assert pairs.warnings == ()


def test_thousands_separators_and_currency_read_as_numbers_with_a_warning(tmp_path: Path) -> None:
    path = _write(tmp_path, 'query,title,price,label\nred shoe,Red shoe,"$1,299.00",3\n'
                            'red shoe,Boot,$12.50,0\nsofa,Couch,"2,450",2\nsofa,Red shoe,"$1,299.00",0\n'
                            'lamp,Lamp,19.99,3\nlamp,Couch,"2,450",1\n')
    pairs = _load(path)
    assert pairs.frame["price"].tolist() == [1299.0, 12.5, 2450.0, 1299.0, 19.99, 2450.0]
    [warning] = pairs.warnings
    assert_says(warning, "'price'", "5 value(s)", "thousands separators", "currency", "row 2")


def test_percentages_in_a_behaviour_column_read_as_fractions(tmp_path: Path) -> None:
    path = _write(tmp_path, "query,title,ctr,label\nshoe,Red shoe,3.5%,2\nshoe,Boot,1%,0\nsofa,Couch,0.5%,1\n"
                            "sofa,Shoe,2%,0\nlamp,Lamp,4%,2\nlamp,Couch,,0\n")
    pairs = _load(path)
    assert pairs.frame["ctr"].tolist()[:5] == pytest.approx([0.035, 0.01, 0.005, 0.02, 0.04])
    assert any(says(w, "'ctr'") and says(w, "percent") for w in pairs.warnings), pairs.warnings


def test_product_ids_keep_leading_zeros_and_a_zero_padded_column_is_no_feature(tmp_path: Path) -> None:
    path = _write(tmp_path, "query,product_id,sku,title,label\nshoe,00123,0042,Red shoe,2\n"
                            "shoe,00124,0043,Boot,0\nsofa,00125,0044,Couch,1\nsofa,00123,0042,Red shoe,0\n"
                            "lamp,00126,0045,Lamp,2\nlamp,00125,0044,Couch,0\n")
    pairs = _load(path)
    assert pairs.frame["product_id"].tolist()[:2] == ["00123", "00124"]
    assert pairs.feature_fields == ()  # before, sku was read as the number 42 and used as a behaviour feature
    [warning] = pairs.warnings
    assert_says(warning, "'sku'", "leading zeros", "'0042' in row 2")


def test_a_windows_1252_export_is_read_with_a_warning_naming_the_line(tmp_path: Path) -> None:
    text = "query,title,label\ncafé table,Café table – oak,2\ncafé table,Chair,0\nsofa,Couch,1\n" \
           "sofa,Chair,0\nlamp,Lamp,2\nlamp,Chair,0\n"
    pairs = _load(_write(tmp_path, text.encode("cp1252")))
    assert pairs.frame["title"][0] == "Café table – oak" and pairs.frame["query"][0] == "café table"
    [warning] = pairs.warnings
    assert_says(warning, "not UTF-8", "line 2", "Windows-1252", "data.encoding")


def test_a_file_mixing_utf8_and_latin1_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "query,title,label\ncafé,Café,2\n".encode() + "crème,Crème,0\n".encode("latin-1"))
    message = _refusal(path)
    assert_says(message, "mixes encodings", "Line 2 holds UTF-8", "on line 3 is not UTF-8")


@pytest.mark.parametrize("encoding", [None, "latin-1"])
def test_a_utf8_byte_order_mark_does_not_rename_the_first_column(tmp_path: Path,
                                                                 encoding: str | None) -> None:
    text = ("query,title,label\nshoe,Shoe,2\nshoe,Boot,0\nsofa,Couch,1\nsofa,Boot,0\nlamp,Lamp,1\n"
            "lamp,Boot,0\n")
    pairs = _load(_write(tmp_path, b"\xef\xbb\xbf" + text.encode()), encoding=encoding)
    assert pairs.frame["query"].tolist()[:2] == ["shoe", "shoe"]


def test_an_excel_unicode_text_export_utf16_with_tabs_is_read(tmp_path: Path) -> None:
    text = "query\ttitle\tlabel\r\nsofá\tSofá gris\t2\r\nsofá\tSilla\t0\r\nmesa\tMesa\t1\r\n" \
           "mesa\tSilla\t0\r\nlámpara\tLámpara\t2\r\nlámpara\tSilla\t0\r\n"
    pairs = _load(_write(tmp_path, text.encode("utf-16")))
    assert pairs.frame["title"][0] == "Sofá gris" and pairs.n_queries == 3 and pairs.warnings == ()


def test_a_header_repeated_mid_file_is_skipped_and_later_rows_keep_their_numbers(tmp_path: Path) -> None:
    head = "query,title,label\n"
    part = "shoe,Shoe,2\nshoe,Boot,0\nsofa,Couch,1\nsofa,Boot,0\n"
    pairs = _load(_write(tmp_path, head + part + head + "lamp,Lamp,2\nlamp,Boot,0\n"))
    assert len(pairs) == 6 and pairs.frame["label"].tolist() == [2, 0, 1, 0, 2, 0]
    [warning] = pairs.warnings
    assert_says(warning, "row 6 repeats the header", "1 such row skipped")
    bad = _write(tmp_path, head + part + head + "lamp,Lamp,2\nlamp,Boot,\n", "bad.csv")
    # the file's own row, the header row counted
    assert_says(_refusal(bad), "'label' is empty (NaN) in row 8")


def test_excel_trailing_empty_columns_and_rows_are_dropped(tmp_path: Path) -> None:
    text = ("query,title,label,,,\nshoe,Shoe,2,,,\nshoe,Boot,0,,,\nsofa,Couch,1,,,\nsofa,Boot,0,,,\n"
            "lamp,Lamp,2,,,\nlamp,Boot,0,,,\n,,,,,\n,,,,,\n")
    pairs = _load(_write(tmp_path, text))
    assert (list(pairs.frame.columns) == ["query_id", "query", "product_id", "title", "label"]
            and len(pairs) == 6)
    assert pairs.warnings == ("2 empty rows (rows 8, 9) skipped.",)


def test_text_that_was_double_encoded_upstream_is_pointed_out(tmp_path: Path) -> None:
    text = ("query,title,label\ncafe,CafÃ© table,2\ncafe,Chair,0\nsofa,Couch,1\nsofa,Chair,0\nlamp,Lamp,2\n"
            "lamp,Chair,0\n")
    [warning] = _load(_write(tmp_path, text)).warnings
    assert_says(warning, "'title'", "double-encoded", "row 2")


def test_true_false_labels_read_as_1_and_0_with_a_warning(tmp_path: Path) -> None:
    text = "query,title,label\nshoe,Shoe,TRUE\nshoe,Boot,FALSE\nsofa,Couch,true\nsofa,Boot,false\n" \
           "lamp,Lamp,True\nlamp,Boot,False\n"
    pairs = _load(_write(tmp_path, text))
    assert pairs.frame["label"].tolist() == [1.0, 0.0, 1.0, 0.0, 1.0, 0.0]
    assert any(says(w, "true/false") for w in pairs.warnings), pairs.warnings


def test_a_label_column_read_as_text_because_of_one_stray_value_is_refused(tmp_path: Path) -> None:
    text = ("query,title,label\nshoe,Shoe,2\nshoe,Boot,0\nsofa,Couch,1\nsofa,Boot,-\nlamp,Lamp,2\n"
            "lamp,Boot,0\n")
    message = _refusal(_write(tmp_path, text))
    assert_says(message, "column 'label' has non-numeric values ('-') in row 5",
                "1 of 6 rows; the others are numbers")


@pytest.mark.parametrize(("labels", "needles"), [
    (["85%", "10%", "60%", "0%", "90%", "5%"], ["'85%'", "Percentages"]),
    (["3", "relevant", "2", "0", "3", "irrelevant"], ["'relevant'", "label_map", "2 of 6 rows"]),
    (["yes", "no", "yes", "no", "yes", "no"], ["'yes'", "label_map"]),
], ids=["percent", "numbers-and-words", "yes-no"])
def test_labels_that_are_no_grades_are_refused_with_a_hint(tmp_path: Path, labels: list[str],
                                                            needles: list[str]) -> None:
    rows = zip(["shoe", "shoe", "sofa", "sofa", "lamp", "lamp"], ["Shoe", "Boot"] * 3, labels, strict=True)
    message = _refusal(_write(tmp_path,
                              "query,title,label\n" + "".join(f"{q},{t},{g}\n" for q, t, g in rows)))
    assert_says(message, *needles)


def test_nan_and_negative_labels_are_refused_with_their_rows(tmp_path: Path) -> None:
    base = ("query,title,label\nshoe,Shoe,2\nshoe,Boot,0\nsofa,Couch,1\nsofa,Boot,{}\nlamp,Lamp,2\n"
            "lamp,Boot,0\n")
    assert_says(_refusal(_write(tmp_path, base.format(""))), "'label' is empty (NaN) in row 5")
    assert_says(_refusal(_write(tmp_path, base.format("N/A"))), "'label' is empty (NaN) in row 5")
    message = _refusal(_write(tmp_path, base.format("-1")))
    assert_says(message, "negative values (-1)", "row 5")


def test_reader_warnings_are_logged_for_run(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = _write(tmp_path, "query;title;price;label\nshoe;Shoe;1,5;2\nshoe;Boot;2,5;0\nsofa;Couch;3;1\n"
                            "sofa;Boot;2,5;0\nlamp;Lamp;4;2\nlamp;Boot;2,5;0\n")
    with caplog.at_level(logging.WARNING, logger="study.data"):
        load_dataset(DataConfig(path=str(path)))  # what `study run` calls (through prepare_workspace)
    [record] = [r for r in caplog.records if says(r.getMessage(), "decimal commas")]
    assert flatten(record.getMessage()).startswith(flatten(f"warning: {path}: column 'price'"))
