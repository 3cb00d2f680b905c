"""Import listening-test ratings made elsewhere into the database as an external MUSHRA test.

`import_ratings` reads a webMUSHRA, BeaqleJS or long-table export, applies the map (names, roles,
links to codec cards), checks every rating and writes nothing unless the whole file is clean:
each problem (unknown column, score outside 0-100, duplicate rating, listener without a rating of
the hidden reference, a declared condition that does not exist, ...) is reported once, with its
line. The test is stored like one evalkit ran (conditions, items, listeners, one trial per
listener and item), marked with its origin and closed, so every analysis works on it unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ...cards import load_cards
from ...errors import ConfigError, EvalkitError
from ..screening import ScreeningConfig
from .mapping import NONE, ImportMap, load_map
from .readers import Rating, Reading, read_beaqlejs, read_long, read_webmushra
from .roles import resolve_roles
from .writer import write_external_test

__all__ = ["RatingsError", "ImportResult", "import_ratings", "FORMATS", "MAX_SHOWN"]

FORMATS = ("webmushra", "beaqlejs", "long")
MAX_SHOWN = 20  # problems printed before "... and N more"
_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class RatingsError(EvalkitError):
    """A ratings file with problems; `problems` holds one line per problem."""

    def __init__(self, source: str, problems: list[str]):
        self.problems = problems
        shown = problems[:MAX_SHOWN] + (
            [f"... and {len(problems) - MAX_SHOWN} more"] if len(problems) > MAX_SHOWN else []
        )
        super().__init__(f"{len(problems)} problem(s) in {source}; nothing was imported:\n  " + "\n  ".join(shown))


@dataclass(frozen=True)
class ImportResult:
    test: str
    origin: str
    listeners: int
    items: int
    conditions: tuple[str, ...]
    ratings: int
    screening: ScreeningConfig
    dropped: int  # ratings the map left out (items or conditions mapped to null)

    def describe(self) -> str:
        return (
            f"imported {self.ratings} ratings of {self.listeners} listeners, {self.items} items and "
            f"{len(self.conditions)} conditions into MUSHRA test {self.test!r} (from {self.origin})"
            + (f"; {self.dropped} ratings left out by the map" if self.dropped else "")
            + f"\nscreening: {self.screening.describe()}"
        )


def import_ratings(
    engine,
    paths: list[str | Path] | str | Path,
    fmt: str,
    test: str | None = None,
    map_path: str | Path | None = None,
    reference: str | None = None,
    anchors: list[str] | None = None,
    mid_anchor: str | None = None,
    screening: str | None = None,
    replace: bool = False,
    cards_dir: str | Path | None = None,
) -> ImportResult:
    """Check and store the ratings of `paths` as MUSHRA test `test`; RatingsError lists every problem."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown ratings format {fmt!r}; choose one of {', '.join(FORMATS)}")
    paths = _files([paths] if isinstance(paths, (str, Path)) else list(paths), fmt)
    cards = load_cards(cards_dir) if map_path else {}
    mapping = load_map(map_path, set(cards) if map_path else None)
    reading = _read(paths, fmt, mapping)
    source = ", ".join(p.name for p in paths)
    ratings, dropped = _mapped(reading.ratings, mapping)
    problems = list(reading.problems) + _checks(ratings, reading)
    overrides = {
        "reference": reference,
        "anchors": tuple(anchors) if anchors else None,
        "mid_anchor": mid_anchor,
        "screening": screening,
    }
    config, kinds, role_problems = resolve_roles(fmt, ratings, reading, mapping, overrides)
    if ratings:  # the roles of a file without ratings would only add noise to why it has none
        problems += role_problems + _without_reference(ratings, config)
    name = _test_name(test, mapping, reading, paths[0], problems)
    if problems:
        raise RatingsError(source, problems)
    hashes = {m.card: cards[m.card].config_hash for m in mapping.conditions.values() if m and m.card in cards}
    write_external_test(engine, name, fmt, mapping, ratings, kinds, config, reading.answers, paths, replace, hashes)
    return ImportResult(
        name,
        fmt,
        len({r.listener for r in ratings}),
        len({r.item for r in ratings}),
        tuple(sorted({r.condition for r in ratings})),
        len(ratings),
        config,
        dropped,
    )


def _files(paths: list[str | Path], fmt: str) -> list[Path]:
    """The files to read: a folder of BeaqleJS results gives its *.json and *.txt files."""
    files = []
    for path in map(Path, paths):
        if path.is_dir() and fmt == "beaqlejs":
            files += sorted(p for p in path.iterdir() if p.suffix.lower() in (".json", ".txt"))
        elif not path.is_file():
            raise ConfigError(f"{path}: no such file")
        else:
            files.append(path)
    if not files:
        raise ConfigError(f"{', '.join(map(str, paths))}: no ratings files found")
    if fmt != "beaqlejs" and len(files) > 1:
        raise ConfigError(f"a {fmt} import reads one file; got {len(files)}")
    return files


def _read(paths: list[Path], fmt: str, mapping: ImportMap) -> Reading:
    if fmt == "webmushra":
        return read_webmushra(paths[0])
    if fmt == "long":
        return read_long(paths[0])
    return read_beaqlejs(paths, mapping.beaqlejs_item, mapping.beaqlejs_condition)


def _mapped(ratings: list[Rating], mapping: ImportMap) -> tuple[list[Rating], int]:
    """Ratings under their evalkit names; those whose item or condition the map leaves out are dropped."""
    kept = []
    for rating in ratings:
        item, condition = mapping.item(rating.item), mapping.condition(rating.condition)
        if item is not None and condition is not None:
            kept.append(
                Rating(
                    rating.where,
                    rating.listener,
                    item,
                    condition.name,
                    rating.score,
                    rating.time,
                    rating.comment,
                    rating.kind,
                )
            )
    return kept, len(ratings) - len(kept)


def _checks(ratings: list[Rating], reading: Reading) -> list[str]:
    """Scores in range, one rating per (listener, item, condition), names that fit the database."""
    problems, first = [], {}
    tests = sorted(t for t in reading.tests if t)
    if len(tests) > 1:
        problems.append(f"the file holds {len(tests)} tests ({', '.join(tests)}): import one test per file")
    if not ratings and not reading.problems:
        problems.append("no ratings to import (the map may leave every item or condition out)")
    for rating in ratings:
        if not 0 <= rating.score <= 100:
            problems.append(f"{rating.where}: score {rating.score:g} is outside 0-100")
        if rating.time is not None and rating.time < 0:
            problems.append(f"{rating.where}: time on the trial {rating.time:g} s is negative")
        key = (rating.listener, rating.item, rating.condition)
        if key in first:
            problems.append(
                f"{rating.where}: duplicate rating of condition {rating.condition!r} on item "
                f"{rating.item!r} by listener {rating.listener!r} (first at {first[key]})"
            )
        first.setdefault(key, rating.where)
        for what, value, limit in (
            ("listener", rating.listener, 200),
            ("item", rating.item, 500),
            ("condition", rating.condition, 200),
        ):
            if len(value) > limit:
                problems.append(f"{rating.where}: {what} {value[:40]!r}... is longer than {limit} characters")
            if _CONTROL.search(value):  # a NUL cannot even be stored in PostgreSQL; none belongs in a name
                problems.append(f"{rating.where}: {what} {value[:40]!r} holds a control character; remove it")
    return problems


def _without_reference(ratings: list[Rating], config: ScreeningConfig | None) -> list[str]:
    """A listener who never rated the hidden reference cannot be screened: one problem per such listener."""
    if config is None or not config.reference or config.reference == NONE:
        return []
    rated = {r.listener for r in ratings if r.condition == config.reference}
    first = {}
    for rating in ratings:
        first.setdefault(rating.listener, rating.where)
    return [
        f"{where}: listener {listener!r} has no rating of the hidden reference {config.reference!r}"
        for listener, where in first.items()
        if listener not in rated
    ]


def _test_name(test: str | None, mapping: ImportMap, reading: Reading, path: Path, problems: list[str]) -> str:
    """--test, else the map's `test`, else the file's own test id, else the file name (made a valid name)."""
    tests = sorted(t for t in reading.tests if t)
    name = test or mapping.test or (tests[0] if len(tests) == 1 else path.stem)
    name = name if test or mapping.test else (_NAME.sub("-", name).strip("-._") or "imported")[:200]
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}", name):
        problems.append(
            f"test name {name!r} must be 1-200 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return name
