"""The synthetic shop's vocabulary, data only: categories with their product types and synonyms, accessories,
adjectives and base prices; colours and adjectives with their synonyms; brands, query fillers and description
lines. Synonyms are what make word overlap fail where a pretrained encoder does not. ``data.synthetic`` draws
the catalogue, the queries and the sessions from them."""

from __future__ import annotations

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
FILLERS = ("cheap", "best", "buy", "sale", "for men", "for women", "for kids", "uk", "new", "2024")
DESCRIPTION_LINES = ("Ideal for everyday use.", "Easy to clean and maintain.", "Free returns within 30 days.",
                     "Ships in two working days.", "Designed in Scandinavia.", "Available in several sizes.",
                     "Comes gift wrapped on request.", "Part of our new season range.")
