"""MUSHRA ratings next to the objective results of the same conditions and items.

Ratings come from evalkit.mushra (tidy: one row per rating), screened with its BS.1534-3 rules.
A MUSHRA condition key is a codec card name and a MUSHRA item key a dataset item id, so
stimulus (item, condition) meets result (item_id, codec). When the MUSHRA library or its tables
are not there yet, `load_listening` returns a message instead of data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
from sqlalchemy import Engine, text

from ..errors import EvalkitError
from ..store import mean_ci
from .codecinfo import COST_METRICS
from .data import table_exists

__all__ = ["Listening", "mushra_tests", "load_listening", "stimulus_frame", "condition_scores", "NO_MUSHRA"]

NO_MUSHRA = "no MUSHRA test yet: create one from tests_mushra/*.yaml in the app's MUSHRA admin pages"


@dataclass
class Listening:
    """A test's ratings (all, and kept after screening) and what screening did; `message` if unusable."""

    test: str
    ratings: pd.DataFrame = field(default_factory=pd.DataFrame)
    kept: pd.DataFrame = field(default_factory=pd.DataFrame)
    excluded: dict[str, str] = field(default_factory=dict)
    screening: str = "none"
    message: str | None = None


def mushra_tests(engine: Engine) -> list[str]:
    """Names of the MUSHRA tests in the database; empty when the MUSHRA tables are not there."""
    if not table_exists(engine, "mushra_tests"):
        return []
    with engine.connect() as connection:
        return [row[0] for row in connection.execute(text("SELECT name FROM mushra_tests ORDER BY name"))]


def load_listening(engine: Engine, test: str, screen: bool = True, ratings: pd.DataFrame | None = None) -> Listening:
    """Ratings of `test`, screened; `ratings` (participant, item, condition, score) skips the database."""
    if ratings is None:
        ratings, message = _read_ratings(engine, test)
        if message:
            return Listening(test, message=message)
    if ratings.empty:
        return Listening(test, ratings, message=f"MUSHRA test {test!r} has no ratings yet")
    listening = Listening(test, ratings, ratings)
    if screen:
        _screen(listening)
    return listening


def stimulus_frame(kept: pd.DataFrame, results: pd.DataFrame) -> pd.DataFrame:
    """Per item x condition x metric: mean listener score, ratings count and the metric value."""
    scores = (kept.groupby(["item", "condition"], sort=True)["score"].agg(score="mean", ratings="count")
              .reset_index())
    ok = results[(results["status"] == "ok") & ~results["metric"].isin(COST_METRICS)]
    values = ok[["item_id", "codec", "metric", "value"]].rename(columns={"item_id": "item", "codec": "condition"})
    return scores.merge(values, on=["item", "condition"], how="inner")


def condition_scores(kept: pd.DataFrame) -> pd.DataFrame:
    """Per condition: n, mean and t interval (BS.1534-3), plus median and IQR; evalkit.mushra's if present."""
    try:
        from ..mushra.stats import condition_summary
    except ImportError:
        condition_summary = None
    if condition_summary is not None:
        return condition_summary(kept, n_boot=2000)
    rows = []
    for condition, group in kept.groupby("condition", sort=True):
        mean, std, low, high = mean_ci(group["score"])
        q1, median, q3 = group["score"].quantile([0.25, 0.5, 0.75])
        rows.append({"condition": condition, "n": len(group), "assessors": group["participant"].nunique(),
                     "median": median, "iqr": q3 - q1, "mean": mean, "std": std, "t_low": low, "t_high": high})
    return pd.DataFrame(rows)


def _read_ratings(engine: Engine, test: str) -> tuple[pd.DataFrame, str | None]:
    if not table_exists(engine, "mushra_ratings"):
        return pd.DataFrame(), "no MUSHRA tables in this database yet (they arrive with the MUSHRA migration)"
    try:
        from ..mushra.results import ratings_frame
    except ImportError as err:
        return pd.DataFrame(), f"the MUSHRA library is not available ({err})"
    known = mushra_tests(engine)
    if test not in known:
        return pd.DataFrame(), f"no MUSHRA test named {test!r} (tests: {', '.join(known) or 'none'})"
    try:
        return ratings_frame(engine, test), None
    except EvalkitError as err:
        return pd.DataFrame(), str(err)


def _screen(listening: Listening) -> None:
    try:
        from ..mushra.screening import screen
    except ImportError:
        listening.screening = "none (evalkit.mushra.screening is not available)"
        return
    result = screen(listening.ratings)
    listening.kept = result.apply(listening.ratings)
    listening.excluded = dict(result.excluded)
    skipped = f"; anchor rule skipped on items {', '.join(result.anchor_items_skipped)}" \
        if result.anchor_items_skipped else ""
    listening.screening = (f"ITU-R BS.1534-3 post-screening: {len(result.kept)} assessor(s) kept, "
                           f"{len(result.excluded)} excluded{skipped}")
