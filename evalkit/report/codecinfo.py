"""What the report needs to know about codecs and metrics: family, latency, and which way is better.

Building a codec can be slow (libraries, weights), so a card's CodecInfo is built once per process.
Sweep variants are named card@param=value[,param=value]; their parameters are parsed from the name.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

from ..cards import load_cards
from ..config import parse_document
from ..errors import EvalkitError
from ..tasks import COST_METRICS  # rows the runner adds to every round trip

__all__ = [
    "CodecMeta",
    "codec_meta",
    "metric_directions",
    "higher_is_better",
    "card_display_name",
    "COST_METRICS",
    "REFERENCE_FAMILIES",
]

# Families that are test conditions, not codecs: left out of rate-quality curves and Pareto fronts.
REFERENCE_FAMILIES = frozenset({"reference", "anchor", "mnru"})
_COST_DIRECTIONS = dict.fromkeys(COST_METRICS, False)  # every cost is better lower


@dataclass(frozen=True)
class CodecMeta:
    """A codec configuration as the report shows it; latency is None when the card cannot be built."""

    name: str
    family: str
    latency_ms: float | None
    nominal_kbps: float | None
    sample_rate: int | None
    note: str = ""


def codec_meta(name: str, cards_dir: str | tuple[str, ...] | None = None) -> CodecMeta:
    """Family, algorithmic latency and nominal bitrate of card `name` (or a sweep variant of it)."""
    return _codec_meta(name, cards_dir)


@lru_cache(maxsize=512)
def _codec_meta(name: str, cards_dir: str | tuple[str, ...] | None) -> CodecMeta:
    base, _, suffix = name.partition("@")
    card = _cards(cards_dir).get(base)
    if card is None:
        return CodecMeta(name, "unknown", None, None, None, f"no codec card named {base!r}")
    try:
        card = replace(card, params={**card.params, **_sweep_params(name, suffix)}) if suffix else card
        info = card.build().info
    except EvalkitError as err:  # unavailable here: the family is still the backend's name
        return CodecMeta(name, card.backend, None, None, None, str(err))
    kbps = None if info.nominal_bitrate is None else info.nominal_bitrate / 1000
    return CodecMeta(name, info.family, info.algorithmic_latency_ms, kbps, info.sample_rate)


def card_display_name(name: str, cards_dir: str | None = None) -> str | None:
    """The `display_name` of card `name`, or None (no such card, or it has none)."""
    card = _cards(cards_dir).get(name)
    return (card.display_name or None) if card is not None else None


@lru_cache(maxsize=4)
def _cards(cards_dir: str | tuple[str, ...] | None) -> dict:
    try:
        return load_cards(cards_dir)
    except EvalkitError:
        return {}


def _sweep_params(name: str, suffix: str) -> dict:
    """ "bitrate=6000,complexity=5" -> {"bitrate": 6000, "complexity": 5} (YAML scalars, as written)."""
    params = {}
    for part in suffix.split(","):
        key, _, value = part.partition("=")
        if key:
            params[key] = parse_document(value, name, "sweep value").data if value else None
    return params


def metric_directions() -> dict[str, bool | None]:
    """Output name -> higher is better, for every registered metric and the cost rows."""
    return dict(_directions())


@lru_cache(maxsize=1)
def _directions() -> tuple[tuple[str, bool | None], ...]:
    from ..metrics import METRICS

    directions: dict[str, bool | None] = dict(_COST_DIRECTIONS)
    for name in METRICS.names():
        spec = METRICS.get(name).spec
        directions.update({output: spec.direction(output) for output in spec.outputs})
    return tuple(directions.items())


def higher_is_better(metric: str) -> bool:
    """Direction of `metric`; a metric no longer registered is taken as higher-is-better."""
    direction = dict(_directions()).get(metric)
    return True if direction is None else direction
