"""Turning the text cells of a file into typed columns, and saying what that changed.

CSV and TSV files are read as text and typed here rather than by the CSV parser's guesses, so that nothing
changes without a note: numbers written the way spreadsheets export them (``1,299.00``, ``3,5``,
``1 299,00``, ``$12.99``, ``3.5%``) are read as the numbers they mean, numbers with leading zeros stay text
(identifiers such as ``00123``), ``true``/``false`` become booleans, rows that are empty or repeat the header
are skipped, and text that looks double-encoded is pointed out. Plain numbers and text are typed exactly
as pandas' own reader would type them, so a clean file reads the same (and fingerprints the same).

Every note is one sentence naming the column, how many values and an example with its row (spreadsheet
numbering: the header is row 1).
"""

from __future__ import annotations

import re
from collections.abc import Collection

import numpy as np
import pandas as pd

from study.errors import describe_rows

# pandas' default missing-value tokens: a cell holding one of these is missing, as it always was.
NA_TOKENS = frozenset({"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
                       "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"})
_LEADING_ZERO = re.compile(r"^[+-]?0\d")
_CURRENCY = re.compile(r"^([+-]?)\s*[$€£¥₹]\s*|\s*[$€£¥₹]$")
_US = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d*)?$")  # 1,299.00
_EU = re.compile(r"^[+-]?\d{1,3}(\.\d{3})+(,\d*)?$")  # 1.299,00
_DECIMAL_COMMA = re.compile(r"^[+-]?\d*,\d+$")  # 3,5
_SPACED = re.compile(r"^[+-]?\d{1,3}([ \u00a0\u202f']\d{3})+([.,]\d+)?$")  # 1 299,00 / 1'299.00
_GROUP_MARKS = re.compile(r"[ \u00a0\u202f']")
# what a number in any of the forms above is made of
_NUMBER_LIKE = re.compile(r"[\d\s.,'+\-$€£¥₹%\u00a0\u202f]+")
# UTF-8 text decoded as Windows-1252 somewhere upstream: 'é' -> 'Ã©', '’' -> 'â€™', a no-break space -> 'Â '.
_MOJIBAKE = re.compile("Ã[^\x00-\x7f]|â€|Â[^\x00-\x7f]")


def _row(index: object) -> str:
    return describe_rows([index])


def drop_junk_rows(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Skip rows with no value at all and rows that repeat the header; drop empty unnamed columns.

    ``frame`` holds the file's cells as text. The index is kept, so later messages still give file rows.
    """
    notes = []
    cells = frame.apply(lambda column: column.fillna("").astype(str).str.strip())
    unnamed = [c for c in frame.columns if str(c).startswith("Unnamed: ") and (cells[c] == "").all()]
    frame, cells = frame.drop(columns=unnamed), cells.drop(columns=unnamed)  # Excel's trailing ,,, columns
    blank = (cells == "").all(axis=1)
    named = [c for c in cells.columns if not str(c).startswith("Unnamed: ")]
    header = pd.Series(False, index=cells.index)
    if len(named) >= 2:
        same = pd.DataFrame({c: cells[c].str.casefold() == str(c).strip().casefold() for c in named})
        header = same.all(axis=1)
    if header.any():
        rows = cells.index[header]
        notes.append(f"{describe_rows(rows)} repeat{'s' if len(rows) == 1 else ''} the header row (files "
                     f"pasted together?): {len(rows)} such row{'s' if len(rows) != 1 else ''} skipped.")
    if blank.any():
        rows = cells.index[blank]
        notes.append(f"{len(rows)} empty row{'s' if len(rows) != 1 else ''} ({describe_rows(rows)}) skipped.")
    return frame.loc[~(blank | header)], notes


def _local_numbers(text: pd.Series, *, prefer_decimal_comma: bool, allow_percent: bool
                   ) -> tuple[pd.Series, list[str]] | None:
    """``text`` (stripped, non-missing) as numbers written with separators, currency or percent signs, or None
    when some value is not a number in one consistent convention. Also what was read beyond plain numbers."""
    kinds = []
    bare = text.str.replace(_CURRENCY, r"\1", regex=True)
    if (bare != text).any():
        kinds.append("currency symbols")
    percent = bare.str.endswith("%")
    if percent.any():
        if not allow_percent:
            return None
        kinds.append("percent signs (read as fractions)")
        bare = bare.where(~percent, bare.str[:-1].str.strip())
    plain = pd.to_numeric(bare, errors="coerce")
    odd = bare[plain.isna()]
    spaced = odd.str.match(_SPACED)
    odd_rest = odd[~spaced]
    us_ok = bool(odd_rest.str.match(_US).all()) and not odd[spaced].str.contains(",").any()
    dotted_plain = bare[plain.notna() & bare.str.contains(".", regex=False)]
    eu_ok = (bool((odd_rest.str.match(_EU) | odd_rest.str.match(_DECIMAL_COMMA)).all())
             and not odd[spaced].str.contains(".", regex=False).any()
             and bool(dotted_plain.str.match(_EU).all()))
    if len(odd) and not (us_ok or eu_ok):
        return None
    if len(odd):
        ungrouped = bare.str.replace(_GROUP_MARKS, "", regex=True)
        bare = ungrouped.where(bare.index.isin(odd.index[spaced]), bare)
        if eu_ok and (prefer_decimal_comma or not us_ok):
            grouped = bare.str.match(_EU)
            bare = bare.where(~grouped,
                              bare.str.replace(".", "", regex=False)).str.replace(",", ".", regex=False)
            kinds.append("decimal commas" if not grouped.any()
                         else "'.' thousands separators and decimal commas")
        else:
            bare = bare.str.replace(",", "", regex=False)
            kinds.append("thousands separators")
    values = pd.to_numeric(bare, errors="coerce")
    if values.isna().any():
        return None
    values = values.astype("float64").where(~percent, values / 100.0)
    return values, kinds


def type_column(name: str, column: pd.Series, *, prefer_decimal_comma: bool = False,
                allow_percent: bool = True,
                allow_leading_zeros: bool = False) -> tuple[pd.Series, str | None]:
    """One column of text cells as numbers, booleans or text (missing tokens -> NaN), and a note when the
    reading went beyond what pandas would have read."""
    stripped = column.astype("string").str.strip()
    missing = stripped.isna() | stripped.isin(NA_TOKENS)
    present = stripped[~missing].astype(str)
    text = column.where(~missing, np.nan).astype("str")
    if present.empty:
        return pd.Series(np.nan, index=column.index, dtype="float64"), None
    lowered = present.str.lower()
    if lowered.isin(("true", "false")).all():
        flags = lowered == "true"
        if not missing.any():
            return flags.astype(bool), None
        out = pd.Series(pd.NA, index=column.index, dtype="boolean")
        out[present.index] = flags
        return out, None
    plain = pd.to_numeric(present, errors="coerce")
    if plain.notna().all():
        zeros = present.str.match(_LEADING_ZERO)
        if zeros.any() and not allow_leading_zeros:
            first = zeros.idxmax()
            return text, (f"column {name!r} has {int(zeros.sum())} number(s) with leading zeros (e.g. "
                          f"{present[first]!r} in {_row(first)}): read as text, an identifier, not a number.")
        if not missing.any():
            return plain, None
        out = pd.Series(np.nan, index=column.index, dtype="float64")
        out[present.index] = plain.astype("float64")
        return out, None
    if not present[plain.isna()].str.fullmatch(_NUMBER_LIKE).all():
        # letters or other signs: text (a label or feature of text is reported by validation)
        return text, None
    parsed = _local_numbers(present, prefer_decimal_comma=prefer_decimal_comma, allow_percent=allow_percent)
    if parsed is None:
        return text, None
    values, kinds = parsed
    changed = present.index[plain.isna() | present.str.endswith("%")]
    first = changed[0]
    out = pd.Series(np.nan, index=column.index, dtype="float64")
    out[present.index] = values
    return out, (f"column {name!r}: {len(changed)} value(s) written with {' and '.join(kinds)} read as "
                 f"numbers, e.g. {present[first]!r} -> {values[first]:g} ({_row(first)}).")


def _is_text_or_missing(value: object) -> bool:
    return value is None or isinstance(value, str) or (isinstance(value, float) and np.isnan(value))


def type_columns(frame: pd.DataFrame, *, text_columns: Collection[str] = (),
                 number_columns: Collection[str] = (), label_column: str | None = None,
                 decimal_comma: bool = False) -> tuple[pd.DataFrame, list[str]]:
    """Type every text column of ``frame``: ``text_columns`` stay text (identifiers), ``number_columns`` may
    have leading zeros, the label may not be a percentage; ``decimal_comma`` breaks ties such as ``1,299``
    (a ``;``-separated file). Columns that are already typed (Parquet, JSON) are left alone."""
    out, notes = frame.copy(), []
    for name in frame.columns:
        column = frame[name]
        if name in text_columns:
            stripped = column.astype("string").str.strip()
            out[name] = column.where(~(stripped.isna() | stripped.isin(NA_TOKENS)), np.nan).astype("str")
            continue
        if not (pd.api.types.is_string_dtype(column) or pd.api.types.is_object_dtype(column)):
            continue
        if pd.api.types.is_object_dtype(column) and not column.map(_is_text_or_missing).all():
            continue  # mixed Python objects (JSON): validation reports what is wrong with them
        out[name], note = type_column(str(name), column, prefer_decimal_comma=decimal_comma,
                                      allow_percent=name != label_column,
                                      allow_leading_zeros=name in number_columns or name == label_column)
        if note:
            notes.append(note)
    return out, notes


def mojibake_notes(frame: pd.DataFrame) -> list[str]:
    """Text columns whose values look like UTF-8 that was decoded as Windows-1252 before the file was
    written."""
    notes = []
    for name in frame.columns:
        column = frame[name]
        if not pd.api.types.is_string_dtype(column):
            continue
        bad = column.astype("string").str.contains(_MOJIBAKE).fillna(False).astype(bool)
        if bad.any():
            first = bad.idxmax()
            notes.append(f"column {name!r} has {int(bad.sum())} value(s) that look double-encoded (UTF-8 "
                         f"read as Windows-1252 before the file was written), e.g. {column[first]!r} in "
                         f"{_row(first)}; the model would read that text garbled. Re-export the file as "
                         "UTF-8.")
    return notes
