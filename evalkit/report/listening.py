"""MUSHRA ratings next to the objective results of the same conditions and items.

Ratings come from evalkit.mushra (tidy: one row per rating), screened by the rule and with the
hidden reference and anchors the test declares (evalkit's own tests: BS.1534-3 with its generated
conditions; imported tests: what the import declared). A stimulus (item, condition) meets the
run's result (item_id, codec) where codec is the name the condition's objective results carry:
its codec card (or pre-decoded condition) when one was mapped, else the condition's own key.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
from sqlalchemy import Engine, text

from ..errors import EvalkitError
from ..listening.responses import ratings_frame
from ..mushra.design import TestSetup, setup_from_frame, test_setup
from ..mushra.screening import ScreeningConfig, screen
from ..mushra.stats import condition_summary
from .codecinfo import COST_METRICS
from .data import table_exists

__all__ = ["Listening", "mushra_tests", "load_listening", "stimulus_frame", "condition_scores", "NO_MUSHRA"]

NO_MUSHRA = (
    "no MUSHRA test yet: create one from tests_mushra/*.yaml in the app's MUSHRA admin pages, or import "
    "ratings with `evalkit ratings import FILE`"
)


@dataclass
class Listening:
    """A test's ratings (all, and kept after screening), its declared setup and what screening did."""

    test: str
    ratings: pd.DataFrame = field(default_factory=pd.DataFrame)
    kept: pd.DataFrame = field(default_factory=pd.DataFrame)
    excluded: dict[str, str] = field(default_factory=dict)
    screening: str = "none"
    message: str | None = None
    setup: TestSetup | None = None


def mushra_tests(engine: Engine) -> list[str]:
    """Names of the MUSHRA tests in the database; empty when the MUSHRA tables are not there."""
    if not table_exists(engine, "mushra_tests"):
        return []
    with engine.connect() as connection:
        return [row[0] for row in connection.execute(text("SELECT name FROM mushra_tests ORDER BY name"))]


def load_listening(
    engine: Engine,
    test: str,
    screen: bool = True,
    ratings: pd.DataFrame | None = None,
    screening: ScreeningConfig | None = None,
) -> Listening:
    """Ratings of `test`, screened as declared; `ratings` (participant, item, condition, score) skips the database.

    `screening` (a ScreeningConfig) overrides the declared rule; a rule that names a condition the
    ratings lack raises ConfigError.
    """
    if ratings is None:
        ratings, message = _read_ratings(engine, test)
        if message:
            return Listening(test, message=message)
        setup = test_setup(engine, test)
    else:
        setup = setup_from_frame(test, ratings, screening)
    if ratings.empty:
        return Listening(test, ratings, message=f"MUSHRA test {test!r} has no ratings yet", setup=setup)
    listening = Listening(test, ratings, ratings, setup=setup)
    if screen:
        _screen(listening, screening or setup.screening)
    return listening


def stimulus_frame(
    kept: pd.DataFrame,
    results: pd.DataFrame,
    scored_as: dict[str, str] | None = None,
    leave_out: set[str] | frozenset = frozenset(),
) -> pd.DataFrame:
    """Per item x condition x metric: the listeners' mean, ratings count, sum of squares, and the metric value.

    `scored_as` maps a condition to the codec name of its objective results; conditions in
    `leave_out` (the hidden reference and anchors, by default) are dropped.
    """
    kept = kept[~kept["condition"].isin(leave_out)]
    scores = (
        kept.assign(square=kept["score"] ** 2)
        .groupby(["item", "condition"], sort=True)
        .agg(score=("score", "mean"), ratings=("score", "count"), score_sq=("square", "sum"))
        .reset_index()
    )
    scored_as = scored_as or {}
    scores["codec"] = [scored_as.get(condition, condition) for condition in scores["condition"]]
    ok = results[(results["status"] == "ok") & ~results["metric"].isin(COST_METRICS)]
    values = ok[["item_id", "codec", "metric", "value"]].rename(columns={"item_id": "item"})
    return scores.merge(values, on=["item", "codec"], how="inner").drop(columns="codec")


def condition_scores(kept: pd.DataFrame) -> pd.DataFrame:
    """Per condition: n, assessors, median and IQR, mean (the listener mean) with t and bootstrap intervals."""
    return condition_summary(kept, n_boot=2000)


def _read_ratings(engine: Engine, test: str) -> tuple[pd.DataFrame, str | None]:
    if not table_exists(engine, "mushra_responses"):
        return pd.DataFrame(), "no MUSHRA tables in this database yet (they arrive with the MUSHRA migration)"
    known = mushra_tests(engine)
    if test not in known:
        return pd.DataFrame(), f"no MUSHRA test named {test!r} (tests: {', '.join(known) or 'none'})"
    try:
        return ratings_frame(engine, test), None
    except EvalkitError as err:
        return pd.DataFrame(), str(err)


def _screen(listening: Listening, config: ScreeningConfig) -> None:
    result = screen(listening.ratings, config=config)
    listening.kept = result.apply(listening.ratings)
    listening.excluded = dict(result.excluded)
    listening.screening = result.describe()
