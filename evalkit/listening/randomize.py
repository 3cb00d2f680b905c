"""Per-listener randomisation: balanced trial orders (Williams Latin squares) and slider orders.

A session's whole plan is a pure function of (test seed, arrival ordinal), so it can be
reproduced from the two numbers stored in the database; the plan itself is stored as well.
Trial orders are balanced across listeners: listener k takes row k of a Williams design over
the items (each item in each position equally often, and each item directly after each other
item equally often, across every complete block of rows). The test seed relabels the items,
so that item 1 is not always first for listener 1 in every test.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from typing import Any

__all__ = ["williams_square", "session_seed", "trial_order", "slider_order", "make_plan"]


def williams_square(n: int) -> list[list[int]]:
    """Rows of a Williams design on 0..n-1: n rows for even n, 2n (the square and its mirror) for odd n."""
    if n < 1:
        raise ValueError("a Latin square needs at least one treatment")
    # First row 0, 1, n-1, 2, n-2, ...; row r adds r to every entry (mod n).
    first, low, high = [0], 1, n - 1
    while len(first) < n:
        first.append(low)
        low += 1
        if len(first) < n:
            first.append(high)
            high -= 1
    rows = [[(value + r) % n for value in first] for r in range(n)]
    return rows if n % 2 == 0 else rows + [row[::-1] for row in rows]


def session_seed(test_seed: int, ordinal: int) -> int:
    """A 62-bit seed for one listener, derived (not drawn), so it can be reproduced."""
    digest = hashlib.sha256(f"evalkit.mushra|{test_seed}|{ordinal}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 2


def trial_order(test_seed: int, ordinal: int, n: int, policy: str = "balanced") -> list[int]:
    """Item indices in presentation order for the listener who arrived `ordinal`-th (0-based)."""
    if policy == "random":
        order = list(range(n))
        random.Random(session_seed(test_seed, ordinal)).shuffle(order)
        return order
    labels = list(range(n))
    random.Random(test_seed).shuffle(labels)
    rows = williams_square(n)
    return [labels[value] for value in rows[ordinal % len(rows)]]


def slider_order(seed: int, phase: str, position: int, n: int) -> list[int]:
    """Condition indices left to right on one trial page; independent for every trial."""
    order = list(range(n))
    random.Random(f"{seed}|{phase}|{position}").shuffle(order)
    return order


def make_plan(
    test_seed: int,
    ordinal: int,
    items: Sequence[int],
    training: Sequence[int],
    conditions: Sequence[int],
    policy: str = "balanced",
) -> dict[str, Any]:
    """Training and test trials as {"item": id, "conditions": [condition ids, slider order]} in presentation order.

    `items`, `training` and `conditions` are database ids; the test items keep their definition
    order, which the Latin square permutes.
    """
    seed = session_seed(test_seed, ordinal)

    def trials(phase: str, chosen: Sequence[int]) -> list[dict[str, Any]]:
        return [
            {"item": item, "conditions": [conditions[c] for c in slider_order(seed, phase, p, len(conditions))]}
            for p, item in enumerate(chosen)
        ]

    order = [items[i] for i in trial_order(test_seed, ordinal, len(items), policy)]
    return {"seed": seed, "training": trials("training", training), "test": trials("test", order)}
