"""Repeated keys in JSON records: ``{"label": 1, "label": 3}`` is valid JSON, and every JSON reader keeps the
last value without a word, so the file's own author cannot tell which grade was trained on. Refused like a
CSV header that names one column twice (``loaders.refuse_repeated_names``)."""

from __future__ import annotations

import json
from pathlib import Path

from study.data.text_files import file_bytes

from study.errors import UserInputError

SCAN_BYTES = 4 << 20  # JSON lines: the records in the first 4 MiB (a writer that repeats a key, repeats it
SCAN_ARRAY_BYTES = 32 << 20  # in every record); a JSON array is parsed whole up to 32 MiB


def _pairs_hook(repeated: set[str], flagged: list[int]):
    """Collects repeated keys, and the ``id`` of each object that held one."""
    def hook(pairs: list[tuple[str, object]]) -> dict:
        seen: set[str] = set()
        record = dict(pairs)
        for key, _ in pairs:
            if key in seen:
                repeated.add(key)
                flagged.append(id(record))
            seen.add(key)
        return record
    return hook


def refuse_repeated_keys(path: Path, *, is_array: bool) -> None:
    """Raise ``UserInputError`` naming the repeated keys and the first record (line) holding them; records
    that do not parse are left to the reader, which reports them."""
    raw = file_bytes(path, limit=SCAN_ARRAY_BYTES + 1 if is_array else SCAN_BYTES)
    text = raw.decode("utf-8", errors="replace")
    repeated: set[str] = set()
    flagged: list[int] = []
    hook = _pairs_hook(repeated, flagged)
    if is_array:
        if len(raw) > SCAN_ARRAY_BYTES:
            return
        try:
            records = json.loads(text, object_pairs_hook=hook)
        except ValueError:
            return
        where = next((f"record {i + 1}" for i, r in enumerate(records if isinstance(records, list) else [])
                      if id(r) in flagged), "a nested object")
    else:
        lines = text.splitlines()[:-1] if len(raw) >= SCAN_BYTES else text.splitlines()  # whole lines only
        where = ""
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                json.loads(line, object_pairs_hook=hook)
            except ValueError:
                continue
            if repeated:
                where = f"line {number}"
                break
    if repeated:
        names = ", ".join(repr(k) for k in sorted(repeated))
        raise UserInputError(
            f"The data file {path} has a record with the same key twice: {names} ({where}). A JSON reader "
            "keeps only the last value of a repeated key, so the other would be dropped without a word; give "
            "each field its own key, or remove the repeats.")
