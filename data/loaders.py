"""Reading user files (CSV, TSV, Parquet, JSON lines, a zip holding one CSV) into a raw DataFrame.

The loader only reads, renames file columns to canonical names (``columns``: canonical -> file column)
and turns letter grades into gains (``label_map``); checking the content is ``data.validate``'s job.
Every failure to read is a ``UserInputError`` that names the file.
"""

from __future__ import annotations

import csv
import io
import logging
import zipfile
from collections.abc import Mapping
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from study.data.cells import drop_junk_rows, mojibake_notes, type_columns
from study.data.column_names import recognise_columns
from study.data.json_records import refuse_repeated_keys
from study.data.schema import ESCI_GAINS, KNOWN_FEATURE_FIELDS, LABEL
from study.data.text_files import decode_text, file_bytes, sniff_separator

from study.errors import UserInputError, describe_rows, did_you_mean, missing_path

logger = logging.getLogger(__name__)

SUFFIX_FORMATS = {".csv": "csv", ".tsv": "tsv", ".txt": "tsv", ".parquet": "parquet", ".pq": "parquet",
                  ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".zip": "zip"}
COMPRESSION_SUFFIXES = (".gz", ".bz2", ".xz", ".zst")
# Letter or word grades understood without a label_map (ESCI's).
DEFAULT_LABEL_MAP = {**ESCI_GAINS, "exact": 3.0, "substitute": 2.0, "complement": 1.0, "irrelevant": 0.0}
_READ_ERRORS = (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError, OSError,
                pa.ArrowException, zipfile.BadZipFile)
_HEAD_BYTES = 1 << 16


def infer_format(path: str | Path) -> str:
    """``csv``, ``tsv``, ``parquet``, ``jsonl``, ``json`` or ``zip`` from the file name."""
    suffixes = [s.lower() for s in Path(path).suffixes]
    while suffixes and suffixes[-1] in COMPRESSION_SUFFIXES:
        suffixes.pop()
    if suffixes and suffixes[-1] in SUFFIX_FORMATS:
        return SUFFIX_FORMATS[suffixes[-1]]
    raise UserInputError(
        f"Cannot tell the format of {path} from its name; use one of "
        f"{', '.join(sorted(SUFFIX_FORMATS))} or set data.format to csv, tsv, parquet, jsonl or json."
    )


def _read_delimited(raw: bytes, *, name: str, path: Path, encoding: str | None, id_columns: tuple[str, ...],
                    number_columns: tuple[str, ...],
                    label_column: str | None) -> tuple[pd.DataFrame, list[str]]:
    """A CSV/TSV file's bytes read as text cells, then typed by ``data.cells`` (see there)."""
    text, notes = decode_text(raw, encoding=encoding, path=path)
    sep = sniff_separator(text, "\t" if name.lower().endswith((".tsv", ".tsv.gz", ".txt")) else ",")
    refuse_repeated_names(next(csv.reader(io.StringIO(text), delimiter=sep), []), path=path)
    frame = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False)
    frame, junk = drop_junk_rows(frame)
    frame, typed = type_columns(frame, text_columns=id_columns, number_columns=number_columns,
                                label_column=label_column, decimal_comma=sep == ";")
    return frame, notes + junk + typed


def _zip_member(archive: zipfile.ZipFile, path: Path) -> str:
    members = [m for m in archive.namelist() if m.lower().endswith((".csv", ".tsv")) and "__MACOSX" not in m]
    if len(members) != 1:
        raise UserInputError(
            f"The zip file {path} must hold exactly one .csv or .tsv file, found {len(members)}"
            f"{': ' + ', '.join(members) if members else ''}."
        )
    return members[0]


def read_columns(path: str | Path, *, format: str | None = None, encoding: str | None = None) -> list[str]:
    """A file's column names from its header alone (no rows parsed); [] when the header cannot be read."""
    path = Path(path)
    try:
        fmt = format or infer_format(path)
        if fmt in ("csv", "tsv", "zip"):
            name = path.name if fmt != "tsv" else "x.tsv"
            if fmt == "zip":
                with zipfile.ZipFile(path) as archive:
                    name = _zip_member(archive, path)
                    with archive.open(name) as handle:
                        head = handle.read(_HEAD_BYTES)
            else:
                head = file_bytes(path, limit=_HEAD_BYTES)
            head = head[:head.rfind(b"\n") + 1] or head  # whole lines: no character cut in two
            text = decode_text(head, encoding=encoding, path=path)[0]
            sep = sniff_separator(text, "\t" if name.lower().endswith((".tsv", ".txt")) else ",")
            return list(pd.read_csv(io.StringIO(text.splitlines()[0]), sep=sep, nrows=0).columns.map(str))
        if fmt == "parquet":
            return [str(name) for name in pq.read_schema(path).names]
        if fmt in ("jsonl", "json"):
            return list(pd.read_json(path, lines=fmt == "jsonl", nrows=1 if fmt == "jsonl" else None,
                                     encoding=encoding).columns.map(str))
    except (UserInputError, IndexError, *_READ_ERRORS):  # IndexError: no line at all (a 0-byte file)
        return []
    return []


def refuse_repeated_names(header: list[str], *, path: Path) -> None:
    """Two columns of one name would be renamed apart silently (``label`` and ``label.1``, the second read as
    a feature: the label leaking into training); refused, naming each repeated name and its positions."""
    positions: dict[str, list[int]] = {}
    for i, name in enumerate(header, 1):
        if str(name).strip():  # blank headers (a spreadsheet's trailing empty columns) are not names
            positions.setdefault(str(name).strip(), []).append(i)
    repeated = {name: where for name, where in positions.items() if len(where) > 1}
    if repeated:
        said = "; ".join(f"{name!r} (columns {', '.join(map(str, at))})" for name, at in repeated.items())
        raise UserInputError(f"The data file {path} has several columns of the same name: {said}. Each "
                             "column needs its own name, or one of them would be read in place of the other; "
                             "rename or remove the repeats.")


def _read_format(path: Path, fmt: str, *, encoding: str | None, id_columns: tuple[str, ...],
                 number_columns: tuple[str, ...], label_column: str | None) -> tuple[pd.DataFrame, list[str]]:
    """The file read by its format, and what the reading changed (see ``read_raw``)."""
    options = {"encoding": encoding, "id_columns": id_columns, "number_columns": number_columns,
               "label_column": label_column}
    if fmt in ("csv", "tsv"):
        return _read_delimited(file_bytes(path), name=path.name if fmt == "csv" else "x.tsv", path=path,
                               **options)
    if fmt == "zip":
        with zipfile.ZipFile(path) as archive:
            member = _zip_member(archive, path)
            raw = archive.read(member)
        return _read_delimited(raw, name=member, path=path, **options)
    if fmt == "parquet":
        refuse_repeated_names(pq.read_schema(path).names, path=path)
        return pd.read_parquet(path), []
    if fmt in ("jsonl", "json"):  # .json: JSON lines, or one array of records
        with open(path, "rb") as handle:
            is_array = fmt == "json" and handle.read(4096).lstrip().startswith(b"[")
        refuse_repeated_keys(path, is_array=is_array)
        frame = pd.read_json(path, lines=not is_array, encoding=encoding,
                             dtype=dict.fromkeys(id_columns, "str"))
        return type_columns(frame, text_columns=id_columns, number_columns=number_columns,
                            label_column=label_column)
    raise UserInputError(f"Unknown data format {fmt!r} for {path}; use csv, tsv, parquet or jsonl.")


def read_raw(path: str | Path, *, format: str | None = None, encoding: str | None = None,
             id_columns: tuple[str, ...] = (), number_columns: tuple[str, ...] = (),
             label_column: str | None = None, notes: list[str] | None = None) -> pd.DataFrame:
    """Read one file as it is: ``id_columns`` (file column names) stay text, keeping zeros; ``number_columns``
    are numbers even with leading zeros; ``label_column`` is never read as a percentage.

    What the reading changed beyond a plain read (another encoding, numbers with separators, skipped rows,
    ...) is appended to ``notes``, or logged as warnings when no list is given. The index is the file's data
    row (0 = the first row after the header) even where rows were skipped.
    """
    path = Path(path)
    if not path.exists():
        raise UserInputError(missing_path(path))
    if path.is_dir():
        raise UserInputError(f"{path} is a directory; data.path must name a file for data.source = 'file'.")
    fmt = format or infer_format(path)
    if path.stat().st_size == 0:
        raise UserInputError(f"The data file {path} is empty (0 bytes): it has no header and no rows. Check "
                             "that it was written completely (an export or a copy cut short?).")
    try:
        frame, found = _read_format(path, fmt, encoding=encoding, id_columns=id_columns,
                                    number_columns=number_columns, label_column=label_column)
    except UnicodeDecodeError as exc:
        raise UserInputError(
            f"Cannot read {path}: it is not valid {encoding or 'utf-8'} text "
            f"({exc.reason} at byte {exc.start}). "
            "Set data.encoding, for example encoding = \"latin-1\"."
        ) from None
    except _READ_ERRORS as exc:
        reason = str(exc).strip() or type(exc).__name__
        raise UserInputError(f"Cannot read {path} as {fmt}: {reason}.") from None
    if not isinstance(frame, pd.DataFrame) or frame.empty:
        raise UserInputError(f"The data file {path} holds no rows.")
    found += mojibake_notes(frame)
    if notes is None:
        for note in found:
            logger.warning("warning: %s: %s", path, note)
    else:
        notes.extend(found)
    return frame


def apply_column_map(frame: pd.DataFrame, columns: Mapping[str, str], *, source: str,
                     origin: str = "data.columns") -> pd.DataFrame:
    """Rename file columns to canonical names, e.g. ``{"query": "search_term"}``; ``origin`` names where the
    mapping came from in a refusal (``data.columns``, ``--map``, ``columns=``)."""
    missing = [(canonical, file_col) for canonical, file_col in columns.items()
               if file_col not in frame.columns]
    if missing:
        raise UserInputError(column_map_refusal(missing, list(map(str, frame.columns)), source=source,
                                                origin=origin))
    clashes = [c for c in columns if c in frame.columns and c not in columns.values()]
    if clashes:
        raise UserInputError(
            f"{source}: {origin} maps another column to {', '.join(map(repr, clashes))}, but the file "
            "already has a column of that name; rename or drop one of them."
        )
    return frame.rename(columns={file_col: canonical for canonical, file_col in columns.items()})


def column_map_refusal(missing: list[tuple[str, str]], found: list[str], *, source: str, origin: str) -> str:
    """The refusal of a column mapping whose file columns are not there, each with the closest column the
    file has: ``--map query=search_trm`` -> ``Did you mean 'search_term'?``."""
    def given(canonical: str, file_col: str) -> str:
        if origin.startswith("-"):  # --map query=search_trm
            return f"{origin} {canonical}={file_col}"
        if origin.endswith("="):  # the API's columns={'query': 'search_trm'}
            return f"{origin}{{{canonical!r}: {file_col!r}}}"
        return f"{origin} maps {canonical} to {file_col!r}"

    shown = " ".join(f"{given(canonical, file_col)}, but the file has no such column."
                     + did_you_mean(file_col, found) for canonical, file_col in missing)
    return f"{source}: {shown} Its columns are: {', '.join(found)}."


def check_column_map(path: str | Path, columns: Mapping[str, str], *, origin: str,
                     format: str | None = None) -> None:
    """Refuse a mapping to columns that the file's header lacks, before anything else is read or printed
    (``study run --map``, ``study data check --map``); a header that cannot be read is left to the loader."""
    found = read_columns(path, format=format)
    missing = [(canonical, file_col) for canonical, file_col in columns.items() if file_col not in found]
    if found and missing:
        raise UserInputError(column_map_refusal(missing, found, source=str(path), origin=origin))


def apply_label_map(frame: pd.DataFrame, label_map: Mapping[str, float], *, source: str) -> pd.DataFrame:
    """Turn letter/word grades into gains; numeric labels are left alone when no map is given.

    Without a ``label_map``, labels that are all ESCI letters (E/S/C/I) or words (exact, ...) are mapped
    to 3/2/1/0. Values that are neither numbers nor in the map are reported with their rows.
    """
    if LABEL not in frame.columns:
        return frame
    labels = frame[LABEL]
    present = labels.notna()
    as_text = labels[present].astype(str).str.strip()
    numeric = pd.to_numeric(as_text, errors="coerce")
    mapping = dict(label_map)
    if not mapping:
        if numeric.notna().all():
            return frame
        lowered = as_text.str.lower()
        if not lowered.isin([k.lower() for k in DEFAULT_LABEL_MAP]).all():
            return frame  # validate_pairs reports the non-numeric labels with their rows
        mapping = {k.lower(): v for k, v in DEFAULT_LABEL_MAP.items()}
        as_text = lowered
    mapped = as_text.map(mapping)
    unknown = mapped.isna() & numeric.isna()
    if unknown.any():
        values = sorted(set(as_text[unknown]))[:5]
        raise UserInputError(
            f"{source}: column 'label' has value(s) {', '.join(map(repr, values))} in "
            f"{describe_rows(as_text.index[unknown])} that data.label_map does not know "
            f"(its keys: {', '.join(mapping)}). Add them to data.label_map or fix those rows."
        )
    out = frame.copy()
    values = mapped.where(mapped.notna(), numeric)
    out[LABEL] = pd.Series(float("nan"), index=frame.index, dtype="float64")
    out.loc[values.index, LABEL] = values.astype("float64")
    return out


def load_file(path: str | Path, *, format: str | None = None, columns: Mapping[str, str] | None = None,
              label_map: Mapping[str, float] | None = None, encoding: str | None = None,
              notes: list[str] | None = None) -> pd.DataFrame:
    """Read a user file into a raw DataFrame with canonical column names and gain labels; what the reading
    changed goes to ``notes`` (see ``read_raw``)."""
    columns = dict(columns or {})
    recognised, said = recognise_columns(read_columns(path, format=format, encoding=encoding), columns)
    columns = {**recognised, **columns}
    if notes is None:
        for note in said:
            logger.warning("warning: %s: %s", path, note)
    else:
        notes.extend(said)
    id_columns = tuple(columns.get(c, c) for c in ("query_id", "product_id"))
    numbers = tuple(columns.get(c, c) for c in KNOWN_FEATURE_FIELDS)
    frame = read_raw(path, format=format, encoding=encoding, id_columns=id_columns, number_columns=numbers,
                     label_column=columns.get(LABEL, LABEL), notes=notes)
    frame = apply_column_map(frame, columns, source=str(path))
    return apply_label_map(frame, dict(label_map or {}), source=str(path))
