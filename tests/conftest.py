"""Shared fixtures: a tiny randomly initialised BERT with the real MiniLM tokenizer, a private cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    os.environ["STUDY_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from study.models.encoder import build_tiny_bert

    return build_tiny_bert(tmp_path_factory.mktemp("tiny-bert"), hidden_size=32, n_layers=2, n_heads=2,
                           intermediate_size=64, seed=0)
