"""The synthetic shop's products: its vocabulary (categories with their product types and synonyms,
accessories, adjectives, colours, brands) and the catalogue that creates a product on demand with its text,
hidden quality and product-level numbers (price, rating, reviews; none of the behaviour of a cold-start
product). Queries, judgements and sessions over them are ``data.synthetic``."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

# Per category: product types (canonical name: synonyms), accessories (the complements), adjectives and
# a base price. Synonyms are what make word overlap fail where a pretrained encoder does not.
CATEGORIES: dict[str, dict] = {
    "footwear": {
        "types": {"sneakers": "trainers|running shoes|sports shoes", "boots": "ankle boots|booties",
                  "sandals": "sliders|summer sandals", "loafers": "slip-ons|moccasins",
                  "heels": "pumps|stilettos"},
        "accessories": "shoe laces|insoles|shoe polish|ankle socks",
        "adjectives": "leather|waterproof|lightweight|suede|vegan", "price": 70.0},
    "furniture": {
        "types": {"sofa": "couch|settee", "armchair": "accent chair|lounge chair",
                  "coffee table": "cocktail table", "bookshelf": "bookcase|shelving unit",
                  "bed frame": "bedstead|bed base"},
        "accessories": "cushion cover|throw blanket|furniture polish|sofa cover",
        "adjectives": "velvet|oak|modern|compact|linen", "price": 350.0},
    "kitchen": {
        "types": {"kettle": "electric kettle|tea kettle", "toaster": "bread toaster|toaster oven",
                  "frying pan": "skillet|fry pan", "saucepan": "cooking pot|stock pot",
                  "blender": "smoothie maker"},
        "accessories": "oven mitt|tea towel|spatula|descaler",
        "adjectives": "stainless steel|non-stick|cordless|ceramic|cast iron", "price": 45.0},
    "electronics": {
        "types": {"headphones": "earphones|headset|earbuds", "laptop": "notebook computer|ultrabook",
                  "speaker": "bluetooth speaker|soundbar", "smartphone": "mobile phone|cell phone",
                  "tablet": "ipad|e-reader"},
        "accessories": "charging cable|phone case|screen protector|laptop sleeve",
        "adjectives": "wireless|noise cancelling|portable|refurbished|rugged", "price": 220.0},
    "clothing": {
        "types": {"jacket": "windbreaker|bomber jacket", "jeans": "denim trousers|denims",
                  "t-shirt": "tee|tshirt", "hoodie": "hooded sweatshirt|pullover", "dress": "frock|sundress"},
        "accessories": "belt|clothes hanger|lint roller|fabric softener",
        "adjectives": "cotton|slim fit|oversized|organic|wool", "price": 40.0},
    "garden": {
        "types": {"lawn mower": "grass cutter|mower", "garden hose": "hosepipe|hose",
                  "planter": "plant pot|flower pot", "barbecue": "bbq|grill",
                  "parasol": "patio umbrella|sun umbrella"},
        "accessories": "gardening gloves|plant food|grill cover|hose reel",
        "adjectives": "heavy duty|foldable|terracotta|electric|weatherproof", "price": 90.0},
}
COLOURS = {"red": "crimson|scarlet", "blue": "navy|cobalt", "black": "jet black|ebony",
           "white": "ivory|snow white", "grey": "gray|charcoal", "green": "olive|emerald",
           "brown": "tan|chocolate", "pink": "rose|blush", "yellow": "mustard|lemon", "beige": "cream|sand"}
ADJECTIVE_SYNONYMS = {
    "waterproof": "water resistant", "lightweight": "light", "wireless": "cordless|bluetooth",
    "stainless steel": "steel|inox", "non-stick": "nonstick|teflon", "cordless": "battery powered",
    "slim fit": "skinny|fitted", "oversized": "loose fit|baggy", "modern": "contemporary",
    "compact": "small|space saving", "heavy duty": "sturdy|robust", "foldable": "folding|collapsible",
    "refurbished": "renewed|used", "noise cancelling": "anc", "weatherproof": "all weather",
}
BRANDS = ("Nordvik", "Stridemax", "Halden", "Acorn & Co", "Lumo", "Bracken", "Veloce", "Kestrel", "Oakridge",
          "Pillowy", "Forgeworks", "Solace", "Tidewater", "Quillon")
DESCRIPTION_LINES = ("Ideal for everyday use.", "Easy to clean and maintain.", "Free returns within 30 days.",
                     "Ships in two working days.", "Designed in Scandinavia.", "Available in several sizes.",
                     "Comes gift wrapped on request.", "Part of our new season range.")


def variants(spec: str) -> list[str]:
    return spec.split("|")


def say(canonical: str, synonyms: dict[str, str], p_synonym: float, rng: np.random.Generator) -> str:
    if canonical in synonyms and rng.random() < p_synonym:
        options = variants(synonyms[canonical])
        return options[int(rng.integers(len(options)))]
    return canonical


def pick(seq: Sequence[str], rng: np.random.Generator, exclude: str | None = None) -> str:
    options = [s for s in seq if s != exclude]
    return options[int(rng.integers(len(options)))]


class Catalogue:
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
        colour_word = say(colour, COLOURS, 0.3, rng)
        kind_word = say(kind, spec["types"], 0.3, rng)  # accessories have no synonyms
        adjective_word = say(adjective, ADJECTIVE_SYNONYMS, 0.2, rng)
        if rng.random() < 0.7:
            title = f"{brand} {adjective_word} {colour_word} {kind_word}"
        else:
            title = f"{brand} {kind_word}, {adjective_word}, {colour_word}"
        lines = rng.choice(len(DESCRIPTION_LINES), size=2, replace=False)
        description = (f"{adjective_word.capitalize()} {say(kind, spec['types'], 0.5, rng)} in "
                       f"{say(colour, COLOURS, 0.5, rng)} by {brand}. "
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
