"""The files and fields of an exported model directory and their checksums: an export is whole or refused.

``study export`` records in ``ranker.json`` the SHA-256 of every file it wrote (key ``files``) and of every
field of ``ranker.json`` itself (key ``fields``: the canonical JSON of each value). ``Ranker.load`` checks
them all before building anything, so a lost ``tokenizer.json``, a half-copied ``model.safetensors`` or an
edited ``text_fields`` is refused by name instead of ranking with a 5-token vocabulary, garbage weights or
the wrong text. A ``ranker.json`` without both lists is refused too: nothing would say that the files beside
it are the exported ones. The model card, the metrics and the study config are documentation: listed (so
that ``export --force`` knows them as the export's own), free to edit or remove.

``owned_files`` is what ``study export --force`` may remove from a previous export: only the names its
manifest lists, each a plain relative path inside the folder, never through a symbolic link.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path, PurePosixPath
from typing import Any

from study.errors import UserInputError

MANIFEST_KEY = "files"
FIELDS_KEY = "fields"
SPEC_FILE = "ranker.json"
DOCUMENTATION = ("README.md", "metrics.json", "study_config.json")
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "spiece.model", "sentencepiece.bpe.model")
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
_AGAIN = ("Copy the whole directory again from where it was exported, or export it again with "
          "`study export NAME --out DIR`.")


def sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def file_manifest(folder: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of every file under ``folder`` but ``ranker.json`` (which holds this)."""
    return {p.relative_to(folder).as_posix(): sha256(p) for p in sorted(folder.rglob("*"))
            if p.is_file() and p.relative_to(folder).as_posix() != SPEC_FILE}


def field_digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def field_manifest(spec: dict[str, Any]) -> dict[str, str]:
    """``{field: sha256 of its canonical JSON}`` of every field of ``ranker.json`` but the two lists."""
    return {k: field_digest(v) for k, v in spec.items() if k not in (MANIFEST_KEY, FIELDS_KEY)}


def _safe_name(name: object) -> bool:
    """A relative path inside the folder: no absolute path, no ``..``, no empty part."""
    if not isinstance(name, str) or not name or "\\" in name:
        return False
    parts = PurePosixPath(name).parts
    return not PurePosixPath(name).is_absolute() and all(p not in ("", ".", "..") for p in parts)


def check_manifest(path: Path, spec: dict[str, Any]) -> None:
    """Refuse a ``ranker.json`` without its lists of files and fields, or with a field changed, added or
    removed since the export, each by name."""
    spec_file = path / SPEC_FILE
    files, fields = spec.get(MANIFEST_KEY), spec.get(FIELDS_KEY)
    if not (isinstance(files, dict) and files and isinstance(fields, dict) and fields
            and all(_safe_name(k) and isinstance(v, str) for k, v in files.items())
            and all(isinstance(v, str) for v in fields.values())):
        raise UserInputError(
            f"{spec_file} has no list of the export's files and fields with their checksums (`files` and "
            "`fields`, written by `study export`), so nothing says that the weights, tokenizer and settings "
            f"beside it are the exported ones; not loading it. {_AGAIN}")
    problems = []
    for key in sorted((set(spec) | set(fields)) - {MANIFEST_KEY, FIELDS_KEY}):
        if key not in fields:
            problems.append(f"field {key!r} was added")
        elif key not in spec:
            problems.append(f"field {key!r} is missing")
        elif field_digest(spec[key]) != fields[key]:
            problems.append(f"field {key!r} has changed")
    if problems:
        raise UserInputError(f"{spec_file} was edited since the export: {'; '.join(problems)} (its checksum "
                             f"differs from the one recorded in `fields`); not loading it. {_AGAIN}")


def _needed(spec: dict[str, Any], *, uses_encoder: bool) -> list[tuple[str, ...]]:
    """What loading and ranking read, each as alternatives (one of them must exist)."""
    needed: list[tuple[str, ...]] = [("model.safetensors",), ("feature_scaler.json",)]
    if uses_encoder:
        needed += [("encoder/config.json",), tuple(f"encoder/{f}" for f in TOKENIZER_FILES)]
    if spec.get("match"):
        needed.append(("match_features.json",))
    if spec.get("prior"):
        needed += [("prior_encoder/config.json",), tuple(f"prior_encoder/{f}" for f in WEIGHT_FILES),
                   tuple(f"prior_encoder/{f}" for f in TOKENIZER_FILES)]
    return needed


def check_export_files(path: Path, spec: dict[str, Any], *, uses_encoder: bool) -> None:
    """Refuse an export with a needed file missing, or a file that differs from its recorded checksum."""
    problems = [f"{' or '.join(options)} is missing" for options in _needed(spec, uses_encoder=uses_encoder)
                if not any((path / name).is_file() for name in options)]
    for name, digest in (spec.get(MANIFEST_KEY) or {}).items():
        file = path / name
        if name in DOCUMENTATION:
            continue
        if not file.is_file():
            problems.append(f"{name} is missing")
        elif sha256(file) != digest:
            problems.append(f"{name} has changed since the export (its SHA-256 differs from ranker.json's)")
    if problems:
        shown = sorted(set(problems))
        raise UserInputError(
            f"The exported model {path} is incomplete or damaged: {'; '.join(shown[:5])}"
            + (f" (and {len(shown) - 5} more)" if len(shown) > 5 else "")
            + f". {_AGAIN}")


def owned_files(out: Path) -> list[str]:
    """The files of the previous export at ``out`` that ``study export --force`` may replace: ``ranker.json``
    and the names its manifest lists. Refused when ``ranker.json`` cannot be read or lists no files, or names
    a path outside the folder, so that nothing else there is ever removed."""
    spec_file = out / SPEC_FILE
    try:
        spec = json.loads(spec_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserInputError(f"{spec_file} cannot be read ({exc}); not replacing {out}. Move it away or "
                             "choose another --out.") from None
    files = spec.get(MANIFEST_KEY) if isinstance(spec, dict) else None
    if not isinstance(files, dict) or not files or not all(_safe_name(k) for k in files):
        raise UserInputError(f"{spec_file} lists no files of its own (`files`), so `--force` cannot tell the "
                             f"export's files from others in {out}; not replacing anything. Move it away or "
                             "choose another --out.")
    return [SPEC_FILE, *files]
