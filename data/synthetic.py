"""The built-in synthetic shop: a deterministic catalogue, judged queries and a simulated search log.

Designed so that both signals matter (see ``generate_catalogue``): queries paraphrase product
attributes (synonyms, shuffled words, typos, dropped words) so that a pretrained text encoder beats
word overlap, and a hidden product quality lowers the judged grade of poor products and drives
ratings, reviews and the clicks / carts / purchases of position-biased sessions, so behaviour
features carry what text cannot. Cold-start products have no behaviour at all (NaN). The words it draws from
are ``data.synthetic_vocabulary``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from study.data.schema import LABEL, JudgedPairs
from study.data.synthetic_vocabulary import (
    ADJECTIVE_SYNONYMS,
    BRANDS,
    CATEGORIES,
    COLOURS,
    DESCRIPTION_LINES,
    FILLERS,
)

TEXT_FIELDS = ("title", "description", "brand", "category", "colour")
FEATURE_FIELDS = ("price", "rating", "review_count", "impressions", "clicks", "add_to_cart", "purchases")
Q_LOW = -0.6  # hidden quality below this costs one grade: a poor exact match is judged a substitute
RATER_NOISE = 0.03


def _options(spec: str) -> list[str]:
    return spec.split("|")


def _typo(word: str, rng: np.random.Generator) -> str:
    if len(word) < 4:
        return word
    i = int(rng.integers(1, len(word) - 1))
    kind = int(rng.integers(3))
    if kind == 0:  # swap two neighbours
        return word[: i - 1] + word[i] + word[i - 1] + word[i + 1 :]
    if kind == 1:  # drop a letter
        return word[:i] + word[i + 1 :]
    return word[:i] + word[i] + word[i:]  # double a letter


def _say(canonical: str, synonyms: dict[str, str], p_synonym: float, rng: np.random.Generator) -> str:
    if canonical in synonyms and rng.random() < p_synonym:
        options = _options(synonyms[canonical])
        return options[int(rng.integers(len(options)))]
    return canonical


def _pick(seq: Sequence[str], rng: np.random.Generator, exclude: str | None = None) -> str:
    options = [s for s in seq if s != exclude]
    return options[int(rng.integers(len(options)))]


class _Catalogue:
    """Products created on demand; each has text attributes, hidden quality and product-level numbers."""

    def __init__(self, rng: np.random.Generator, cold_start_fraction: float) -> None:
        self.rng = rng
        self.cold_start_fraction = cold_start_fraction
        self.products: list[dict] = []
        self.by_category: dict[str, list[int]] = {c: [] for c in CATEGORIES}
        self.by_kind: dict[tuple[str, str], list[int]] = {}

    def new(self, *, category: str, kind: str, colour: str, adjective: str, brand: str) -> int:
        rng = self.rng
        spec = CATEGORIES[category]
        quality = float(rng.normal())
        cold = bool(rng.random() < self.cold_start_fraction)
        colour_word = _say(colour, COLOURS, 0.3, rng)
        kind_word = _say(kind, spec["types"], 0.3, rng)  # accessories have no synonyms
        adjective_word = _say(adjective, ADJECTIVE_SYNONYMS, 0.2, rng)
        if rng.random() < 0.7:
            title = f"{brand} {adjective_word} {colour_word} {kind_word}"
        else:
            title = f"{brand} {kind_word}, {adjective_word}, {colour_word}"
        lines = rng.choice(len(DESCRIPTION_LINES), size=2, replace=False)
        description = (f"{adjective_word.capitalize()} {_say(kind, spec['types'], 0.5, rng)} in "
                       f"{_say(colour, COLOURS, 0.5, rng)} by {brand}. "
                       + " ".join(DESCRIPTION_LINES[i] for i in lines))
        base_price = spec["price"] * (0.25 if kind not in spec["types"] else 1.0)
        price = round(float(base_price * np.exp(rng.normal(0.0, 0.35) + 0.15 * quality)), 2)
        popularity = float(rng.normal())
        rating = min(5.0, max(1.0, round(3.8 + 0.55 * quality + float(rng.normal(0.0, 0.35)), 1)))
        reviews = float(round(np.exp(2.5 + 0.5 * quality + 0.8 * popularity + float(rng.normal(0.0, 0.5)))))
        self.products.append({
            "product_id": f"p{len(self.products):06d}", "title": title, "description": description,
            "brand": brand, "category": category, "colour": colour, "kind": kind, "adjective": adjective,
            "quality": quality, "cold": cold, "price": price,
            "rating": np.nan if cold else rating, "review_count": np.nan if cold else reviews})
        self.by_category[category].append(len(self.products) - 1)
        self.by_kind.setdefault((category, kind), []).append(len(self.products) - 1)
        return len(self.products) - 1

    def reuse(self, pool: list[int], test: Callable[[dict], bool] | None = None) -> int | None:
        """A random product of ``pool`` passing ``test``, or None."""
        if test is None:
            return pool[int(self.rng.integers(len(pool)))] if pool else None
        matches = [i for i in pool[-64:] if test(self.products[i])]  # recent ones keep this O(1)
        return matches[int(self.rng.integers(len(matches)))] if matches else None


def _text_grade(product: dict, want: dict) -> float:
    """ESCI grade from the text attributes alone: 3 exact, 2 substitute, 1 complement, 0 irrelevant."""
    if product["category"] != want["category"]:
        return 0.0
    if product["kind"] not in CATEGORIES[want["category"]]["types"]:
        return 1.0
    if product["kind"] != want["kind"]:
        return 2.0
    for key in ("colour", "adjective", "brand"):
        if want["mentions"][key] and product[key] != want[key]:
            return 2.0
    return 3.0


def _query_text(want: dict, rng: np.random.Generator) -> str:
    spec = CATEGORIES[want["category"]]
    words = []
    if want["mentions"]["brand"]:
        words.append(want["brand"].lower())
    if want["mentions"]["adjective"]:
        words.append(_say(want["adjective"], ADJECTIVE_SYNONYMS, 0.5, rng))
    if want["mentions"]["colour"]:
        words.append(_say(want["colour"], COLOURS, 0.5, rng))
    words.append(_say(want["kind"], spec["types"], 0.6, rng))
    if rng.random() < 0.35:
        words = [words[i] for i in rng.permutation(len(words))]
    if rng.random() < 0.2:
        words.insert(int(rng.integers(len(words) + 1)), FILLERS[int(rng.integers(len(FILLERS)))])
    if rng.random() < 0.2:
        i = int(rng.integers(len(words)))
        words[i] = _typo(words[i], rng)
    return " ".join(words)


def _candidate(role: str, want: dict, cat: _Catalogue) -> int:
    """A product playing ``role`` for the query: reuse an existing one sometimes, else create one."""
    rng = cat.rng
    spec = CATEGORIES[want["category"]]
    attrs = {"category": want["category"], "kind": want["kind"], "colour": _pick(list(COLOURS), rng),
             "adjective": _pick(_options(spec["adjectives"]), rng), "brand": _pick(BRANDS, rng)}
    for key in ("colour", "adjective", "brand"):
        if want["mentions"][key]:
            attrs[key] = want[key]
    if role == "exact":
        pool = cat.by_kind.get((want["category"], want["kind"]), [])
        found = cat.reuse(pool, lambda p: _text_grade(p, want) == 3.0) if rng.random() < 0.3 else None
        return found if found is not None else cat.new(**attrs)
    if role == "substitute":
        mentioned = [k for k, v in want["mentions"].items() if v]
        if mentioned and rng.random() < 0.6:
            key = mentioned[int(rng.integers(len(mentioned)))]
            pool = {"colour": list(COLOURS), "adjective": _options(spec["adjectives"]), "brand": BRANDS}[key]
            attrs[key] = _pick(pool, rng, exclude=want[key])
        else:
            attrs["kind"] = _pick(list(spec["types"]), rng, exclude=want["kind"])
        return cat.new(**attrs)
    if role == "complement":
        attrs["kind"] = _pick(_options(spec["accessories"]), rng)
        pool = cat.by_kind.get((want["category"], attrs["kind"]), [])
        found = cat.reuse(pool) if rng.random() < 0.4 else None
        return found if found is not None else cat.new(**attrs)
    other = _pick(list(CATEGORIES), rng, exclude=want["category"])
    if rng.random() < 0.5:
        found = cat.reuse(cat.by_category[other])
        if found is not None:
            return found
    other_spec = CATEGORIES[other]
    # Half of the irrelevant products share the query's colour or brand: a trap for word overlap.
    return cat.new(category=other, kind=_pick(list(other_spec["types"]), rng),
                   colour=attrs["colour"] if rng.random() < 0.5 else _pick(list(COLOURS), rng),
                   adjective=_pick(_options(other_spec["adjectives"]), rng),
                   brand=attrs["brand"] if rng.random() < 0.5 else _pick(BRANDS, rng))


def _sessions(text_grade: np.ndarray, quality: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Simulate position-biased sessions for one query's warm candidates -> (m, 4) counts.

    A noisy production ranker orders the list, users look down to a random depth, examine positions
    with probability 1/(1+pos)^0.8, click on what looks relevant and good, and sometimes buy.
    """
    m = len(text_grade)
    n_sessions = 1 + int(rng.poisson(np.exp(rng.normal(np.log(8.0), 0.7))))
    base = 0.5 * text_grade + 0.3 * quality + rng.normal(0.0, 1.0, size=m)
    order = np.argsort(-(base + rng.normal(0.0, 0.7, size=(n_sessions, m))), axis=1)  # (S, m)
    position = np.empty_like(order)
    np.put_along_axis(position, order, np.arange(m)[None, :].repeat(n_sessions, axis=0), axis=1)
    depth = 3 + rng.geometric(0.2, size=(n_sessions, 1))
    shown = position < depth
    examined = shown & (rng.random((n_sessions, m)) < 1.0 / (1.0 + position) ** 0.8)
    p_click = 1.0 / (1.0 + np.exp(-(-2.5 + 0.6 * text_grade + 0.7 * quality)))
    clicked = examined & (rng.random((n_sessions, m)) < p_click)
    p_cart = 1.0 / (1.0 + np.exp(-(-1.2 + 0.3 * text_grade + 0.8 * quality)))
    carted = clicked & (rng.random((n_sessions, m)) < p_cart)
    bought = carted & (rng.random((n_sessions, m)) < 1.0 / (1.0 + np.exp(-(-0.3 + 0.7 * quality))))
    return np.stack([shown.sum(0), clicked.sum(0), carted.sum(0), bought.sum(0)], axis=1).astype(float)


def generate_catalogue_with_truth(
    *, n_queries: int = 300, items_per_query: int = 10, cold_start_fraction: float = 0.2, seed: int = 0
) -> tuple[JudgedPairs, pd.DataFrame]:
    """Like ``generate_catalogue`` but also returns the hidden truth per row, aligned with the frame:
    ``text_grade`` (the grade from text attributes alone), ``quality`` (hidden) and ``cold_start``.
    For tests and benchmarks (oracle baselines); models never see it.
    """
    if n_queries < 1 or items_per_query < 3:
        raise ValueError(f"need n_queries >= 1 and items_per_query >= 3, got {n_queries=} {items_per_query=}")
    if not 0.0 <= cold_start_fraction <= 1.0:
        raise ValueError(f"cold_start_fraction must be in [0, 1], got {cold_start_fraction=}")
    rng = np.random.default_rng(seed)
    cat = _Catalogue(rng, cold_start_fraction)
    roles, role_p = ["exact", "substitute", "complement", "irrelevant"], [0.3, 0.35, 0.1, 0.25]
    rows: list[dict] = []
    for q in range(n_queries):
        category = _pick(list(CATEGORIES), rng)
        spec = CATEGORIES[category]
        # The target product's attributes; each is mentioned in the query or dropped from it.
        want = {"category": category, "kind": _pick(list(spec["types"]), rng),
                "colour": _pick(list(COLOURS), rng), "adjective": _pick(_options(spec["adjectives"]), rng),
                "brand": _pick(BRANDS, rng),
                "mentions": {"colour": rng.random() < 0.75, "adjective": rng.random() < 0.45,
                             "brand": rng.random() < 0.3}}
        query = _query_text(want, rng)
        n_items = max(3, items_per_query + int(rng.integers(-2, 3)))
        chosen: list[int] = []
        for role in ["exact", *rng.choice(roles, size=4 * n_items, p=role_p)]:
            product = _candidate(str(role), want, cat)
            if product not in chosen:
                chosen.append(product)
            if len(chosen) == n_items:
                break
        chosen = [chosen[i] for i in rng.permutation(len(chosen))]  # row order must not leak the label
        grades = np.array([_text_grade(cat.products[i], want) for i in chosen])
        quality = np.array([cat.products[i]["quality"] for i in chosen])
        cold = np.array([cat.products[i]["cold"] for i in chosen])
        counts = np.full((len(chosen), 4), np.nan)
        if (~cold).any():
            counts[~cold] = _sessions(grades[~cold], quality[~cold], rng)
        label = grades - ((grades >= 1.0) & (quality < Q_LOW))
        flip = rng.random(len(chosen)) < RATER_NOISE
        label = np.clip(label + flip * rng.choice([-1.0, 1.0], size=len(chosen)), 0.0, 3.0)
        for j, i in enumerate(chosen):
            p = cat.products[i]
            rows.append(dict(
                query_id=f"q{q:05d}", query=query, product_id=p["product_id"],
                **{f: p[f] for f in TEXT_FIELDS}, price=p["price"], rating=p["rating"],
                review_count=p["review_count"], impressions=counts[j, 0], clicks=counts[j, 1],
                add_to_cart=counts[j, 2], purchases=counts[j, 3], label=float(label[j]),
                text_grade=float(grades[j]), quality=float(quality[j]), cold_start=bool(cold[j])))
    frame = pd.DataFrame(rows)
    truth = frame[["text_grade", "quality", "cold_start"]].copy()
    columns = ["query_id", "query", "product_id", *TEXT_FIELDS, *FEATURE_FIELDS, LABEL]
    pairs = JudgedPairs(frame[columns].copy(), TEXT_FIELDS, FEATURE_FIELDS, name="synthetic")
    return pairs, truth


def generate_catalogue(
    *, n_queries: int = 300, items_per_query: int = 10, cold_start_fraction: float = 0.2, seed: int = 0
) -> JudgedPairs:
    """A deterministic synthetic shop (same arguments -> identical frame), named ``synthetic``.

    Each query has about ``items_per_query`` judged candidates (at least 3, varying by +-2) mixing exact
    matches, substitutes (same type but a wrong colour/brand/adjective, or a sibling type), complements
    (accessories of the category) and irrelevant products; labels are ESCI gains 3/2/1/0, lowered by one
    for products of poor hidden quality, with a little rater noise. About ``cold_start_fraction`` of the
    products are cold start: no rating, reviews or interactions (NaN), only a price.
    """
    pairs, _ = generate_catalogue_with_truth(
        n_queries=n_queries, items_per_query=items_per_query, cold_start_fraction=cold_start_fraction,
        seed=seed,
    )
    return pairs
