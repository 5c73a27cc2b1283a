"""From a delimited text file's bytes to its text: decompression, the encoding and the separator.

A file that is not UTF-8 is still read when one reading is right (Windows-1252, the encoding of most
spreadsheet exports that are not UTF-8), with a note saying so; a file that mixes encodings is refused.
"""

from __future__ import annotations

import bz2
import codecs
import csv
import gzip
import lzma
import re
from pathlib import Path

from study.errors import UserInputError

# A UTF-8 encoded non-ASCII character: a file holding one is UTF-8 text, whatever else it holds.
_UTF8_SEQUENCE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")


def file_bytes(path: Path, *, limit: int | None = None) -> bytes:
    """The file's bytes (the first ``limit`` of them), decompressed when its name ends in .gz, .bz2, .xz,
    .zst."""
    suffix = path.suffix.lower()
    if suffix == ".zst":
        try:
            import zstandard  # optional: only .zst files need it, and its absence is a clear error
        except ImportError:
            raise UserInputError(f"Cannot read {path}: reading .zst files needs the zstandard "
                                 "package.") from None
        with open(path, "rb") as handle, zstandard.ZstdDecompressor().stream_reader(handle) as reader:
            return reader.read(limit if limit is not None else -1)
    opener = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}.get(suffix, open)
    with opener(path, "rb") as handle:
        return handle.read(limit if limit is not None else -1)


def _line_of(raw: bytes, position: int) -> int:
    return raw.count(b"\n", 0, position) + 1


def decode_text(raw: bytes, *, encoding: str | None, path: Path | str) -> tuple[str, list[str]]:
    """The text of a CSV/TSV file and a note when it was not UTF-8.

    With ``encoding`` given, that encoding (a UTF-8 byte-order mark is dropped). Without: UTF-16 when the
    file starts with its byte-order mark (Excel's "Unicode text"), else UTF-8, else Windows-1252 (Latin-1
    where that has no character) with a note, unless the file also holds UTF-8 text: mixed encodings are an
    error, as no single reading is right.
    """
    if encoding is not None:
        try:
            known = codecs.lookup(encoding).name
        except LookupError:
            raise UserInputError(f"Unknown encoding {encoding!r} (data.encoding) for {path}; use e.g. utf-8, "
                                 "cp1252 or latin-1.") from None
        try:
            text = raw.decode("utf-8-sig" if known == "utf-8" else encoding)
        except UnicodeDecodeError as exc:
            raise UserInputError(
                f"Cannot read {path}: it is not valid {encoding} text ({exc.reason} at byte {exc.start}, "
                f"line {_line_of(raw, exc.start)}). Set data.encoding to the file's encoding, for example "
                "encoding = \"cp1252\"."
            ) from None
        return text.removeprefix("\ufeff").removeprefix("ï»¿"), []
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return raw.decode("utf-16"), []
    try:
        return raw.decode("utf-8-sig"), []
    except UnicodeDecodeError as exc:
        bad, line = raw[exc.start], _line_of(raw, exc.start)
        utf8 = _UTF8_SEQUENCE.search(raw)
        if utf8 is not None:
            raise UserInputError(
                f"Cannot read {path}: it mixes encodings. Line {_line_of(raw, utf8.start())} holds UTF-8 "
                f"text ({utf8.group().decode()!r}) but byte 0x{bad:02x} on line {line} is not UTF-8, so no "
                "single reading of the file is right. Re-export it as UTF-8, or set data.encoding if one "
                "encoding is meant."
            ) from None
        try:
            text, name = raw.decode("cp1252"), "Windows-1252"
        except UnicodeDecodeError:
            text, name = raw.decode("latin-1"), "Latin-1"
        start = raw.rfind(b"\n", 0, exc.start) + 1  # one byte is one character in both encodings
        end = raw.find(b"\n", exc.start)
        example, char = text[start:end if end >= 0 else len(text)], text[exc.start]
        return text, [(f"the file is not UTF-8 (byte 0x{bad:02x} on line {line}); it was read as {name}, "
                       f"where that byte is {char!r}, so line {line} reads {example.strip()[:80]!r}. If "
                       "that is wrong, set data.encoding.")]


def sniff_separator(text: str, default: str) -> str:
    """The separator of a delimited file from its header line: ``default`` unless ``;``, tab or ``|`` splits
    the header into more columns (a .csv written by a European Excel uses ``;``)."""
    lines = text[:1 << 16].lstrip("\ufeff").splitlines()
    first = lines[0] if lines else ""
    counts = {sep: len(next(csv.reader([first], delimiter=sep), []))
              for sep in (default, ",", ";", "\t", "|")}
    best = max(counts, key=lambda sep: counts[sep])
    return best if counts[best] > counts[default] else default
