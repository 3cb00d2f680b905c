"""Experiments: which dataset, which codec cards (with bitrate sweeps), which metrics."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from itertools import product
from pathlib import Path

from .alignment import AlignPolicy
from .cards import Card, load_cards
from .conditions import DecodedCondition, condition_from_config
from .config import check_keys, read_yaml
from .errors import ConfigError

__all__ = ["Experiment", "load_experiment", "expand_codecs", "DEFAULT_CONFIG"]

_KEYS = {"name", "dataset", "codecs", "metrics", "downmix", "limit", "workers", "task_timeout", "database", "cache",
         "cards", "alignment", "resolved"}
Condition = Card | DecodedCondition  # anything that yields decoded audio for an item

DEFAULT_CONFIG = """\
# evalkit experiment: `evalkit run THIS_FILE.yaml`
# Paths are relative to this file.

# The run's name in the results database. Running the same name again is incremental:
# only what is missing or changed (a codec card's parameters, a metric's version) is computed.
name: my-experiment

# A JSONL manifest (one {"id", "path" (or "ref"), "speaker"?, "text"?} per line), a folder of
# wav/flac/ogg files, or a Kaldi-style wav.scp.
dataset: data/demo/manifest.jsonl

# Conditions: codec card names (`evalkit codecs` lists them), sweeps and files made elsewhere.
# A sweep runs one card at several parameter values; each value becomes its own codec, named
# card@param=value. Decoded files are matched to items by id: a folder (relative path or file
# stem), a pattern with {id}, or a JSONL manifest of {"id", "deg"}; bitstreams (same forms)
# measure the bitrate from their sizes, or are decoded by a card when written by `evalkit encode`.
codecs:
  - reference
  - opus-12k
  - amr-wb-12k65
  - codec2-3200
  - card: opus-16k-wb
    sweep: {bitrate: [6000, 9000, 16000, 24000]}
  # - {name: mycodec-6k, decoded: outputs/mycodec-6k/, bitrate_kbps: 6.0}
  # - {name: mycodec-3k, decoded: "outputs/{id}_3k.wav", bitstreams: "bits/{id}.bin"}

# More folders of codec cards, added to the built-in ones (names must not clash).
cards: []

# Every decoded signal is aligned with its item: the lag is estimated, applied and stored with
# each row, and both are trimmed to their common length. A pair is refused when the lag or the
# length change exceeds these limits or the correlation at the lag is too weak to trust (metrics
# that align on their own, WARP-Q, or need no reference, DNSMOS, still score it).
alignment: {max_lag_ms: 500, max_length_change: 0.2, min_correlation: 0.5}

# Metric names (`evalkit metrics` lists them). Bitrate and encode/decode speed are always recorded.
metrics: [pesq_wb, stoi, si_sdr, dnsmos]

# Average the channels of multichannel items (codecs are mono); otherwise such items fail.
downmix: false

# Use only the first N items (null: all).
limit: null

# Worker processes for the local pool (null: one per CPU core).
workers: null

# Seconds one item may spend in one codec and its metrics before its worker is stopped and
# the item recorded as failed (null: no limit). Local worker processes only.
task_timeout: null

# Results database URL (null: $EVALKIT_DB_URL, else sqlite:///results/evalkit.db).
database: null

# Content-addressed cache of decoded audio.
cache: results/cache
"""


@dataclass(frozen=True)
class Experiment:
    name: str
    dataset: Path
    codecs: tuple[Condition, ...]
    metrics: tuple[str, ...]
    downmix: bool = False
    limit: int | None = None
    workers: int | None = None
    task_timeout: float | None = None
    database: str | None = None
    cache: Path = Path("results/cache")
    config: dict = field(default_factory=dict)  # the YAML as given, stored with the run
    alignment: AlignPolicy = AlignPolicy()


def load_experiment(path: str | Path) -> Experiment:
    path = Path(path)
    data = read_yaml(path, "experiment")
    return experiment_from_dict(data, base=path.resolve().parent, source=str(path))


def experiment_from_dict(data: dict, base: Path = Path("."), source: str = "experiment") -> Experiment:
    base = Path(base).resolve()
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: an experiment is a mapping (see 'evalkit config default')")
    check_keys(data, _KEYS, source)
    for key in ("name", "dataset", "codecs", "metrics"):
        if not data.get(key):
            raise ConfigError(f"{source}: {key!r} is required")
    if not isinstance(data["metrics"], list) or not all(isinstance(m, str) for m in data["metrics"]):
        raise ConfigError(f"{source}: 'metrics' must be a list of metric names")
    cards = load_cards(_card_folders(data.get("cards"), base, source), source="experiment")
    dataset, cache = base / data["dataset"], base / data.get("cache", "results/cache")
    return Experiment(
        name=str(data["name"]),
        dataset=dataset,
        codecs=tuple(expand_codecs(data["codecs"], cards, source, base)),
        metrics=tuple(data["metrics"]),
        downmix=bool(data.get("downmix", False)),
        limit=_optional_number(data, "limit", int, 1, source),
        workers=_optional_number(data, "workers", int, 0, source),
        task_timeout=_optional_number(data, "task_timeout", float, 0, source),
        database=data.get("database"),
        cache=cache,
        # Stored with the run: the YAML as written, plus where its relative paths pointed.
        config={**data, "resolved": {"dataset": str(dataset), "cache": str(cache), "base": str(base)}},
        alignment=AlignPolicy.from_config(data.get("alignment"), source),
    )


def _card_folders(value, base: Path, source: str) -> list[Path]:
    """`cards:` as a list of folders (one string is one folder), relative to the experiment."""
    if value is None:
        return []
    folders = [value] if isinstance(value, str) else value
    if not isinstance(folders, list) or not all(isinstance(f, str) and f for f in folders):
        raise ConfigError(f"{source}: 'cards' must be a folder or a list of folders of codec cards")
    return [base / folder for folder in folders]


def _optional_number(data: dict, key: str, kind: type, minimum: float, source: str):
    """data[key] as an int or float of at least `minimum` (above it for floats), or None."""
    value = data.get(key)
    if value is None:
        return None
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not numeric or (kind is int and value != int(value)) or value < minimum or (kind is float and value == minimum):
        bound = f"at least {minimum}" if kind is int else f"above {minimum:g}"
        raise ConfigError(f"{source}: {key!r} must be {'a whole number' if kind is int else 'a number'} {bound} or null, "
                          f"not {value!r}")
    return kind(value)


def expand_codecs(entries: list, cards: dict[str, Card], source: str = "experiment",
                  base: Path = Path(".")) -> list[Condition]:
    """Card names, {card, sweep} entries (one card per parameter combination) and conditions
    made elsewhere ({name, decoded | bitstreams, ...}, see `conditions`)."""
    if not isinstance(entries, list):
        raise ConfigError(f"{source}: 'codecs' must be a list of card names and mappings")
    out: list[Condition] = []
    for index, entry in enumerate(entries):
        where = f"{source}: codecs[{index}]"
        if isinstance(entry, dict) and ({"decoded", "bitstreams", "name"} & set(entry)):
            out.append(condition_from_config(entry, cards, base, where))
            continue
        if isinstance(entry, dict):
            check_keys(entry, {"card", "sweep"}, where)
        elif not isinstance(entry, str):
            raise ConfigError(f"{where}: a card name, a {{card, sweep}} or a {{name, decoded | bitstreams}} mapping")
        name, sweep = (entry, {}) if isinstance(entry, str) else (entry.get("card"), entry.get("sweep", {}))
        if name not in cards:
            raise ConfigError(f"{source}: unknown codec {name!r}; run 'evalkit codecs' to list them")
        if not isinstance(sweep, dict) or not all(isinstance(v, list) and v for v in sweep.values()):
            raise ConfigError(f"{source}: sweep of {name} must map parameter names to non-empty lists")
        out.extend(_sweep(cards[name], sweep))
    names = [condition.name for condition in out]
    if len(set(names)) != len(names):
        raise ConfigError(f"{source}: a codec is listed twice")
    return out


def _sweep(card: Card, sweep: dict) -> list[Card]:
    if not sweep:
        return [card]
    keys = sorted(sweep)
    variants = []
    for values in product(*(sweep[k] for k in keys)):
        params = {**card.params, **dict(zip(keys, values))}
        suffix = ",".join(f"{k}={v}" for k, v in zip(keys, values))
        variants.append(replace(card, name=f"{card.name}@{suffix}", params=params))
    return variants
