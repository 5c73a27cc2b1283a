"""The files of an exported model directory and their checksums.

``study export`` records in ``ranker.json`` (key ``files``) the SHA-256 of every file the model is loaded
from: the weights, the feature transforms, the encoder's config and tokenizer, the prior encoder.
``Ranker.load`` checks them all before building anything, so a lost ``tokenizer.json`` or a half-copied
``model.safetensors`` is refused by name instead of ranking with a 5-token vocabulary or garbage weights. The
model card, the metrics and the study config are documentation: not listed, free to edit. Exports written
before the manifest still load after a check that the files they need are there.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from study.errors import UserInputError

MANIFEST_KEY = "files"
DOCUMENTATION = ("README.md", "metrics.json", "study_config.json", "ranker.json")
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "spiece.model", "sentencepiece.bpe.model")
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def file_manifest(folder: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of every file under ``folder`` that a load reads (not documentation)."""
    return {p.relative_to(folder).as_posix(): sha256(p) for p in sorted(folder.rglob("*"))
            if p.is_file() and p.relative_to(folder).as_posix() not in DOCUMENTATION}


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
        if not file.is_file():
            problems.append(f"{name} is missing")
        elif sha256(file) != digest:
            problems.append(f"{name} has changed since the export (its SHA-256 differs from ranker.json's)")
    if problems:
        shown = sorted(set(problems))
        raise UserInputError(
            f"The exported model {path} is incomplete or damaged: {'; '.join(shown[:5])}"
            + (f" (and {len(shown) - 5} more)" if len(shown) > 5 else "")
            + ". Copy the whole directory again from where it was exported, or export it again with "
              "`study export NAME --out DIR`.")
