"""Fixed vocabularies: names, places, the product catalog, campaigns, texts and placeholder values."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import pyarrow as pa

# Plain names appear in email addresses as they are; the others are given with their address form.
_PLAIN_FIRST_NAMES: tuple[str, ...] = (
    "James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "William", "Elizabeth",
    "David", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Charles", "Karen",
    "Daniel", "Nancy", "Matthew", "Lisa", "Anthony", "Betty", "Mark", "Margaret", "Donald", "Sandra",
    "Steven", "Ashley", "Paul", "Kimberly", "Andrew", "Emily", "Joshua", "Donna", "Kenneth", "Michelle",
    "Kevin", "Carol", "Brian", "Amanda", "George", "Melissa", "Timothy", "Deborah", "Ronald", "Stephanie",
    "Oliver", "Amelia", "Harry", "Isla", "Jack", "Ava", "Noah", "Mia", "Leo", "Grace", "Arthur", "Freya",
    "Oscar", "Lily", "Henry", "Sophie", "Theo", "Chloe", "Ethan", "Olivia", "Liam", "Emma", "Lucas",
    "Hannah", "Samuel", "Zoe", "Nathan", "Ruby",
)  # fmt: skip
_PLAIN_LAST_NAMES: tuple[str, ...] = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
    "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson",
    "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis",
    "Robinson", "Walker", "Young", "Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores",
    "Green", "Adams", "Nelson", "Baker", "Hall", "Rivera", "Campbell", "Mitchell", "Carter", "Roberts",
    "Evans", "Turner", "Phillips", "Parker", "Edwards", "Collins", "Stewart", "Morris", "Murphy", "Cook",
    "Rogers", "Morgan", "Cooper", "Peterson", "Reed", "Bailey", "Bell", "Kelly", "Howard", "Ward", "Cox",
    "Richardson", "Wood", "Watson", "Brooks", "Bennett", "Gray", "Hughes", "Price", "Patel", "Khan", "Shah",
    "Ali", "Walsh",
)  # fmt: skip
# (as written, as it appears in an email address)
FIRST_NAMES: tuple[tuple[str, str], ...] = (
    *((name, name.lower()) for name in _PLAIN_FIRST_NAMES),
    ("José", "jose"), ("Zoë", "zoe"), ("Renée", "renee"), ("Chloé", "chloe"),
    ("Björn", "bjorn"), ("Siobhán", "siobhan"), ("Mónica", "monica"), ("Anaïs", "anais"),
)  # fmt: skip
LAST_NAMES: tuple[tuple[str, str], ...] = (
    *((name, name.lower()) for name in _PLAIN_LAST_NAMES),
    ("O'Brien", "obrien"), ("O'Connor", "oconnor"), ("Müller", "mueller"), ("Peña", "pena"),
    ("Núñez", "nunez"), ("Søndergaard", "sondergaard"), ("D'Angelo", "dangelo"), ("Lefèvre", "lefevre"),
)  # fmt: skip
EMAIL_DOMAINS: tuple[tuple[str, float], ...] = (
    ("gmail.com", 0.38),
    ("yahoo.com", 0.12),
    ("outlook.com", 0.12),
    ("hotmail.com", 0.08),
    ("icloud.com", 0.10),
    ("aol.com", 0.03),
    ("proton.me", 0.03),
    ("btinternet.com", 0.04),
    ("comcast.net", 0.05),
    ("gmx.com", 0.05),
)
# Country codes in person order: 0 = US, 1 = GB.
COUNTRIES: tuple[str, ...] = ("US", "GB")
US_SHARE = 0.82
US_AREA_CODES: tuple[int, ...] = (
    201, 202, 206, 212, 213, 214, 215, 267, 303, 305, 310, 312, 313, 314, 323, 347, 404, 408, 415, 469,
    503, 510, 512, 602, 609, 612, 617, 619, 646, 650, 702, 703, 704, 713, 718, 720, 773, 786, 801, 813,
    818, 832, 858, 917, 919, 925, 949, 971, 978,
)  # fmt: skip
CITIES: dict[str, tuple[str, ...]] = {
    "US": (
        "New York", "Los Angeles", "Chicago", "Houston", "Phoenix", "Philadelphia", "San Antonio",
        "San Diego", "Dallas", "Austin", "Seattle", "Denver", "Boston", "Portland", "Miami", "Atlanta",
        "San Francisco", "Minneapolis", "Raleigh", "Salt Lake City",
    ),
    "GB": (
        "London", "Manchester", "Birmingham", "Leeds", "Glasgow", "Liverpool", "Bristol", "Edinburgh",
        "Cardiff", "Belfast", "Brighton", "Oxford",
    ),
}  # fmt: skip
# UTC offsets (minutes) a person's devices and exports may write local times in.
US_OFFSETS: tuple[int, ...] = (-300, -240, -360, -300, -420, -480, -420)
GB_OFFSETS: tuple[int, ...] = (0, 60, 60, 0, 120)
COMPANIES: tuple[str, ...] = (
    "Acme Corp", "Globex", "Initech", "Umbrella Retail", "Stark Logistics", "Wayne Holdings", "Hooli",
    "Vandelay Industries", "Soylent Foods", "Pied Piper", "Dunder Mifflin", "Wonka Industries",
    "Tyrell Systems", "Cyberdyne", "Gringotts Bank", "Bluth Company", "Prestige Worldwide",
)  # fmt: skip

PLACEHOLDER_EMAILS: tuple[str, ...] = ("test@example.com", "noreply@example.com", "none@none.com")
# How the placeholders are typed (normalise to the first column above).
PLACEHOLDER_EMAIL_SPELLINGS: tuple[str, ...] = (
    "test@example.com",
    "TEST@example.com",
    "noreply@example.com",
    "none@none.com",
    "None@None.com",
)
PLACEHOLDER_PHONE = "0000000000"
PLACEHOLDER_PHONE_E164 = "+10000000000"  # what the default-country rule makes of it

SHOP_URL = "https://shop.cx360.example"
CURRENCY = "EUR"

# (source, medium, campaign name, referrer) for tagged arrivals.
CAMPAIGNS: tuple[tuple[str, str, str, str | None], ...] = (
    ("google", "cpc", "brand_search", "https://www.google.com/"),
    ("google", "cpc", "generic_outdoor", "https://www.google.com/"),
    ("bing", "cpc", "brand_search", "https://www.bing.com/"),
    ("facebook", "paid_social", "spring_collection", "https://www.facebook.com/"),
    ("instagram", "paid_social", "influencer_q3", "https://l.instagram.com/"),
    ("tiktok", "paid_social", "summer_drop", "https://www.tiktok.com/"),
    ("newsletter", "email", "weekly_digest", None),
    ("newsletter", "email", "winback", None),
    ("affiliate", "affiliate", "deals_partner", "https://www.dealsfinder.example/"),
    ("youtube", "video", "review_series", "https://www.youtube.com/"),
)
# Referrers of untagged arrivals (None = typed in / bookmark).
ORGANIC_REFERRERS: tuple[str | None, ...] = (
    "https://www.google.com/",
    "https://www.google.com/",
    "https://duckduckgo.com/",
    "https://www.reddit.com/",
    None,
    None,
    None,
)
# (device type in context.device.type, channel code: 0 = web, 1 = app, user agent)
DEVICES: tuple[tuple[str, int, str], ...] = (
    ("desktop", 0, "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/128.0 Safari/537.36"),
    ("desktop", 0, "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Version/17.5 Safari"),
    ("mobile", 0, "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile"),
    ("mobile", 0, "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/128.0 Mobile"),
    ("tablet", 0, "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile"),
    ("ios", 1, "cx360-shop/4.2.0 (iPhone; iOS 17.5)"),
    ("android", 1, "cx360-shop/4.2.0 (Android 14; SM-S918B)"),
)
DEVICE_WEIGHTS: tuple[float, ...] = (0.30, 0.17, 0.22, 0.13, 0.06, 0.07, 0.05)

# Pages without product intent: (page name, path).
BROWSE_PAGES: tuple[tuple[str, str], ...] = (
    ("Home", "/"),
    ("Home", "/"),
    ("Blog", "/blog/how-to-layer-for-autumn"),
    ("Blog", "/blog/packing-list-weekend-hike"),
    ("Stores", "/stores"),
    ("About", "/about"),
    ("Help", "/help/shipping"),
    ("Help", "/help/returns"),
    ("Lookbook", "/lookbook"),
    ("Sale", "/sale"),
)

REASONS_REMOVED: tuple[str, ...] = ("changed_mind", "too_expensive", "found_cheaper", "wrong_size")
REASONS_DISMISSED: tuple[str, ...] = ("too_expensive", "changed_mind", "found_cheaper", "not_as_described")
REASONS_RETURNED: tuple[str, ...] = (
    "wrong_size",
    "damaged",
    "not_as_described",
    "changed_mind",
    "found_cheaper",
)
REASONS_CANCELLED: tuple[str, ...] = ("changed_mind", "found_cheaper", "too_expensive")

# Support: (category, subjects). Subjects have commas and quotes on purpose.
TICKET_TOPICS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("order_status", ("Where is my order?", "Order not shipped yet", "Tracking link, not working")),
    ("delivery", ("Parcel arrived damaged", "Delivered to the wrong address", "Late delivery, again")),
    ("returns", ("How do I return an item?", "Refund not received", 'Return label for "wrong size"')),
    ("payment", ("Charged twice", "Voucher code not accepted", "Invoice needed, please")),
    ("account", ("Cannot log in", "Change my email address", "Delete my account")),
    ("product_question", ("Is this waterproof?", "Size advice, between M and L", "When back in stock?")),
    ("complaint", ("Very disappointed", 'Product "not as described"', "Poor customer service")),
)
PRESALE_TOPIC = 5  # index of product_question in TICKET_TOPICS

NPS_COMMENTS: dict[str, tuple[str, ...]] = {
    "detractor": (
        "Delivery took far too long",
        'The "premium" quality is not premium',
        "Return process was a nightmare, never again",
        "Support never answered my email",
        "Too expensive for what you get",
    ),
    "passive": (
        "Fine, nothing special",
        "Good products, slow shipping",
        "OK but the app keeps logging me out",
        "Decent prices, limited sizes",
    ),
    "promoter": (
        "Love it, will buy again",
        "Great quality, fast delivery",
        "Friendly support, solved my issue in minutes",
        'Best "everyday" jacket I own',
        "Recommended to all my friends",
    ),
}

CONSENT_SOURCES_SIGNUP: tuple[str, ...] = ("web_signup", "cookie_banner", "app_signup", "newsletter_form")
CONSENT_SOURCES_CHANGE: tuple[str, ...] = (
    "preference_center",
    "unsubscribe_link",
    "app_settings",
    "support_request",
)

CRM_STAGES_BY_JOURNEY: tuple[tuple[tuple[str, float], ...], ...] = (
    (("subscriber", 0.7), ("lead", 0.3)),  # discovery
    (("lead", 0.4), ("marketingqualifiedlead", 0.35), ("salesqualifiedlead", 0.25)),  # consideration
    (("opportunity", 0.5), ("customer", 0.5)),  # decision
    (("customer", 0.7), ("evangelist", 0.3)),  # loyalty
    (("customer", 0.8), ("other", 0.2)),  # lapsed
)


@dataclass(frozen=True)
class Category:
    name: str
    price_range: tuple[int, int]  # EUR
    nouns: tuple[str, ...]
    adjectives: tuple[str, ...]  # products are adjective + noun
    search_terms: tuple[str, ...]


_CATEGORIES: tuple[Category, ...] = (
    Category(
        name="Jackets",
        price_range=(79, 329),
        nouns=("Rain Jacket", "Down Jacket", "Softshell", "Parka", "Windbreaker"),
        adjectives=("Alpine", "Storm", "Urban", "Featherlight", "Coastal", "Arctic"),
        search_terms=("rain jacket", "waterproof jacket", "parka"),
    ),
    Category(
        name="Footwear",
        price_range=(49, 219),
        nouns=("Trail Runner", "Hiking Boot", "Sneaker", "Sandal", "Loafer"),
        adjectives=("Ridge", "Summit", "Daily", "Cloud", "Canyon", "Glacier"),
        search_terms=("running shoes", "hiking boots", "sneakers"),
    ),
    Category(
        name="Knitwear",
        price_range=(39, 149),
        nouns=("Merino Sweater", "Cardigan", "Hoodie", "Turtleneck"),
        adjectives=("Cosy", "Nordic", "Classic", "Chunky", "Fine", "Cable"),
        search_terms=("merino", "hoodie", "wool sweater"),
    ),
    Category(
        name="Trousers",
        price_range=(45, 139),
        nouns=("Chino", "Cargo Pant", "Jeans", "Hiking Pant"),
        adjectives=("Slim", "Relaxed", "Stretch", "Everyday", "Trek", "Tapered"),
        search_terms=("chinos", "jeans", "hiking trousers"),
    ),
    Category(
        name="Shirts",
        price_range=(19, 89),
        nouns=("Oxford Shirt", "T-Shirt", "Polo", "Flannel Shirt", "Tank Top"),
        adjectives=("Organic", "Linen", "Heavyweight", "Basic", "Striped", "Merino"),
        search_terms=("t-shirt", "linen shirt", "polo"),
    ),
    Category(
        name="Bags",
        price_range=(29, 199),
        nouns=("Backpack", "Duffel", "Tote", "Messenger Bag", "Hip Pack"),
        adjectives=("Commuter", "Expedition", "City", "Weekender", "Compact", "Rolltop"),
        search_terms=("backpack", "duffel bag", "laptop bag"),
    ),
    Category(
        name="Accessories",
        price_range=(9, 79),
        nouns=("Beanie", "Scarf", "Gloves", "Cap", "Belt"),
        adjectives=("Wool", "Thermal", "Recycled", "Leather", "Knit", "Fleece"),
        search_terms=("beanie", "gloves", "scarf"),
    ),
    Category(
        name="Camping",
        price_range=(25, 449),
        nouns=("Tent", "Sleeping Bag", "Camping Stove", "Headlamp", "Trekking Poles"),
        adjectives=("Ultralight", "Family", "Basecamp", "Trail", "4-Season", "Compact"),
        search_terms=("tent", "sleeping bag", "headlamp"),
    ),
    Category(
        name="Socks",
        price_range=(9, 35),
        nouns=("Hiking Socks", "Running Socks", "Wool Socks"),
        adjectives=("Cushioned", "Everyday", "Merino", "Compression", "Trail"),
        search_terms=("socks", "merino socks", "running socks"),
    ),
    Category(
        name="Electronics",
        price_range=(15, 249),
        nouns=("Power Bank", "GPS Watch", "Earbuds", "Solar Charger"),
        adjectives=("Rugged", "Pro", "Mini", "Smart", "Solar"),
        search_terms=("gps watch", "power bank", "earbuds"),
    ),
)
# A few product names with quotes and commas, so CSV quoting and JSON escaping get exercised.
_ODD_PRODUCTS: tuple[tuple[str, str], ...] = (
    ("Bags", '15" Laptop Sleeve'),
    ("Bags", '13" Laptop Sleeve, Grey'),
    ("Socks", "Hiking Socks, 3-Pack"),
    ("Shirts", "T-Shirt, 2-Pack"),
    ("Electronics", 'Tablet Case 11"'),
)
CATALOG_SEED = 20_250_501  # the catalog is the same for every seed: a shop does not change per sample


@dataclass(frozen=True)
class Catalog:
    product_id: pa.Array
    name: pa.Array
    category_of: np.ndarray  # category index per product
    price_cents: np.ndarray
    category_names: pa.Array
    category_first: np.ndarray  # first product index of each category
    category_size: np.ndarray
    search_terms: pa.Array  # flattened, category_search_first/size index into it
    category_search_first: np.ndarray
    category_search_size: np.ndarray

    @property
    def size(self) -> int:
        return len(self.price_cents)

    def category_name(self, products: np.ndarray) -> pa.Array:
        return self.category_names.take(pa.array(self.category_of[products]))


@cache
def catalog() -> Catalog:
    """A few hundred products in ten categories, with prices."""
    rng = np.random.default_rng(CATALOG_SEED)
    names: list[str] = []
    categories: list[int] = []
    prices: list[int] = []
    terms: list[str] = []
    term_first: list[int] = []
    term_size: list[int] = []
    for index, category in enumerate(_CATEGORIES):
        low, high = category.price_range
        products = [f"{adjective} {noun}" for noun in category.nouns for adjective in category.adjectives]
        products += [name for odd_category, name in _ODD_PRODUCTS if odd_category == category.name]
        for name in products:
            names.append(name)
            categories.append(index)
            euros = np.exp(rng.uniform(np.log(low), np.log(high)))
            prices.append(round(euros) * 100 - int(rng.choice([1, 5, 10])))
        term_first.append(len(terms))
        term_size.append(len(category.search_terms) + 2)
        terms.extend([*category.search_terms, category.name.lower(), category.nouns[0].lower()])
    order = np.argsort(np.array(categories), kind="stable")
    category_of = np.array(categories)[order]
    counts = np.bincount(category_of, minlength=len(_CATEGORIES))
    return Catalog(
        product_id=pa.array([f"SKU-{10001 + i}" for i in range(len(names))]),
        name=pa.array([names[i] for i in order]),
        category_of=category_of,
        price_cents=np.array(prices, dtype=np.int64)[order],
        category_names=pa.array([c.name for c in _CATEGORIES]),
        category_first=np.concatenate([[0], np.cumsum(counts)[:-1]]),
        category_size=counts,
        search_terms=pa.array(terms),
        category_search_first=np.array(term_first),
        category_search_size=np.array(term_size),
    )
