"""The resolved config as TOML (``study run --print-config``), which ``--config`` reads back into an equal
config; ``toml_value`` also spells ``--set`` values."""

from __future__ import annotations

import re
from typing import Any

from study.config import SECTIONS, Config
from study.storage.urls import redact

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r", "\b": "\\b", "\f": "\\f"}


def _toml_string(text: str) -> str:
    out = (_ESCAPES.get(ch) or (f"\\u{ord(ch):04X}" if ord(ch) < 0x20 or ord(ch) == 0x7F else ch)
           for ch in text)
    return '"' + "".join(out) + '"'


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _toml_string(key)


def toml_value(value: Any) -> str:
    """One TOML value: strings, booleans, numbers, arrays and inline tables (``None`` entries left out)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)  # 3e-05, 1.0, inf and nan are TOML as Python writes them
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        items = ", ".join(f"{_toml_key(str(k))} = {toml_value(v)}" for k, v in value.items() if v is not None)
        return "{" + items + "}" if items else "{}"
    raise TypeError(f"cannot write {value!r} ({type(value).__name__}) as TOML")


def config_to_toml(config: Config) -> str:
    """The config as a TOML file that ``load_config`` turns back into an equal config (a storage password is
    shown as ``***``, as everywhere)."""
    d = config.to_dict()
    d["storage"]["url"] = redact(d["storage"]["url"])
    lines = []
    for section in [*SECTIONS, "search"]:
        lines.append(f"[{section}]")
        lines += [f"{_toml_key(k)} = {toml_value(v)}" for k, v in d[section].items() if v is not None]
        lines.append("")
    for entry in d["enqueue"]:
        lines += ["[[enqueue]]", *(f"{_toml_key(k)} = {toml_value(v)}" for k, v in entry.items()), ""]
    return "\n".join(lines)
