"""Query-product match features computed from the text alone: the classic learning-to-rank signals.

BM25 and TF-IDF cosine over words, TF-IDF cosine over character 3-grams (typos, run-together words),
query-term coverage (exact, stemmed prefix, IDF-weighted), the query's first and last term (the head noun
of a shop query is usually last), number/unit overlap (``1/2 in.``, ``60 gal``), bigram overlap and
lengths. They carry what a bi-encoder's cosine misses on short titles: exact model numbers, sizes, brands.

``MatchFeaturizer`` is fit on the training split only (document frequencies over its product texts, then the
mean and spread of each feature over its pairs; no labels) and saved as a plain dict with a checkpoint and an
exported model. ``transform`` returns standardised ``(n, N_MATCH)`` float32.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

MATCH_FEATURES = (
    "bm25",
    "bm25_share",  # BM25 over the most a text could score for this query: comparable across queries
    "word_tfidf_cosine",
    "char_tfidf_cosine",
    "term_coverage",
    "stem_coverage",
    "idf_coverage",
    "first_term_match",
    "last_term_match",
    "number_match",
    "bigram_match",
    "query_terms",
    "text_terms",
)
N_MATCH = len(MATCH_FEATURES)

_UNITS = [
    (r"\b(inches|inch|in\.|in)\b|\"", " in "),
    (r"\b(feet|foot|ft\.|ft)\b|'", " ft "),
    (r"\b(pounds|pound|lbs\.?|lb\.?)\b", " lb "),
    (r"\b(gallons|gallon|gal\.?)\b", " gal "),
    (r"\b(ounces|ounce|oz\.?)\b", " oz "),
    (r"\b(volts|volt|v)\b", " volt "),
    (r"\b(watts|watt|w)\b", " watt "),
    (r"\b(amperes|amps|amp)\b", " amp "),
    (r"\b(square|sq\.?)\b", " sq "),
    (r"\b(centimeters|cm\.?)\b", " cm "),
    (r"\b(millimeters|mm\.?)\b", " mm "),
]
_UNIT_RES = [(re.compile(p), r) for p, r in _UNITS]
_TOKEN = re.compile(r"\d+(?:\.\d+)?(?:/\d+)?|[a-z]+")
_NUMBER = re.compile(r"^\d")
_DIGIT_X = re.compile(r"(\d)\s*x\s*(\d)")
_DIGIT_ALPHA = re.compile(r"(\d)([a-z])")
_ALPHA_DIGIT = re.compile(r"([a-z])(\d)")


def tokens(text: str) -> list[str]:
    """Lowercased words and numbers, units normalised (``2-in.`` -> ``2 in``), ``2x4`` -> ``2 4``."""
    t = text.lower().replace(",", "")
    t = _DIGIT_X.sub(r"\1 \2", t)
    t = _DIGIT_ALPHA.sub(r"\1 \2", t)
    t = _ALPHA_DIGIT.sub(r"\1 \2", t)
    for pattern, repl in _UNIT_RES:
        t = pattern.sub(repl, t)
    return _TOKEN.findall(t)


def stem(token: str) -> str:
    """A crude stemmer: enough to match ``lights``/``lighting``/``light`` on their first 5 letters."""
    if _NUMBER.match(token):
        return token
    for suffix in ("ings", "ing", "ies", "es", "s", "ed"):
        if len(token) > len(suffix) + 3 and token.endswith(suffix):
            token = token[: -len(suffix)]
            break
    return token[:5]


def _char_grams(text: str, n: int = 3) -> list[str]:
    grams: list[str] = []
    for word in text.lower().split():
        w = f" {word} "
        grams += [w[i : i + n] for i in range(max(len(w) - n + 1, 1))]
    return grams


class MatchFeaturizer:
    """Document frequencies of words and character 3-grams over the training texts; fitted attrs end in
    ``_``."""

    def __init__(self, *, k1: float = 1.2, b: float = 0.75) -> None:
        self.k1 = k1
        self.b = b

    def fit(self, queries: Sequence[str], texts: Sequence[str]) -> MatchFeaturizer:
        """Document frequencies over the distinct ``texts``, then each feature's mean and std over the
        pairs."""
        unique = list(dict.fromkeys(texts))  # each product once, whatever its number of judgements
        word_df: Counter[str] = Counter()
        char_df: Counter[str] = Counter()
        total_len = 0
        for text in unique:
            toks = tokens(text)
            total_len += len(toks)
            word_df.update(set(toks) | {stem(t) for t in toks})
            char_df.update(set(_char_grams(text)))
        self.n_docs_ = max(len(unique), 1)
        self.avg_len_ = total_len / self.n_docs_ if unique else 1.0
        self.word_df_ = dict(word_df)
        self.char_df_ = dict(char_df)
        self.mean_ = np.zeros(N_MATCH, dtype=np.float32)
        self.std_ = np.ones(N_MATCH, dtype=np.float32)
        raw = self.transform(queries, texts)
        if len(raw):
            self.mean_ = raw.mean(0)
            self.std_ = np.where(raw.std(0) > 1e-6, raw.std(0), 1.0).astype(np.float32)
        return self

    def _idf(self, df: dict[str, int], term: str) -> float:
        n = df.get(term, 0)
        return math.log(1.0 + (self.n_docs_ - n + 0.5) / (n + 0.5))

    def _tfidf_cosine(self, q: list[str], t: list[str], df: dict[str, int]) -> float:
        qc, tc = Counter(q), Counter(t)
        qv = {w: (1 + math.log(c)) * self._idf(df, w) for w, c in qc.items()}
        tv = {w: (1 + math.log(c)) * self._idf(df, w) for w, c in tc.items()}
        dot = sum(v * tv.get(w, 0.0) for w, v in qv.items())
        norm = math.sqrt(sum(v * v for v in qv.values())) * math.sqrt(sum(v * v for v in tv.values()))
        return dot / norm if norm > 0 else 0.0

    def features(self, query: str, text: str) -> list[float]:
        q, t = tokens(query), tokens(text)
        t_set, t_stems = set(t), {stem(w) for w in t}
        counts = Counter(t)
        length_norm = self.k1 * (1 - self.b + self.b * len(t) / max(self.avg_len_, 1e-6))
        bm25 = best = 0.0
        for w in set(q):
            idf = self._idf(self.word_df_, w)
            tf = counts.get(w, 0)
            bm25 += idf * tf * (self.k1 + 1) / (tf + length_norm)
            best += idf
        q_idf = [self._idf(self.word_df_, w) for w in q]
        exact = [w in t_set for w in q]
        stemmed = [w in t_set or stem(w) in t_stems for w in q]
        numbers = [w for w in q if _NUMBER.match(w)]
        q_bigrams = set(itertools.pairwise(q))
        t_bigrams = set(itertools.pairwise(t))
        n_q = max(len(q), 1)
        return [
            bm25,
            bm25 / best if best > 0 else 0.0,
            self._tfidf_cosine(q, t, self.word_df_),
            self._tfidf_cosine(_char_grams(query), _char_grams(text), self.char_df_),
            sum(exact) / n_q,
            sum(stemmed) / n_q,
            sum(i for i, hit in zip(q_idf, stemmed, strict=True) if hit) / max(sum(q_idf), 1e-6),
            float(bool(q) and stemmed[0]),
            float(bool(q) and stemmed[-1]),
            sum(w in t_set for w in numbers) / len(numbers) if numbers else -1.0,  # -1: the query has none
            len(q_bigrams & t_bigrams) / len(q_bigrams) if q_bigrams else -1.0,
            math.log1p(len(q)),
            math.log1p(len(t)),
        ]

    def transform(self, queries: Sequence[str], texts: Sequence[str]) -> np.ndarray:
        """(n, N_MATCH) float32, standardised with the training mean and std; identical pairs computed
        once."""
        if len(queries) != len(texts):
            raise ValueError(f"queries and texts must pair up, got {len(queries)} and {len(texts)}")
        cache: dict[tuple[str, str], list[float]] = {}
        out = np.empty((len(queries), N_MATCH), dtype=np.float32)
        for i, key in enumerate(zip(queries, texts, strict=True)):
            row = cache.get(key)
            if row is None:
                row = cache[key] = self.features(*key)
            out[i] = row
        return (out - self.mean_) / self.std_

    def to_dict(self) -> dict[str, Any]:
        return {"k1": self.k1, "b": self.b, "n_docs": self.n_docs_, "avg_len": self.avg_len_,
                "word_df": self.word_df_, "char_df": self.char_df_, "features": list(MATCH_FEATURES),
                "mean": [float(v) for v in self.mean_], "std": [float(v) for v in self.std_]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MatchFeaturizer:
        if list(d.get("features", [])) != list(MATCH_FEATURES):
            raise ValueError("the saved match features were computed by another version of this tool: "
                             f"{d.get('features')} vs {list(MATCH_FEATURES)}")
        out = cls(k1=float(d["k1"]), b=float(d["b"]))
        out.n_docs_, out.avg_len_ = int(d["n_docs"]), float(d["avg_len"])
        out.word_df_ = {str(k): int(v) for k, v in d["word_df"].items()}
        out.char_df_ = {str(k): int(v) for k, v in d["char_df"].items()}
        out.mean_ = np.asarray(d["mean"], dtype=np.float32)
        out.std_ = np.asarray(d["std"], dtype=np.float32)
        return out
