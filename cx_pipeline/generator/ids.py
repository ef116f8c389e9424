"""Record ids that are unique across chunks and look like the source systems' ids."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from cx_pipeline.generator import text

# id space -> (prefix, digits, first value). Values are a scrambled counter, so they are unique without
# looking sequential.
ID_SPACES: dict[str, tuple[str, int, int]] = {
    "order": ("ORD-", 8, 0),
    "contact": ("C", 7, 0),
    "ticket": ("", 7, 1_000_000),  # Zendesk-like plain numbers
    "nps": ("NPS-", 8, 0),
    "consent": ("CE-", 9, 0),
    "rejection": ("RJ-", 8, 0),
    "erasure": ("ER-", 6, 0),
}


@dataclass
class IdAllocator:
    """Hands out ids per space; chunks run in order, so the same config gives the same ids."""

    salt: int
    used: dict[str, int] = field(default_factory=dict)

    def take(self, space: str, count: int) -> pa.Array:
        prefix, digits, first_value = ID_SPACES[space]
        capacity = 10**digits - first_value
        start = self.used.get(space, 0)
        if start + count > capacity:
            raise ValueError(f"the {space} id space ({capacity} ids) is exhausted; generate fewer customers")
        self.used[space] = start + count
        counters = np.arange(start, start + count, dtype=np.int64)
        salt = self.salt * 1_000_003 + list(ID_SPACES).index(space) * 7_919
        return text.prefixed_ids(prefix, first_value + text.scramble(counters, capacity, salt), digits)
