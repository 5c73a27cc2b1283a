"""Ranking candidates with an exported model: ``Ranker.load(DIR).rank(df)`` and ``study rank``.

A candidates file needs the query text and at least one of the model's text columns; a missing text column is
scored as empty text and missing behaviour columns as cold start (training medians, flagged missing), each
with a warning naming it. ``product_id`` and ``label`` are optional: without ``product_id`` the output gets a
``row`` column (the candidate's 1-based position in the input), and a label is never read. Columns are
found under their canonical names, under the training file's names (the export remembers its column mapping,
``ranker.json``'s ``columns``), or where the caller maps them (``--map``, ``columns=``).
The network it wraps is ``study.models.ranker.RankingNet``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file

from study.data.batching import build_split_tensors
from study.data.features import FeatureScaler
from study.data.loaders import apply_column_map, read_raw
from study.data.match import MatchFeaturizer
from study.data.schema import JudgedPairs
from study.data.validate import validate_pairs
from study.errors import UserInputError, describe_rows
from study.export.manifest import check_export_files, check_manifest
from study.export.model_dir import FORMAT, FORMAT_VERSION
from study.models import encoder as encoder_module
from study.models import ranker as network_module
from study.models.config import LEGACY_MODEL_VALUES
from study.models.device import resolve_device, resolve_precision
from study.models.ranker import RankerConfig
from study.models.train import predict
from study.workspace import assemble_inputs

logger = logging.getLogger(__name__)

OUTPUT_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl",
                  ".ndjson": "jsonl"}


def _build_network(config: RankerConfig, n_features: int, weights: dict[str, torch.Tensor],
                   encoder_dir: Path) -> network_module.RankingNet:
    """The network with its BERT built from ``encoder/config.json``, not from a pretrained checkpoint.

    ``models.encoder.load_encoder`` reads config and weights through a per-process cache keyed by directory;
    handing it the exported config and the encoder's share of ``model.safetensors`` there builds the BertModel
    from its config without any other file. The entry is removed again straight after.
    """
    if not config.uses_encoder:
        return network_module.RankingNet(config, n_features=n_features)
    from transformers import AutoConfig  # transformers: ~1 s, only models with an encoder need it

    key = str(encoder_dir.resolve())
    encoder_state = {k.removeprefix("encoder."): v for k, v in weights.items() if k.startswith("encoder.")}
    encoder_module._STATE_CACHE[key] = (AutoConfig.from_pretrained(key, local_files_only=True), encoder_state)
    try:
        return network_module.RankingNet(config, n_features=n_features)
    finally:
        encoder_module._STATE_CACHE.pop(key, None)


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


class Ranker:
    """An exported model: scores (query, product) candidates and orders them within each query."""

    def __init__(self, network: network_module.RankingNet, *, spec: dict[str, Any], scaler: FeatureScaler,
                 encoder_dir: Path | None, device: torch.device, match: MatchFeaturizer | None = None,
                 prior_encoder: Path | None = None) -> None:
        self.network = network.to(device).eval()
        self.spec = spec
        self.scaler = scaler
        self.match = match
        self.prior_encoder = prior_encoder
        self.encoder_dir = encoder_dir  # the trained encoder's directory; None when no encoder reads tokens
        self.device = device
        self.text_fields: tuple[str, ...] = tuple(spec["text_fields"])
        self.feature_fields: tuple[str, ...] = tuple(spec["feature_fields"])

    @classmethod
    def load(cls, path: str | Path, *, device: str = "cpu") -> Ranker:
        path = Path(path)
        spec_file = path / "ranker.json"
        if not spec_file.is_file():
            raise UserInputError(f"{path} is not an exported model (no ranker.json); make one with "
                                 "`study export NAME --out DIR`.")
        try:
            spec = json.loads(spec_file.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise UserInputError(f"{spec_file} is damaged ({exc}); copy the exported model again or export "
                                 "it again with `study export NAME --out DIR`.") from None
        if not isinstance(spec, dict) or spec.get("format") != FORMAT:
            raise UserInputError(f"{spec_file} is not an exported model's description (no format "
                                 f"{FORMAT!r}); make one with `study export NAME --out DIR`.")
        version = spec.get("version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise UserInputError(f"{spec_file} is format {FORMAT!r} version {version!r}; this tool reads "
                                 f"{FORMAT!r} up to version {FORMAT_VERSION}.")
        check_manifest(path, spec)  # every field as exported, before anything is read from them
        target = resolve_device(device)
        try:
            return cls._build(path, spec, target)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            # only a hand-written ranker.json with matching checksums gets here
            raise UserInputError(f"{spec_file} does not describe a model this tool can build ({exc!r}); "
                                 "export it again with `study export NAME --out DIR`.") from None

    @classmethod
    def _build(cls, path: Path, spec: dict[str, Any], device: torch.device) -> Ranker:
        known = {f.name for f in dataclasses.fields(RankerConfig)}
        encoder_dir = path / "encoder"
        stored = {k: v for k, v in spec["model"].items() if k in known}
        config = RankerConfig(**{**LEGACY_MODEL_VALUES, **stored, "encoder": str(encoder_dir), "n_layers": 0})
        check_export_files(path, spec, uses_encoder=config.uses_encoder)  # before anything is built from them
        weights = load_file(str(path / "model.safetensors"), device="cpu")
        network = _build_network(config, int(spec["n_features"]), weights, encoder_dir)
        network.load_state_dict(weights, strict=True)
        scaler = FeatureScaler.from_dict(_read_json(path / "feature_scaler.json"))
        match = None
        if spec.get("match"):
            match = MatchFeaturizer.from_dict(_read_json(path / "match_features.json"))
        return cls(network, spec=spec, scaler=scaler,
                   encoder_dir=encoder_dir if config.uses_encoder else None, device=device,
                   match=match,
                   prior_encoder=path / "prior_encoder" if spec.get("prior") else None)

    @property
    def columns(self) -> dict[str, str]:
        """The training file's column names (canonical -> file column), as ``study export`` stored them."""
        return dict(self.spec.get("columns") or {})

    def map_columns(self, frame: pd.DataFrame, columns: dict[str, str] | None = None, *,
                    source: str = "candidates", origin: str = "columns=") -> pd.DataFrame:
        """``frame`` with canonical column names: ``columns`` (the caller's, canonical -> file column) must
        name columns the frame has; the export's own mapping renames what the frame holds under the training
        file's names, where the frame lacks the canonical name. ``origin`` is how the caller passed
        ``columns`` (``--map`` or ``columns=``), for a refusal."""
        given = dict(columns or {})
        frame = apply_column_map(frame, given, source=source, origin=origin) if given else frame
        remembered = {file_col: canonical for canonical, file_col in self.columns.items()
                      if canonical not in given and canonical not in frame.columns
                      and file_col in frame.columns}
        if remembered:
            logger.info("%s: columns read as at training: %s", source,
                        ", ".join(f"{c}={f}" for f, c in remembered.items()))
        return frame.rename(columns=remembered)

    def _pairs(self, frame: pd.DataFrame, source: str, origin: str) -> JudgedPairs:
        texts = tuple(f for f in self.text_fields if f in frame.columns)
        reads_text = self.network.config.uses_text  # a features-only model reads no product text
        needed = [*(["'query'"] if "query" not in frame.columns else []),
                  *([f"one of the model's text columns ({', '.join(map(repr, self.text_fields))})"]
                    if reads_text and not texts else [])]
        if needed:
            example = ("--map query=search_term" if origin == "--map"
                       else "columns={'query': 'search_term'}")
            trained = ", ".join(f"{c}={f}" for c, f in self.columns.items())
            raise UserInputError(
                f"{source}: missing {' and '.join(needed)}. Ranking needs the query text and, for a "
                "model that reads product text, at least one of its text columns (a missing one is scored as "
                "empty text); product_id, behaviour columns and label are optional. Columns found: "
                f"{', '.join(map(str, frame.columns))}"
                + (f" (the model was trained on a file with {trained})" if trained else "")
                + f"; map differently named ones with {example}.")
        empty = [f for f in self.text_fields if f not in texts]
        if empty and reads_text:
            logger.warning("%s: text column(s) %s missing: every candidate is scored with empty text there.",
                           source, ", ".join(empty))
        frame = frame.assign(**dict.fromkeys(empty, ""))
        absent = [f for f in self.feature_fields if f not in frame.columns]
        if absent:
            logger.warning("%s: behaviour column(s) %s missing: every candidate is scored as a cold-start "
                           "product for them (training median plus a missing flag).", source,
                           ", ".join(absent))
        present = tuple(f for f in self.feature_fields if f in frame.columns)
        # never read: may hold anything
        frame = frame.drop(columns=[c for c in ("label",) if c in frame.columns])
        pairs = validate_pairs(frame, source=source, text_fields=self.text_fields, feature_fields=present,
                               require_label=False)
        _warn_unrankable(pairs.frame, source)
        return pairs

    def score(self, frame: pd.DataFrame, *, source: str = "candidates", columns: dict[str, str] | None = None,
              origin: str = "columns=") -> np.ndarray:
        """One score per row of ``frame``, in its row order (higher = rank first)."""
        return self._score(self.map_columns(frame, columns, source=source, origin=origin), source, origin)[0]

    def _score(self, frame: pd.DataFrame, source: str, origin: str) -> tuple[np.ndarray, np.ndarray]:
        """Scores and query ids (derived from the query text where absent), in the row order of ``frame``."""
        pairs = self._pairs(frame.reset_index(drop=True), source, origin)
        canonical = pairs.frame.assign(_row=np.arange(len(pairs.frame)))
        tagged = JudgedPairs(canonical, pairs.text_fields, pairs.feature_fields, pairs.name)
        config = self.network.config
        inputs = assemble_inputs(canonical, self.text_fields, model=config, scaler=self.scaler,
                                 match=self.match, prior_encoder=self.prior_encoder, device=self.device,
                                 cache=False)
        split = build_split_tensors(tagged, inputs, device=self.device,
                                    model_dir=str(self.encoder_dir) if self.encoder_dir is not None else None,
                                    max_length=config.max_length, separate_query=config.needs_query_tokens,
                                    cache=False)
        sorted_scores = predict(self.network, split, batch_size=int(self.spec.get("eval_batch_size", 512)),
                                dtype=resolve_precision(self.spec.get("precision", "auto"), self.device))
        scores = np.empty(len(canonical), dtype=np.float64)
        scores[split.frame["_row"].to_numpy()] = sorted_scores
        return scores, pairs.frame["query_id"].to_numpy()

    def rank(self, frame: pd.DataFrame, *, source: str = "candidates", columns: dict[str, str] | None = None,
             origin: str = "columns=") -> pd.DataFrame:
        """``frame`` plus ``score`` and ``rank`` (1 = best), rows ordered by score within each query (equal
        scores keep their input order); queries keep their order of first appearance. Columns are read under
        canonical names, the training file's names (remembered by the export) or ``columns`` (canonical ->
        column of ``frame``), and come out under canonical names. ``query_id`` is added (from the query text)
        when absent, and ``row`` (1-based input position) when there is no ``product_id``."""
        out = self.map_columns(frame.reset_index(drop=True), columns, source=source, origin=origin).copy()
        scores, query_ids = self._score(out, source, origin)
        if "product_id" not in out.columns and "row" not in out.columns:
            out.insert(0, "row", np.arange(1, len(out) + 1))
        if "query_id" not in out.columns:
            out.insert(0, "query_id", query_ids)
        replaced = [c for c in ("score", "rank") if c in out.columns]
        if replaced:
            logger.warning("%s: its own column(s) %s are replaced by the model's %s.", source,
                           ", ".join(map(repr, replaced)), " and ".join(replaced))
        out["score"] = scores
        codes, _ = pd.factorize(out["query_id"].astype(str))
        out = out.iloc[np.lexsort((-scores, codes))].reset_index(drop=True)
        out["rank"] = out.groupby("query_id", sort=False).cumcount() + 1
        return out


def _warn_unrankable(frame: pd.DataFrame, source: str) -> None:
    """Candidates that ranking cannot order: queries with one candidate, a product listed twice for a
    query."""
    sizes = frame.groupby("query_id", sort=False)["query"].agg(["size", "first"])
    single = sizes[sizes["size"] == 1]
    if len(single):
        shown = ", ".join(map(repr, single["first"].head(3))) + (" ..." if len(single) > 3 else "")
        logger.warning("%s: %d of %d queries have a single candidate (%s): nothing to order, each is "
                       "ranked 1.", source, len(single), len(sizes), shown)
    twice = frame.duplicated(["query_id", "product_id"], keep=False)
    if twice.any():
        logger.warning("%s: %d candidate rows repeat a (query, product_id) pair (%s); each is scored and "
                       "ranked.", source, int(twice.sum()), describe_rows(frame.index[twice]))


def read_candidates(path: str | Path, *, columns: dict[str, str] | None = None) -> pd.DataFrame:
    """Candidates as ``study data check`` reads a file (encodings, separators, number formats; warnings
    logged), columns as the file names them: ``columns`` (canonical -> file column, as ``--map``, and the
    export's remembered ones) only say which columns hold ids, read as text; ``Ranker.rank`` renames."""
    columns = dict(columns or {})
    id_columns = tuple(dict.fromkeys(n for c in ("query_id", "product_id") for n in (c, columns.get(c, c))))
    frame = read_raw(path, id_columns=id_columns, label_column=columns.get("label", "label"))
    return frame.reset_index(drop=True)


def output_format(path: str | Path) -> str:
    """``csv``, ``parquet`` or ``jsonl`` from the output file's name; checked before anything is scored."""
    path = Path(path)
    fmt = OUTPUT_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise UserInputError(f"Cannot tell the output format of {path} from its name; use one of "
                             f"{', '.join(sorted(OUTPUT_FORMATS))}.")
    return fmt


def check_output(output: str | Path, source: str | Path) -> str:
    """The output's format, refused before anything is scored: an unknown suffix, a folder, the input file
    itself (ranking would overwrite the candidates)."""
    output, source = Path(output), Path(source)
    if output.is_dir():
        raise UserInputError(f"--output {output} is a folder; name the file to write, for example "
                             f"{output / 'ranked.csv'}.")
    same = (output.exists() and source.exists() and os.path.samefile(output, source)) or (
        output.resolve() == source.resolve())
    if same:
        raise UserInputError(f"--output {output} is the input file {source}; ranking never overwrites its "
                             "candidates. Name another output file.")
    return output_format(output)


def write_ranked(frame: pd.DataFrame, path: str | Path) -> None:
    path = Path(path)
    fmt = output_format(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        frame.to_csv(path, index=False)
    elif fmt == "parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_json(path, orient="records", lines=True, force_ascii=False)
