"""Experiments: which dataset, which codec cards (with bitrate sweeps), which metrics."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from itertools import product
from pathlib import Path

from .alignment import AlignPolicy
from .cards import Card, load_cards
from .conditions import DecodedCondition, condition_from_config
from .config import Checker, describe, did_you_mean, read_document
from .errors import ConfigError

__all__ = ["Experiment", "load_experiment", "expand_codecs", "sweep_variants", "DEFAULT_CONFIG", "starter_config"]

_KEYS = {
    "name",
    "dataset",
    "codecs",
    "metrics",
    "downmix",
    "limit",
    "workers",
    "task_timeout",
    "database",
    "cache",
    "cards",
    "alignment",
    "allow_outside",
    "resolved",
}
MAX_SWEEP = 1000  # conditions one sweep may make: each is built now and scored on every item
_DATABASES = ("sqlite", "postgresql")  # the backends the results store is written and tested for
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
    # baseline: opus-12k  # optional: a codec listed here, drawn as a line on the report's sweep plot
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

# Files the dataset and decoded conditions name must lie inside their own folder (a manifest's
# "../" or absolute paths are refused); true lets them point anywhere.
allow_outside: false

# Use only the first N items (null: all).
limit: null

# Worker processes for the local pool (null: one per CPU core).
workers: null

# Seconds one item may spend in one codec and its metrics before its worker is stopped and
# the item recorded as failed (null: no limit). Local worker processes only.
task_timeout: null

# Results database URL (null: $EVALKIT_DB_URL, else results/evalkit.db under the folder evalkit
# runs in, where `evalkit results` and `evalkit report` look by default).
database: null

# Content-addressed cache of decoded audio.
cache: results/cache
"""


DEMO_MANIFEST = "data/demo/manifest.jsonl"  # the starter's dataset


def starter_config(folder: Path) -> str:
    """DEFAULT_CONFIG for a file written to `folder`: where the demo corpus is not at the starter's
    relative path (any folder but a checkout's root), its dataset names the installed one, so the
    starter runs as written."""
    from .resources import data_path

    manifest = data_path(DEMO_MANIFEST)
    if (Path(folder) / DEMO_MANIFEST).is_file() or not manifest.is_file():
        return DEFAULT_CONFIG
    return DEFAULT_CONFIG.replace(f"dataset: {DEMO_MANIFEST}", f"dataset: {manifest.resolve().as_posix()}", 1)


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
    allow_outside: bool = False  # dataset and condition files may lie outside their folders


def load_experiment(path: str | Path) -> Experiment:
    path = Path(path)
    document = read_document(path, "experiment")
    return experiment_from_dict(document.data, base=path.resolve().parent, source=str(path), lines=document.lines)


def experiment_from_dict(
    data: dict, base: Path = Path("."), source: str = "experiment", lines: dict[str, int] | None = None
) -> Experiment:
    """Check every value before any work: a mistake is one line naming the file, line and key."""
    base = Path(base).resolve()
    check = Checker(source, lines)
    if not isinstance(data, dict):
        check.fail("", f"an experiment is a mapping (see 'evalkit config default'), got {describe(data)}")
    # "resolved" is written by evalkit into the stored copy of the experiment, never by people
    check.mapping(data, "", _KEYS, required=("name", "dataset", "codecs", "metrics"), unlisted=frozenset({"resolved"}))
    name = _run_name(check, data["name"])
    dataset = base / check.text(data["dataset"], "dataset", required=True)
    metrics = _metrics(check, data["metrics"])
    cards = _cards(check, data.get("cards"), base)
    cache = base / check.text(data.get("cache", "results/cache"), "cache", required=True)
    allow_outside = check.boolean(data.get("allow_outside", False), "allow_outside")
    return Experiment(
        name=name,
        dataset=dataset,
        codecs=tuple(expand_codecs(data["codecs"], cards, check, base, allow_outside)),
        metrics=metrics,
        downmix=check.boolean(data.get("downmix", False), "downmix"),
        limit=_optional(check, data, "limit", lambda v, k: check.integer(v, k, 1, 10**9)),
        workers=_optional(check, data, "workers", lambda v, k: check.integer(v, k, 0, 1024)),
        task_timeout=_optional(check, data, "task_timeout", lambda v, k: check.number(v, k, above=0)),
        database=_database(check, data.get("database")),
        cache=cache,
        # Stored with the run: the YAML as written, plus where its relative paths pointed.
        config={**data, "resolved": {"dataset": str(dataset), "cache": str(cache), "base": str(base)}},
        alignment=AlignPolicy.from_config(data.get("alignment"), check),
        allow_outside=allow_outside,
    )


def _run_name(check: Checker, value) -> str:
    """The run's name in the database: a plain string (a list or number is a mistake, not a name)."""
    name = check.text(value, "name", required=True)
    if name != name.strip() or len(name) > 200 or any(ord(c) < 32 for c in name):
        check.fail(
            "name", f"{describe(name)} must be at most 200 characters, without control characters or surrounding spaces"
        )
    return name


def _metrics(check: Checker, value) -> tuple[str, ...]:
    from .metrics import METRICS

    for index, entry in enumerate(value if isinstance(value, list) else [value] if isinstance(value, dict) else []):
        if isinstance(entry, dict):  # a guess such as {name: stoi, extended: true}: each variant is its own metric
            where = f"metrics[{index}]" if isinstance(value, list) else "metrics"
            check.fail(where, f"metrics take no options: list names only (estoi, pesq_nb, ...), got {describe(entry)}")
    names = check.texts(value, "metrics", "metric name")
    for index, name in enumerate(names):
        if name not in METRICS:
            check.fail(
                f"metrics[{index}]",
                f"unknown metric {name!r}{did_you_mean(name, METRICS.names())}; known: {', '.join(METRICS.names())} "
                "('evalkit metrics' lists them)",
            )
    if len(set(names)) != len(names):
        check.fail("metrics", "lists a metric twice")
    return tuple(names)


def _cards(check: Checker, value, base: Path) -> dict[str, Card]:
    """`cards:` as a list of folders (one string is one folder), relative to the experiment."""
    if value is None:
        folders = []
    elif isinstance(value, str):
        folders = [check.text(value, "cards", required=True)]
    else:
        folders = check.texts(value, "cards", "folder") if value != [] else []
    try:
        return load_cards([base / folder for folder in folders], source="experiment")
    except ConfigError as err:
        check.fail("cards", str(err))


def _optional(check: Checker, data: dict, key: str, read):
    """data[key] checked by `read`, or None when it is absent or null."""
    value = data.get(key)
    return None if value is None else read(value, key)


def _database(check: Checker, value) -> str | None:
    """A SQLAlchemy URL of a backend the store supports, or None (the default database)."""
    if value is None:
        return None
    url = check.text(value, "database", required=True)
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        backend = make_url(url).get_backend_name()
    except (ArgumentError, ValueError):
        backend = None
    if backend not in _DATABASES:
        check.fail(
            "database",
            f"{describe(url)} is not a database URL evalkit can use: expected "
            "sqlite:///PATH or postgresql+psycopg://USER:PASSWORD@HOST/DB (or null)",
        )
    return url


def expand_codecs(
    entries,
    cards: dict[str, Card],
    check: Checker | str = "experiment",
    base: Path = Path("."),
    allow_outside: bool = False,
) -> list[Condition]:
    """Card names, {card, sweep} entries (one card per parameter combination) and conditions
    made elsewhere ({name, decoded | bitstreams, ...}, see `conditions`). Every card a run would
    build is built here once, so a bad parameter is an error before any work."""
    check = Checker(check) if isinstance(check, str) else check
    if not isinstance(entries, list) or not entries:
        hint = f" (write [{entries}] for one)" if isinstance(entries, str) else ""
        check.fail("codecs", f"must be a non-empty list of card names and mappings{hint}, got {describe(entries)}")
    out: list[Condition] = []
    for index, entry in enumerate(entries):
        key = f"codecs[{index}]"
        if isinstance(entry, dict) and ({"decoded", "files", "bitstreams", "name"} & set(entry)):
            out.append(condition_from_config(entry, cards, base, check, key, allow_outside))
            continue
        out.extend(_card_entry(check, entry, key, cards))
    names = [condition.name for condition in out]
    for index, name in enumerate(names):
        if name in names[:index]:
            check.fail("codecs", f"{name!r} is listed twice")
    for index, entry in enumerate(entries):
        baseline = entry.get("baseline") if isinstance(entry, dict) and "card" in entry else None
        if baseline is not None and baseline not in names:
            check.fail(f"codecs[{index}].baseline", f"{baseline!r} is not a codec of this experiment: list it too")
    return out


def _card_entry(check: Checker, entry, key: str, cards: dict[str, Card]) -> list[Card]:
    if isinstance(entry, dict):
        check.mapping(entry, key, {"card", "sweep", "baseline"}, required=("card",))
        name, sweep, name_key = entry["card"], entry.get("sweep", {}), f"{key}.card"
        if "baseline" in entry:
            check.text(entry["baseline"], f"{key}.baseline", required=True)
    elif isinstance(entry, str):
        name, sweep, name_key = entry, {}, key
    else:
        check.fail(
            key,
            f"expected a codec card name, a {{card, sweep}} or a {{name, decoded | bitstreams}} "
            f"mapping, got {describe(entry)}",
        )
    check.text(name, name_key, required=True)
    if name not in cards:
        check.fail(name_key, f"unknown codec {name!r}{did_you_mean(name, cards)}; run 'evalkit codecs' to list them")
    variants = _sweep(cards[name], _sweep_values(check, sweep, f"{key}.sweep"))
    for variant in variants:
        _check_builds(check, variant, f"{key}.sweep" if sweep else key)
    return variants


def _sweep_values(check: Checker, sweep, key: str) -> dict:
    check.mapping(sweep, key, set(map(str, sweep)) if isinstance(sweep, dict) else set())
    for param, values in sweep.items():
        if not isinstance(values, list) or not values:
            check.fail(f"{key}.{param}", f"must be a non-empty list of values, got {describe(values)}")
        for index, value in enumerate(values):
            if not isinstance(value, (str, int, float, bool)):
                check.fail(
                    f"{key}.{param}[{index}]",
                    f"must be a plain value (number, string or boolean), got {describe(value)}",
                )
        if len(set(map(repr, values))) != len(values):
            check.fail(f"{key}.{param}", "lists a value twice")
    combinations = math.prod(len(values) for values in sweep.values())
    if combinations > MAX_SWEEP:
        check.fail(
            key,
            f"makes {combinations} codec conditions, more than {MAX_SWEEP}: sweep fewer values, or "
            "split it across experiments",
        )
    return sweep


def _check_builds(check: Checker, card: Card, key: str) -> None:
    """Build the card's codec (where its backend is installed): parameter errors surface now."""
    if card.unavailable() is not None:
        return  # its rows will say why it cannot run here
    try:
        card.build()
    except ConfigError as err:
        check.fail(key, str(err))


def _sweep(card: Card, sweep: dict) -> list[Card]:
    if not sweep:
        return [card]
    return [
        replace(card, name=name, params={**card.params, **values}) for name, values in sweep_variants(card.name, sweep)
    ]


def sweep_variants(card_name: str, sweep: dict) -> list[tuple[str, dict]]:
    """(codec name, swept parameter values) per combination of a {card, sweep} entry, as a run names them."""
    keys = sorted(sweep)
    variants = []
    for values in product(*(sweep[k] for k in keys)):
        suffix = ",".join(f"{k}={v}" for k, v in zip(keys, values))
        variants.append((f"{card_name}@{suffix}", dict(zip(keys, values))))
    return variants
