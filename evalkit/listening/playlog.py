"""What was heard, decided on the server: play events time-stamped on arrival, and their limits.

The trial page reports each switch (play stimulus X from offset p with loop region [a, b]) and
each stop the moment it happens; the server stamps it with its own clock. A play lasts until the
next event of the page arrives, or until the page is committed. A stimulus counts as played once
its plays add up to `needed_seconds`: the test's minimum (default 1 s), or the loop region if that
is shorter. Nothing the page claims about durations is believed.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .flow import FlowError

__all__ = [
    "PlayEvent",
    "LimitError",
    "TooLarge",
    "RateLimiter",
    "heard_and_needed",
    "spans",
    "events_from_rows",
    "check_loop",
    "check_offset",
    "limited_json",
    "DEFAULT_MIN_PLAY_S",
    "MIN_LOOP_S",
    "MAX_PLAY_EVENTS",
    "MAX_CLIENT_EVENTS",
    "MAX_EVENT_BYTES",
    "MAX_CLIENT_BYTES",
]

DEFAULT_MIN_PLAY_S = 1.0
MIN_LOOP_S = 0.5  # the shortest loop region the page allows (and the least a play must last)
MAX_PLAY_EVENTS = 1000  # per trial page: hours of switching by hand
MAX_CLIENT_EVENTS = 100  # per session: errors, notes
MAX_EVENT_BYTES = 2_000  # one client event's payload, as JSON
MAX_CLIENT_BYTES = 4_000  # the timing record sent with a trial


class LimitError(FlowError):
    """A request beyond a size or rate limit; nothing of it was stored."""


class TooLarge(LimitError):
    """A request, record or event larger than its limit."""


@dataclass(frozen=True)
class PlayEvent:
    """A play (stimulus id) or a stop (None) as the server received it; `at` is the server's clock in s."""

    stimulus: str | None
    at: float
    offset: float = 0.0  # where in the stimulus playback started, s
    loop: tuple[float, float] | None = None  # the loop region in force; None: the whole stimulus


def spans(events: Sequence[PlayEvent], until: float, duration: float, looping: bool) -> list[float]:
    """Seconds each event played: until the next event arrived (or `until`); 0 for a stop.
    Without looping a play cannot outlast the rest of the stimulus from its offset."""
    found = []
    for event, end in zip(events, [event.at for event in events[1:]] + [until]):
        span = 0.0 if event.stimulus is None else max(0.0, end - event.at)
        found.append(span if looping else min(span, max(0.0, duration - event.offset)))
    return found


def heard_and_needed(
    events: Sequence[PlayEvent], until: float, duration: float, looping: bool, min_seconds: float = DEFAULT_MIN_PLAY_S
) -> dict[str, tuple[float, float]]:
    """Per stimulus: (seconds heard, seconds needed to count as played); events in arrival order.

    The need is `min_seconds`, or the shortest loop region (never under MIN_LOOP_S) or stimulus
    it was played with, when that is shorter.
    """
    found: dict[str, tuple[float, float]] = {}
    for event, span in zip(events, spans(events, until, duration, looping)):
        if event.stimulus is None:
            continue
        region = duration if event.loop is None or not looping else event.loop[1] - event.loop[0]
        heard, needed = found.get(event.stimulus, (0.0, math.inf))
        found[event.stimulus] = (heard + span, min(needed, min_seconds, max(region, MIN_LOOP_S), duration))
    return found


def check_loop(loop: Any, duration: float) -> tuple[float, float] | None:
    """A loop region [start, end) inside the stimulus, at least MIN_LOOP_S long (None: all of it)."""
    if loop is None:
        return None
    if (
        not isinstance(loop, (list, tuple))
        or len(loop) != 2
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in loop)
    ):
        raise FlowError("a loop region is two numbers [start, end] in seconds")
    start, end = float(loop[0]), float(loop[1])
    slack = 1e-3  # the page rounds to milliseconds
    if start < -slack or end > duration + slack or end - start < min(MIN_LOOP_S, duration) - slack:
        raise FlowError(
            f"the loop region {start:g}-{end:g} s does not fit a {duration:g} s stimulus (at least {MIN_LOOP_S} s long)"
        )
    return max(0.0, start), min(duration, end)


def check_offset(offset: Any, duration: float) -> float:
    if isinstance(offset, bool) or not isinstance(offset, (int, float)) or not 0 <= offset <= duration + 1e-3:
        raise FlowError(f"a play offset is a number of seconds from 0 to {duration:g}")
    return min(float(offset), duration)


def limited_json(value: Any, what: str, limit: int) -> Any:
    """`value` as stored JSON, refused (LimitError) when its text exceeds `limit` characters."""
    if value is None:
        return None
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise FlowError(f"{what} is not JSON: {err}") from None
    if len(text) > limit:
        raise TooLarge(f"{what} is too large ({len(text)} characters, at most {limit}); nothing was stored")
    return json.loads(text)


class RateLimiter:
    """Token buckets by key (a session, a client): `rate` requests per second, bursts up to `burst`.

    Holds at most `keys` buckets (the least recently used go first), so memory stays bounded
    however many listeners come and go. Thread-safe.
    """

    def __init__(self, rate: float, burst: float, keys: int = 10_000, clock=time.monotonic):
        self.rate, self.burst, self.keys, self.clock = rate, burst, keys, clock
        self._buckets: OrderedDict[Any, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def allow(self, key: Any) -> bool:
        now = self.clock()
        with self._lock:
            tokens, last = self._buckets.pop(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            allowed = tokens >= 1
            self._buckets[key] = (tokens - 1 if allowed else tokens, now)
            while len(self._buckets) > self.keys:
                self._buckets.popitem(last=False)
        return allowed

    def check(self, key: Any, what: str) -> None:
        if not self.allow(key):
            raise LimitError(f"too many {what} in a short time; wait a moment and try again")

    def __len__(self) -> int:
        return len(self._buckets)


def events_from_rows(rows: Iterable[Any]) -> list[PlayEvent]:
    """PlayEvents from mushra_plays rows (attribute access), in arrival order."""
    return [PlayEvent(row.stimulus, row.at.timestamp(), row.offset, (row.loop_start, row.loop_end)) for row in rows]
